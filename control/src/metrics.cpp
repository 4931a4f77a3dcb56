#include <fmt/format.h>

#include "snapshot.hpp"
#include "statewall/build_info.hpp"

namespace statewall::control {
namespace {

void header(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

// One counter series per port: {name}{port="inside",device="net_af_packet0"}.
template <typename Get>
void portSeries(std::string& out, const HostIo& io, std::string_view name, std::string_view help,
                Get get) {
  header(out, name, "counter", help);
  for (const PortIo& p : io.ports)
    fmt::format_to(std::back_inserter(out), "{}{{port=\"{}\",device=\"{}\"}} {}\n", name,
                   promLabel(p.role), promLabel(p.name), get(p));
}

void renderFlowLog(std::string& out, const HostIo& io) {
  auto it = std::back_inserter(out);
  header(out, "statewall_flow_log_records_total", "counter", "Flow-log records written.");
  fmt::format_to(it, "statewall_flow_log_records_total {}\n", io.flow_log_records);
  header(out, "statewall_flow_log_dropped_total", "counter",
         "Flow-log records dropped because a forwarding lcore's ring was full (never packets).");
  fmt::format_to(it, "statewall_flow_log_dropped_total {}\n", io.flow_log_dropped);
}

void renderIo(std::string& out, const HostIo& io) {
  portSeries(out, io, "statewall_port_rx_packets_total", "Packets the device received.",
             [](const PortIo& p) { return p.rx_packets; });
  portSeries(out, io, "statewall_port_rx_bytes_total", "Bytes the device received.",
             [](const PortIo& p) { return p.rx_bytes; });
  portSeries(out, io, "statewall_port_tx_packets_total", "Packets the device sent.",
             [](const PortIo& p) { return p.tx_packets; });
  portSeries(out, io, "statewall_port_tx_bytes_total", "Bytes the device sent.",
             [](const PortIo& p) { return p.tx_bytes; });
  portSeries(out, io, "statewall_port_rx_missed_total",
             "Packets the device dropped for want of a free rx descriptor (imissed).",
             [](const PortIo& p) { return p.rx_missed; });
  portSeries(out, io, "statewall_port_rx_errors_total", "Erroneous received packets (ierrors).",
             [](const PortIo& p) { return p.rx_errors; });
  portSeries(out, io, "statewall_port_tx_errors_total", "Failed transmissions (oerrors).",
             [](const PortIo& p) { return p.tx_errors; });
  portSeries(out, io, "statewall_port_rx_nombuf_total",
             "Rx mbuf allocation failures: the mbuf pool ran dry (rx_nombuf).",
             [](const PortIo& p) { return p.rx_nombuf; });
  auto it = std::back_inserter(out);
  header(out, "statewall_tx_dropped_total", "counter",
         "Allowed packets dropped because the other port's tx queue stayed full.");
  fmt::format_to(it, "statewall_tx_dropped_total {}\n", io.tx_dropped);
  header(out, "statewall_oversize_total", "counter",
         "Frames too long to judge as a whole, dropped (not a policy verdict).");
  fmt::format_to(it, "statewall_oversize_total {}\n", io.oversize);
  if (io.gwlb) {
    header(out, "statewall_gwlb_frames_total", "counter",
           "Gateway Load Balancer mode: received frames by kind (geneve: judged on the inner "
           "packet; returned: allowed and sent back; malformed; not-geneve: dropped; to-kernel, "
           "from-kernel: through the exception tap; kernel-dropped: lost on the way).");
    fmt::format_to(it, "statewall_gwlb_frames_total{{kind=\"geneve\"}} {}\n", io.gwlb_geneve);
    fmt::format_to(it, "statewall_gwlb_frames_total{{kind=\"returned\"}} {}\n", io.gwlb_returned);
    fmt::format_to(it, "statewall_gwlb_frames_total{{kind=\"malformed\"}} {}\n", io.gwlb_malformed);
    fmt::format_to(it, "statewall_gwlb_frames_total{{kind=\"not-geneve\"}} {}\n",
                   io.gwlb_not_geneve);
    fmt::format_to(it, "statewall_gwlb_frames_total{{kind=\"to-kernel\"}} {}\n", io.gwlb_to_kernel);
    fmt::format_to(it, "statewall_gwlb_frames_total{{kind=\"from-kernel\"}} {}\n",
                   io.gwlb_from_kernel);
    fmt::format_to(it, "statewall_gwlb_frames_total{{kind=\"kernel-dropped\"}} {}\n",
                   io.gwlb_kernel_dropped);
  }
  header(out, "statewall_mbufs_capacity", "gauge", "Mbufs in the pool.");
  fmt::format_to(it, "statewall_mbufs_capacity {}\n", io.mbufs_capacity);
  header(out, "statewall_mbufs_in_use", "gauge",
         "Mbufs in rings, in the lcores' hands and in per-lcore caches.");
  fmt::format_to(it, "statewall_mbufs_in_use {}\n", io.mbufs_in_use);
  if (io.flow_log) renderFlowLog(out, io);
}

}  // namespace

std::string promLabel(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string renderMetrics(const StatsSnapshot& s) {
  std::string out;
  auto it = std::back_inserter(out);

  header(out, "statewall_packets_total", "counter", "Packets by verdict reason.");
  for (size_t r = 0; r < dataplane::kReasonCount; ++r)
    fmt::format_to(it, "statewall_packets_total{{reason=\"{}\"}} {}\n", dataplane::kReasonCodes[r],
                   s.counters.packets[r]);
  header(out, "statewall_bytes_total", "counter", "Bytes by verdict reason.");
  for (size_t r = 0; r < dataplane::kReasonCount; ++r)
    fmt::format_to(it, "statewall_bytes_total{{reason=\"{}\"}} {}\n", dataplane::kReasonCodes[r],
                   s.counters.bytes[r]);

  header(out, "statewall_policy_loads_running", "gauge",
         "Control requests compiling a policy now (loads, checks, timeout changes).");
  fmt::format_to(it, "statewall_policy_loads_running {}\n", s.loads_running);
  header(out, "statewall_policy_loads_completed_total", "counter",
         "Control requests that compiled a policy, published or not.");
  fmt::format_to(it, "statewall_policy_loads_completed_total {}\n", s.loads_completed);
  header(out, "statewall_connections", "gauge", "Live tracked connections.");
  fmt::format_to(it, "statewall_connections {}\n", s.connections);
  header(out, "statewall_connections_capacity", "gauge", "Connection table capacity.");
  fmt::format_to(it, "statewall_connections_capacity {}\n", s.capacity);
  header(out, "statewall_connections_created_total", "counter", "Connections created.");
  fmt::format_to(it, "statewall_connections_created_total {}\n", s.counters.connections_created);
  header(out, "statewall_connections_expired_total", "counter", "Connections expired.");
  fmt::format_to(it, "statewall_connections_expired_total {}\n", s.counters.connections_expired);
  header(out, "statewall_connections_evicted_total", "counter",
         "Unreplied connections evicted to make room in a full table (early drop).");
  fmt::format_to(it, "statewall_connections_evicted_total {}\n", s.counters.connections_evicted);
  header(out, "statewall_tcp_invalid_total", "counter",
         "TCP packets the state machine or window check marked INVALID.");
  fmt::format_to(it, "statewall_tcp_invalid_total {}\n", s.counters.tcp_invalid);
  header(out, "statewall_policy_version", "gauge", "Version of the running policy.");
  fmt::format_to(it, "statewall_policy_version {}\n", s.policy_version);

  if (s.policy) {
    header(out, "statewall_rule_hits_total", "counter",
           "Packets allowed by each security-group rule of the running policy.");
    for (size_t i = 0; i < s.rule_hits.size(); ++i) {
      const rules::RuleInfo& r = s.policy->rule(static_cast<rules::RuleId>(i));
      fmt::format_to(it,
                     "statewall_rule_hits_total{{rule=\"{}\",group=\"{}\",direction=\"{}\","
                     "index=\"{}\"}} {}\n",
                     i, promLabel(r.group_name), rules::directionName(r.dir), r.index,
                     s.rule_hits[i]);
    }
    header(out, "statewall_acl_hits_total", "counter",
           "Packets decided by each network-ACL entry of the running policy.");
    for (size_t i = 0; i < s.acl_hits.size(); ++i) {
      const rules::AclEntryInfo& e = s.policy->aclEntry(static_cast<rules::AclEntryId>(i));
      fmt::format_to(it,
                     "statewall_acl_hits_total{{acl=\"{}\",direction=\"{}\",rule=\"{}\","
                     "action=\"{}\"}} {}\n",
                     promLabel(e.acl_name), rules::directionName(e.dir), e.ruleNumberStr(),
                     e.allow ? "allow" : "deny", s.acl_hits[i]);
    }
  }

  if (s.rates) {
    header(out, "statewall_packets_per_second", "gauge",
           "Packet rate over the last sampling interval (all threads).");
    fmt::format_to(it, "statewall_packets_per_second {:.3f}\n", s.rates->packets_per_second);
    header(out, "statewall_bytes_per_second", "gauge",
           "Byte rate over the last sampling interval (all threads).");
    fmt::format_to(it, "statewall_bytes_per_second {:.3f}\n", s.rates->bytes_per_second);
  }
  if (!s.lcores.empty()) {
    header(out, "statewall_lcore_packets_per_second", "gauge", "Packet rate per lcore.");
    for (const auto& l : s.lcores)
      fmt::format_to(it, "statewall_lcore_packets_per_second{{lcore=\"{}\"}} {:.3f}\n", l.lcore,
                     l.packets_per_second);
    header(out, "statewall_lcore_bytes_per_second", "gauge", "Byte rate per lcore.");
    for (const auto& l : s.lcores)
      fmt::format_to(it, "statewall_lcore_bytes_per_second{{lcore=\"{}\"}} {:.3f}\n", l.lcore,
                     l.bytes_per_second);
  }
  header(out, "statewall_connections_fill_ratio", "gauge",
         "Live tracked connections / connection table capacity.");
  fmt::format_to(
      it, "statewall_connections_fill_ratio {:.6f}\n",
      s.capacity ? static_cast<double>(s.connections) / static_cast<double>(s.capacity) : 0.0);
  header(out, "statewall_uptime_seconds", "gauge", "Seconds since the control plane started.");
  fmt::format_to(it, "statewall_uptime_seconds {:.3f}\n", s.uptime_seconds);
  header(out, "statewall_build_info", "gauge", "What this build is; the value is always 1.");
  fmt::format_to(it,
                 "statewall_build_info{{version=\"{}\",commit=\"{}\",build_type=\"{}\","
                 "dpdk_version=\"{}\"}} 1\n",
                 promLabel(build::kVersion), promLabel(build::kCommit),
                 promLabel(build::kBuildType), promLabel(s.dpdk_version));
  if (s.io) renderIo(out, *s.io);
  return out;
}

}  // namespace statewall::control
