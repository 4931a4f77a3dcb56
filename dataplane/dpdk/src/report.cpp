#include "statewall/dpdk/report.hpp"

#include <nlohmann/json.hpp>

#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <string_view>

namespace statewall::dpdk {
namespace {

using dataplane::kReasonCount;

__attribute__((format(printf, 2, 3))) void appendf(std::string& out, const char* format, ...) {
  va_list ap;
  va_start(ap, format);
  va_list ap2;
  va_copy(ap2, ap);
  const int n = std::vsnprintf(nullptr, 0, format, ap);
  va_end(ap);
  if (n > 0) {
    const size_t at = out.size();
    out.resize(at + static_cast<size_t>(n) + 1);
    std::vsnprintf(out.data() + at, static_cast<size_t>(n) + 1, format, ap2);
    out.resize(at + static_cast<size_t>(n));
  }
  va_end(ap2);
}

nlohmann::json ioJson(const IoCounters& c) {
  return {{"rx_packets", c.rx_packets}, {"rx_bytes", c.rx_bytes}, {"rx_bursts", c.rx_bursts},
          {"tx_packets", c.tx_packets}, {"tx_bytes", c.tx_bytes}, {"tx_dropped", c.tx_dropped},
          {"tx_retries", c.tx_retries}, {"denied", c.denied},     {"linearised", c.linearised},
          {"oversize", c.oversize},     {"sweeps", c.sweeps},     {"busy_ns", c.busy_ns}};
}

}  // namespace

IoCounters IoCounters::snapshot(const LcoreCounters& c, unsigned lcore_id) {
  auto ld = [](const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  IoCounters s;
  s.lcore = lcore_id;
  s.rx_packets = ld(c.rx_packets);
  s.rx_bytes = ld(c.rx_bytes);
  s.rx_bursts = ld(c.rx_bursts);
  s.tx_packets = ld(c.tx_packets);
  s.tx_bytes = ld(c.tx_bytes);
  s.tx_dropped = ld(c.tx_dropped);
  s.tx_retries = ld(c.tx_retries);
  s.denied = ld(c.denied);
  s.linearised = ld(c.linearised);
  s.oversize = ld(c.oversize);
  s.sweeps = ld(c.sweeps);
  s.busy_ns = ld(c.busy_ns);
  s.drops_unlogged = ld(c.drops_unlogged);
  return s;
}

std::vector<LcoreRxRate> lcoreRxRates(const Report& previous, const Report& now) {
  std::vector<LcoreRxRate> out;
  const double dt = now.seconds - previous.seconds;
  for (const IoCounters& l : now.lcores) {
    LcoreRxRate r;
    r.lcore = l.lcore;
    for (const IoCounters& p : previous.lcores) {
      if (p.lcore != l.lcore || dt < 1e-3) continue;
      r.packets_per_second = static_cast<double>(l.rx_packets - p.rx_packets) / dt;
      r.bytes_per_second = static_cast<double>(l.rx_bytes - p.rx_bytes) / dt;
    }
    out.push_back(r);
  }
  return out;
}

IoCounters& IoCounters::operator+=(const IoCounters& o) {
  rx_packets += o.rx_packets;
  rx_bytes += o.rx_bytes;
  rx_bursts += o.rx_bursts;
  tx_packets += o.tx_packets;
  tx_bytes += o.tx_bytes;
  tx_dropped += o.tx_dropped;
  tx_retries += o.tx_retries;
  denied += o.denied;
  linearised += o.linearised;
  oversize += o.oversize;
  drops_unlogged += o.drops_unlogged;
  sweeps += o.sweeps;
  busy_ns += o.busy_ns;
  return *this;
}

uint64_t Report::packetsIn() const {
  uint64_t n = 0;
  for (uint64_t p : reason_packets)
    n += p;
  return n;
}

uint64_t Report::allowedPackets() const {
  uint64_t n = 0;
  for (size_t i = 0; i < kReasonCount; ++i)
    if (dataplane::kReasonAllows[i]) n += reason_packets[i];
  return n;
}

uint64_t Report::deniedPackets() const {
  return packetsIn() - allowedPackets();
}

std::string formatReport(const Report& r) {
  std::string out;
  appendf(out, "statewalld: forwarded for %.3f s\n", r.seconds);
  appendf(out, "  %-20s %14s %16s\n", "reason", "packets", "bytes");
  uint64_t bytes = 0;
  for (size_t i = 0; i < kReasonCount; ++i) {
    const std::string code(dataplane::kReasonCodes[i]);
    appendf(out, "  %-20s %14" PRIu64 " %16" PRIu64 "\n", code.c_str(), r.reason_packets[i],
            r.reason_bytes[i]);
    bytes += r.reason_bytes[i];
  }
  appendf(out, "  %-20s %14" PRIu64 " %16" PRIu64 "\n", "packets in", r.packetsIn(), bytes);
  appendf(out,
          "  connections: created %" PRIu64 ", expired %" PRIu64 ", evicted %" PRIu64
          ", live %" PRIu64 "; tcp invalid %" PRIu64 "\n",
          r.connections_created, r.connections_expired, r.connections_evicted, r.connections_live,
          r.tcp_invalid);
  appendf(out,
          "  io: rx %" PRIu64 ", tx %" PRIu64 ", denied %" PRIu64 ", tx dropped %" PRIu64
          ", tx retries %" PRIu64 ", linearised %" PRIu64 ", oversize dropped %" PRIu64 "\n",
          r.io.rx_packets, r.io.tx_packets, r.io.denied, r.io.tx_dropped, r.io.tx_retries,
          r.io.linearised, r.io.oversize);
  if (r.gwlb_mode) out += "  " + formatGwlbStats(r.gwlb) + "\n";
  for (const IoCounters& l : r.lcores)
    appendf(
        out,
        "  lcore %u: rx %" PRIu64 " in %" PRIu64 " bursts, tx %" PRIu64 ", denied %" PRIu64
        ", tx dropped %" PRIu64 ", busy %.1f%%, %.0f ns/packet, idle sweeps %" PRIu64 "\n",
        l.lcore, l.rx_packets, l.rx_bursts, l.tx_packets, l.denied, l.tx_dropped,
        r.seconds > 0 ? 100.0 * static_cast<double>(l.busy_ns) / (r.seconds * 1e9) : 0.0,
        l.rx_packets > 0 ? static_cast<double>(l.busy_ns) / static_cast<double>(l.rx_packets) : 0.0,
        l.sweeps);
  for (const PortReport& p : r.ports)
    appendf(
        out,
        "  port %s %s (id %u, %u rx / %u tx queues%s): rx %" PRIu64 ", tx %" PRIu64
        ", missed %" PRIu64 ", rx errors %" PRIu64 ", tx errors %" PRIu64 ", no mbuf %" PRIu64 "\n",
        p.role.c_str(), p.name.c_str(), p.port_id, p.rx_queues, p.tx_queues, p.rss ? ", RSS" : "",
        p.ipackets, p.opackets, p.imissed, p.ierrors, p.oerrors, p.rx_nombuf);
  if (r.pool_checked)
    appendf(out, "  mbuf pool: %zu of %zu free%s\n", r.pool.available, r.pool.size,
            r.pool.full() ? " (full)" : " (LEAK: mbufs still in use)");
  if (r.flow_log)
    appendf(out, "  flow log: %" PRIu64 " records written, %" PRIu64 " dropped (ring full)\n",
            r.flow_log_records, r.flow_log_dropped);
  return out;
}

std::string formatStatsLine(const Report& r, const Report* previous) {
  std::string out;
  const double dt = previous != nullptr ? r.seconds - previous->seconds : r.seconds;
  const uint64_t in = r.packetsIn();
  const uint64_t prev_in = previous != nullptr ? previous->packetsIn() : 0;
  const double pps = dt > 0 ? static_cast<double>(in - prev_in) / dt : 0.0;
  appendf(out, "statewalld: t=%.1fs in %" PRIu64 " (%.0f pps) allowed %" PRIu64 " denied %" PRIu64,
          r.seconds, in, pps, r.allowedPackets(), r.deniedPackets());
  for (size_t i = 0; i < kReasonCount; ++i) {
    if (r.reason_packets[i] == 0) continue;
    const std::string code(dataplane::kReasonCodes[i]);
    appendf(out, " %s=%" PRIu64, code.c_str(), r.reason_packets[i]);
  }
  appendf(out, " tx_dropped=%" PRIu64 " live=%" PRIu64, r.io.tx_dropped, r.connections_live);
  return out;
}

std::string reportJson(const Report& r) {
  nlohmann::json j;
  j["seconds"] = r.seconds;
  j["packets_in"] = r.packetsIn();
  j["allowed"] = r.allowedPackets();
  j["denied"] = r.deniedPackets();
  nlohmann::json reasons = nlohmann::json::object();
  for (size_t i = 0; i < kReasonCount; ++i)
    reasons[std::string(dataplane::kReasonCodes[i])] = {{"packets", r.reason_packets[i]},
                                                        {"bytes", r.reason_bytes[i]}};
  j["reasons"] = reasons;
  j["connections"] = {{"created", r.connections_created},
                      {"expired", r.connections_expired},
                      {"evicted", r.connections_evicted},
                      {"live", r.connections_live},
                      {"tcp_invalid", r.tcp_invalid}};
  j["io"] = ioJson(r.io);
  j["lcores"] = nlohmann::json::array();
  for (const IoCounters& l : r.lcores) {
    nlohmann::json e = ioJson(l);
    e["lcore"] = l.lcore;
    j["lcores"].push_back(e);
  }
  j["ports"] = nlohmann::json::array();
  for (const PortReport& p : r.ports)
    j["ports"].push_back({{"role", p.role},
                          {"name", p.name},
                          {"port_id", p.port_id},
                          {"rx_queues", p.rx_queues},
                          {"tx_queues", p.tx_queues},
                          {"rss", p.rss},
                          {"mtu", p.mtu},
                          {"ipackets", p.ipackets},
                          {"opackets", p.opackets},
                          {"ibytes", p.ibytes},
                          {"obytes", p.obytes},
                          {"imissed", p.imissed},
                          {"ierrors", p.ierrors},
                          {"oerrors", p.oerrors},
                          {"rx_nombuf", p.rx_nombuf}});
  if (r.gwlb_mode)
    j["gwlb"] = {{"geneve", r.gwlb.geneve},
                 {"returned", r.gwlb.returned},
                 {"malformed", r.gwlb.malformed},
                 {"not_geneve", r.gwlb.not_geneve},
                 {"to_kernel", r.gwlb.to_kernel},
                 {"from_kernel", r.gwlb.from_kernel},
                 {"kernel_dropped", r.gwlb.kernel_dropped}};
  if (r.pool_checked)
    j["mbuf_pool"] = {
        {"size", r.pool.size}, {"available", r.pool.available}, {"full", r.pool.full()}};
  if (r.flow_log)
    j["flow_log"] = {{"records", r.flow_log_records}, {"dropped", r.flow_log_dropped}};
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace statewall::dpdk
