// Helpers for the statewalld tests: temporary directories, running a program with a time limit,
// pcap files in and out, the EAL arguments that work without hugepages or NICs.
#pragma once

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

extern char** environ;

namespace statewall::dpdk_test {

namespace fs = std::filesystem;

inline std::string statewalldPath() {
  return std::string(STATEWALL_BINARY_DIR) + "/apps/statewalld/statewalld";
}
inline std::string statewallPath() {
  return std::string(STATEWALL_BINARY_DIR) + "/apps/statewall/statewall";
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "statewall-dpdk-XXXXXX").string();
    char* p = mkdtemp(tmpl.data());
    if (p == nullptr) std::abort();
    path_ = p;
  }
  ~TempDir() {
    std::error_code ec;
    if (std::getenv("STATEWALL_KEEP_TMP") == nullptr) fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

inline void writeText(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::trunc);
  f << text;
}

inline std::string readText(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// A started child process with stdout and stderr in files.
class Process {
 public:
  Process(const std::vector<std::string>& argv, const std::string& out_path,
          const std::string& err_path)
      : out_path_(out_path), err_path_(err_path) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    std::vector<char*> args;
    for (const auto& a : argv)
      args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    if (posix_spawn(&pid_, args[0], &fa, nullptr, args.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&fa);
  }
  ~Process() {
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  bool started() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  void signal(int sig) {
    if (pid_ > 0 && !exited_) kill(pid_, sig);
  }
  // Waits up to `limit`; returns the exit code, or -1 (after SIGKILL) when it ran over or died
  // from a signal.
  int wait(std::chrono::milliseconds limit) {
    if (pid_ <= 0) return -1;
    const auto deadline = std::chrono::steady_clock::now() + limit;
    int status = 0;
    while (true) {
      pid_t r = waitpid(pid_, &status, WNOHANG);
      if (r == pid_) break;
      if (std::chrono::steady_clock::now() > deadline) {
        kill(pid_, SIGKILL);
        waitpid(pid_, &status, 0);
        exited_ = true;
        timed_out_ = true;
        return -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    exited_ = true;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  // Waits until stdout contains `text` or the process exits; false on timeout or exit.
  bool waitForOutput(const std::string& text, std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      if (readText(out_path_).find(text) != std::string::npos) return true;
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        exited_ = true;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }
  bool timedOut() const { return timed_out_; }
  std::string out() const { return readText(out_path_); }
  std::string err() const { return readText(err_path_); }

 private:
  pid_t pid_ = -1;
  bool exited_ = false;
  bool timed_out_ = false;
  std::string out_path_;
  std::string err_path_;
};

struct RunResult {
  int code = -1;
  std::string out;
  std::string err;
};

inline RunResult run(const std::vector<std::string>& argv, const TempDir& dir,
                     const std::string& tag,
                     std::chrono::milliseconds limit = std::chrono::seconds(120)) {
  Process p(argv, dir / (tag + ".out"), dir / (tag + ".err"));
  RunResult r;
  r.code = p.wait(limit);
  r.out = p.out();
  r.err = p.err();
  return r;
}

// "0@0,1@1,2@0": `count` EAL lcores spread over the CPUs this process may use, so that tests
// asking for more lcores than CPUs still start (the lcores then share CPUs).
inline std::string lcoreMap(unsigned count) {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof set, &set) == 0)
    for (int c = 0; c < CPU_SETSIZE; ++c)
      if (CPU_ISSET(c, &set)) cpus.push_back(c);
  if (cpus.empty()) cpus.push_back(0);
  std::string s;
  for (unsigned i = 0; i < count; ++i)
    s += (i ? "," : "") + std::to_string(i) + "@" + std::to_string(cpus[i % cpus.size()]);
  return s;
}

// EAL arguments for a hermetic run: no hugepages, no PCI scan, no shared files, a unique prefix.
inline std::vector<std::string> ealArgs(unsigned forwarding_lcores, const std::string& tag) {
  static std::atomic<unsigned> serial{0};
  return {"--no-huge",
          "--no-pci",
          "-m",
          "512",
          "--no-telemetry",
          "--no-shconf",
          "--log-level=lib.eal:error",
          "--file-prefix=swt" + std::to_string(getpid()) + "_" + std::to_string(serial++) + tag,
          "--lcores=" + lcoreMap(forwarding_lcores + 1)};
}

// MemAvailable from /proc/meminfo, in bytes (0 when unknown).
inline double memAvailableBytes() {
  std::ifstream f("/proc/meminfo");
  std::string key;
  double kib = 0;
  std::string unit;
  while (f >> key >> kib >> unit)
    if (key == "MemAvailable:") return kib * 1024;
  return 0;
}

}  // namespace statewall::dpdk_test
