// Two network namespaces joined by a veth pair, for tests that make real traffic (root only):
// named after the test's pid, each end addressed in one /24, IPv6 off; background processes in
// them are stopped and the namespaces (with every device in them) deleted at destruction, also
// when the test fails. The one namespace fixture: the tests add their own devices on top.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "common/run_command.hpp"
#include "common/wait_for.hpp"

namespace statewall::testing {

class NamespacePair {
 public:
  // `tag` keeps the names of different tests apart: namespaces "sw<tag>a<pid>", "sw<tag>b<pid>",
  // veth ends "sw<tag>va<pid>" (in a) and "sw<tag>vb<pid>" (in b).
  explicit NamespacePair(const std::string& tag) {
    const std::string id = std::to_string(::getpid());
    a_ = "sw" + tag + "a" + id;
    b_ = "sw" + tag + "b" + id;
    va_ = "sw" + tag + "va" + id;
    vb_ = "sw" + tag + "vb" + id;
  }
  ~NamespacePair() { teardown(); }
  NamespacePair(const NamespacePair&) = delete;
  NamespacePair& operator=(const NamespacePair&) = delete;

  // Creates both namespaces and the veth pair, a at PREFIX.1/24 and b at PREFIX.2/24 (prefix
  // "10.199.0"), loopback and veth up. "" when done; otherwise the command that failed.
  std::string setup(const std::string& prefix) {
    created_ = true;
    const std::string cmds[] = {
        "ip netns add " + a_,
        "ip netns add " + b_,
        "ip link add " + va_ + " netns " + a_ + " type veth peer name " + vb_ + " netns " + b_,
        inA("sysctl -qw net.ipv6.conf.all.disable_ipv6=1"),
        inB("sysctl -qw net.ipv6.conf.all.disable_ipv6=1"),
        inA("ip addr add " + prefix + ".1/24 dev " + va_),
        inB("ip addr add " + prefix + ".2/24 dev " + vb_),
        inA("ip link set lo up"),
        inB("ip link set lo up"),
        inA("ip link set " + va_ + " up"),
        inB("ip link set " + vb_ + " up"),
    };
    for (const auto& c : cmds) {
      if (sh(c + " >/dev/null 2>&1") != 0) return "setup failed: " + c;
    }
    return "";
  }

  // Starts `cmd` in the background in namespace `ns`, its output to `log`; returns its pid
  // (stopped at destruction).
  pid_t spawn(const std::string& ns, const std::string& cmd, const std::string& log) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::setpgid(0, 0);
      const std::string full = "exec ip netns exec " + ns + " " + cmd + " >" + log + " 2>&1";
      ::execl("/bin/sh", "sh", "-c", full.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    if (pid > 0) pids_.push_back(pid);
    return pid;
  }

  // Stops one background process (SIGINT first, so that tcpdump flushes its file), bounded:
  // SIGKILL after 5 s.
  void stop(pid_t pid, int sig = SIGINT) {
    ::kill(-pid, sig);
    const bool gone = waitFor([&] { return ::waitpid(pid, nullptr, WNOHANG) == pid; },
                              std::chrono::seconds(5), std::chrono::milliseconds(20));
    if (!gone) {
      ::kill(-pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
    pids_.erase(std::remove(pids_.begin(), pids_.end(), pid), pids_.end());
  }

  // `c` as a command line run inside a or b.
  std::string inA(const std::string& c) const { return "ip netns exec " + a_ + " " + c; }
  std::string inB(const std::string& c) const { return "ip netns exec " + b_ + " " + c; }
  const std::string& a() const { return a_; }
  const std::string& b() const { return b_; }
  const std::string& vethA() const { return va_; }
  const std::string& vethB() const { return vb_; }

  // `cmd` through /bin/sh; its exit code.
  static int sh(const std::string& cmd) { return runShell(cmd).exit_code; }

 private:
  void teardown() {
    while (!pids_.empty())
      stop(pids_.back(), SIGTERM);
    if (!created_) return;
    sh("ip netns del " + a_ + " >/dev/null 2>&1");
    sh("ip netns del " + b_ + " >/dev/null 2>&1");
  }

  std::string a_, b_, va_, vb_;
  std::vector<pid_t> pids_;
  bool created_ = false;
};

}  // namespace statewall::testing
