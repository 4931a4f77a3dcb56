// One consistent reading of the engine's counters for /v1/stats and /metrics. Private to control/.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "statewall/control/api.hpp"
#include "statewall/dataplane/engine.hpp"
#include "statewall/rules/compiled.hpp"

namespace statewall::control {

struct Rates {
  double interval_seconds = 0;
  double packets_per_second = 0;
  double bytes_per_second = 0;
};

struct StatsSnapshot {
  uint64_t policy_version = 0;
  rules::CompiledPolicyPtr policy;  // may be null
  dataplane::Counters counters;
  // Hits per rule / ACL entry of `policy` (same length as its tables; empty without a policy).
  std::vector<uint64_t> rule_hits;
  std::vector<uint64_t> acl_hits;
  size_t connections = 0;
  size_t capacity = 0;
  std::optional<Rates> rates;  // set once two samples exist
  std::vector<LcoreRate> lcores;
  uint64_t loads_running = 0;  // requests compiling a policy now
  uint64_t loads_completed = 0;
  std::optional<HostIo> io;   // from the host, when it has an I/O side
  double uptime_seconds = 0;  // since the API was made (statewalld: since startup)
  std::string dpdk_version;
};

// Prometheus text exposition format 0.0.4.
std::string renderMetrics(const StatsSnapshot& s);

// Escapes a Prometheus label value (backslash, double quote, newline).
std::string promLabel(std::string_view v);

}  // namespace statewall::control
