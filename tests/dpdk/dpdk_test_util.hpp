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

#include "common/run_command.hpp"
#include "common/temp_dir.hpp"

extern char** environ;

namespace statewall::dpdk_test {

namespace fs = std::filesystem;

inline std::string statewalldPath() {
  return std::string(STATEWALL_BINARY_DIR) + "/apps/statewalld/statewalld";
}
inline std::string statewallPath() {
  return std::string(STATEWALL_BINARY_DIR) + "/apps/statewall/statewall";
}

// The tests' one temporary directory (common/temp_dir.hpp).
using ::statewall::testing::TempDir;

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

// A child process in the background (common/run_command.hpp).
using ::statewall::testing::Process;

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
