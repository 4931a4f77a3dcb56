#include "statewall/dpdk/port_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <set>
#include <sstream>
#include <string_view>
#include <utility>

namespace statewall::dpdk {
namespace {

// A file name from an interface or device name: '/' (impossible in both, but never trusted) and
// anything outside [A-Za-z0-9._:-] become '_'.
std::string fileSafe(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == ':' || c == '-';
    if (!ok) c = '_';
  }
  return out;
}

}  // namespace

std::vector<std::string> vdevInterfaces(const std::string& args) {
  std::vector<std::string> names;
  std::string_view rest = args;
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    const std::string_view kv = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    const size_t eq = kv.find('=');
    if (eq == std::string_view::npos) continue;
    const std::string_view key = kv.substr(0, eq);
    const std::string value(kv.substr(eq + 1));
    if (value.empty()) continue;
    if ((key == "iface" || key == "rx_iface" || key == "tx_iface" || key == "rx_iface_in") &&
        std::find(names.begin(), names.end(), value) == names.end())
      names.push_back(value);
  }
  return names;
}

std::string vdevArg(const std::string& args, const std::string& key) {
  std::string_view rest = args;
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    const std::string_view kv = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    if (kv.size() > key.size() && kv.substr(0, key.size()) == key && kv[key.size()] == '=')
      return std::string(kv.substr(key.size() + 1));
  }
  return "";
}

std::vector<std::string> portLockNames(const std::string& bus, const std::string& device,
                                       const std::string& args) {
  std::vector<std::string> names;
  if (bus == "pci") {
    names.push_back("pci-" + fileSafe(device));
    return names;
  }
  for (const std::string& iface : vdevInterfaces(args)) {
    std::string name = "iface-" + fileSafe(iface);
    if (std::find(names.begin(), names.end(), name) == names.end())
      names.push_back(std::move(name));
  }
  return names;
}

namespace {

// The lock files this process holds. flock(2) locks belong to an open file, so a second
// acquire() of a path we hold (statewalld locks vdev interfaces before EAL probes them, and the
// appliance locks every port after) would refuse ourselves: it succeeds without a second lock.
std::mutex g_held_mu;
std::set<std::string> g_held;

}  // namespace

void PortLock::release() {
  if (fd_ < 0) return;
  {
    std::lock_guard lock(g_held_mu);
    g_held.erase(path_);
  }
  ::close(fd_);  // releases the flock
  fd_ = -1;
}

PortLock::~PortLock() {
  release();
}

PortLock::PortLock(PortLock&& o) noexcept
    : fd_(std::exchange(o.fd_, -1)), path_(std::move(o.path_)) {}

PortLock& PortLock::operator=(PortLock&& o) noexcept {
  if (this != &o) {
    release();
    fd_ = std::exchange(o.fd_, -1);
    path_ = std::move(o.path_);
  }
  return *this;
}

bool PortLock::acquire(const std::string& dir, const std::string& name, std::string* error) {
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    *error = "cannot create the lock directory " + dir + ": " + std::strerror(errno) +
             " (choose another with --lock-dir)";
    return false;
  }
  const std::string path = dir + "/" + name + ".lock";
  {
    std::lock_guard lock(g_held_mu);
    if (g_held.count(path) != 0) {  // ours already, by another PortLock of this process
      release();
      path_ = path;
      return true;
    }
  }
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) {
    *error = "cannot open the lock file " + path + ": " + std::strerror(errno) +
             " (choose another directory with --lock-dir)";
    return false;
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    std::string holder;
    if (err == EWOULDBLOCK) {
      char buf[32] = {};
      const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
      long pid = 0;
      if (n > 0) {
        std::istringstream in(std::string(buf, static_cast<size_t>(n)));
        in >> pid;
      }
      holder = pid > 0 ? "another statewalld (pid " + std::to_string(pid) + ")"
                       : "another statewalld (pid unknown)";
      *error = "in use by " + holder + ", which holds " + path +
               "; stop it first, or give this instance other interfaces";
    } else {
      *error = "cannot lock " + path + ": " + std::strerror(err);
    }
    ::close(fd);
    return false;
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 ||
      ::pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    // The lock holds regardless; only the pid in a later refusal would be missing.
  }
  release();
  fd_ = fd;
  path_ = path;
  std::lock_guard lock(g_held_mu);
  g_held.insert(path);
  return true;
}

bool lockVdevInterfaces(const std::vector<std::string>& eal_args, const std::string& dir,
                        std::vector<PortLock>* locks, std::string* error) {
  for (size_t i = 0; i < eal_args.size(); ++i) {
    // "--vdev=DEV,ARGS" or "--vdev DEV,ARGS"
    std::string spec;
    if (eal_args[i].rfind("--vdev=", 0) == 0) {
      spec = eal_args[i].substr(7);
    } else if (eal_args[i] == "--vdev" && i + 1 < eal_args.size()) {
      spec = eal_args[++i];
    } else {
      continue;
    }
    const size_t comma = spec.find(',');
    const std::string device = spec.substr(0, comma);
    const std::string args = comma == std::string::npos ? "" : spec.substr(comma + 1);
    for (const std::string& name : portLockNames("vdev", device, args)) {
      PortLock lock;
      std::string why;
      if (!lock.acquire(dir, name, &why)) {
        *error = "--vdev " + device + " (interface " + name.substr(6) + "): " + why;
        return false;
      }
      locks->push_back(std::move(lock));
    }
  }
  return true;
}

}  // namespace statewall::dpdk
