#include "conn_log_output.hpp"

#include <fmt/format.h>

#include "conn_tracker.hpp"

namespace statewall::sim::detail {
namespace {

std::string_view zeekProto(uint8_t proto) {
  switch (proto) {
    case dataplane::kIpProtoTcp:
      return "tcp";
    case dataplane::kIpProtoUdp:
      return "udp";
    case dataplane::kIpProtoIcmp:
    case dataplane::kIpProtoIcmpv6:
      return "icmp";
    default:
      return "unknown_transport";
  }
}

}  // namespace

bool ConnLogOutput::open(const std::string& path, ConnFormat format, std::string* err) {
  if (!out_.open(path, err)) return false;
  format_ = format;
  if (format_ == ConnFormat::kTsv) {
    out_.append(
        "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n"
        "#path\tconn\n"
        "#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tduration\t"
        "orig_bytes\tresp_bytes\tconn_state\thistory\torig_pkts\torig_ip_bytes\tresp_pkts\t"
        "resp_ip_bytes\tend\ttracked\tconn_id\tfirst_reason\topened_by\tdenied_pkts\t"
        "icmp_errors");
    // With decapsulation: which records are tunnels, and each connection's tunnels.
    if (decap()) out_.append("\tkind\ttunnel_type\ttunnel_parents");
    out_.append(
        "\n#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tinterval\tcount\tcount\t"
        "string\tstring\tcount\tcount\tcount\tcount\tstring\tbool\tcount\tstring\tstring\t"
        "count\tcount");
    if (decap()) out_.append("\tstring\tstring\tset[string]");
    out_.append("\n");
  }
  return true;
}

void ConnLogOutput::packetsJudged(const JudgedBurst& b) {
  tracker_.advance(ctx_.engine, b.clock, &ctx_.policy->timeouts(), ctx_.table_capacity);
  for (unsigned i = 0; i < b.n; ++i) {
    if (b.parsed[i].tunnel_depth > 0) observeTunnels(b.refs[i], b.verdicts[i], b.meta[i].ts);
    tracker_.observe(b.parsed[i], b.verdicts[i], b.meta[i].ts);
    tracker_.settle();
  }
}

// The tunnels of a frame judged inside them: the outermost carrier is the frame parsed without
// decapsulation; an inner one is known by its flow only (no byte counts).
void ConnLogOutput::observeTunnels(const dataplane::PacketRef& frame, const dataplane::Verdict& v,
                                   uint64_t ts) {
  const std::vector<dataplane::EncapHeader> headers =
      dataplane::encapsulation(frame.data, frame.len, frame.link, ctx_.options->parse);
  size_t n = 0;
  for (const dataplane::EncapHeader& h : headers) {
    if (!dataplane::encapIsTunnel(h.kind) || !h.has_outer || n == carriers_.size()) continue;
    ConnTracker::Carrier& c = carriers_[n];
    c.kind = h.kind;
    if (n == 0) {
      dataplane::parsePacket(frame.data, frame.len, frame.link, &c.packet);
    } else {
      c.packet = dataplane::ParsedPacket{};
      c.packet.l3 = h.family == rules::Family::kV4 ? dataplane::L3::kIpv4 : dataplane::L3::kIpv6;
      c.packet.family = h.family;
      c.packet.proto = h.proto;
      c.packet.src = h.src;
      c.packet.dst = h.dst;
      c.packet.sport = h.sport;
      c.packet.dport = h.dport;
    }
    ++n;
  }
  tracker_.observeTunnels(carriers_.data(), n, v, ts);
}

void ConnLogOutput::endAll(uint64_t clock) {
  tracker_.advance(ctx_.engine, clock, &ctx_.policy->timeouts(), ctx_.table_capacity);
  tracker_.endAll();
}

void ConnLogOutput::connectionsEnded(const ConnRecord* records, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const ConnRecord& r = records[i];
    if (format_ == ConnFormat::kTsv) {
      writeTsv(r, r.connState());
    } else {
      writeJson(r, r.connState());
    }
    out_.maybeFlush();
  }
}

bool ConnLogOutput::finish(std::string* err) {
  ctx_.summary->connection_records_early = tracker_.endedEarly();
  return out_.close(err);
}

void ConnLogOutput::writeJson(const ConnRecord& r, std::string_view state) {
  const PolicyTexts& texts = *ctx_.texts;
  auto& b = out_.buf();
  auto out = std::back_inserter(b);
  b.append(std::string_view("{\"ts\":"));
  appendTs(b, r.first_ns, ctx_.nano);
  fmt::format_to(out, ",\"uid\":\"{}\",\"id.orig_h\":\"", r.uid());
  appendIp(b, r.orig_h);
  fmt::format_to(out, "\",\"id.orig_p\":{},\"id.resp_h\":\"", r.orig_p);
  appendIp(b, r.resp_h);
  fmt::format_to(out, "\",\"id.resp_p\":{},\"proto\":\"{}\",\"duration\":", r.resp_p,
                 zeekProto(r.proto));
  appendTs(b, r.last_ns - r.first_ns, ctx_.nano);
  fmt::format_to(out,
                 ",\"orig_bytes\":{},\"resp_bytes\":{},\"conn_state\":\"{}\",\"history\":\"{}\","
                 "\"orig_pkts\":{},\"orig_ip_bytes\":{},\"resp_pkts\":{},\"resp_ip_bytes\":{},"
                 "\"end\":\"{}\",\"tracked\":{},",
                 r.orig.payload_bytes, r.resp.payload_bytes, state, r.history_str(), r.orig.pkts,
                 r.orig.ip_bytes, r.resp.pkts, r.resp.ip_bytes, connEndName(r.end), r.conn_id != 0);
  if (r.conn_id != 0) {
    fmt::format_to(out, "\"conn_id\":{},\"engine_id\":{},", r.conn_number, r.conn_id);
  } else {
    b.append(std::string_view("\"conn_id\":null,"));
  }
  fmt::format_to(out,
                 "\"first_reason\":\"{}\",\"opened_by\":", dataplane::reasonCode(r.first_reason));
  if (r.opened_by != rules::kNoRule && r.opened_by < texts.ruleCount()) {
    b.append(texts.ruleJson(r.opened_by));
  } else {
    b.append(std::string_view("null"));
  }
  fmt::format_to(out, ",\"denied_pkts\":{},\"icmp_errors\":{}", r.denied_pkts, r.icmp_errors);
  if (r.is_tunnel) {
    fmt::format_to(out, ",\"kind\":\"tunnel\",\"tunnel_type\":\"{}\"",
                   dataplane::encapKindName(r.tunnel));
  }
  if (r.parent_count > 0) {
    b.append(std::string_view(",\"tunnel_parents\":["));
    for (uint8_t i = 0; i < r.parent_count; ++i) {
      if (i > 0) b.push_back(',');
      fmt::format_to(out, "\"{}\"", ConnRecord::uidOf(r.parents[i]));
    }
    b.push_back(']');
  }
  b.append(std::string_view("}\n"));
}

void ConnLogOutput::writeTsv(const ConnRecord& r, std::string_view state) {
  const PolicyTexts& texts = *ctx_.texts;
  auto& b = out_.buf();
  auto out = std::back_inserter(b);
  appendTs(b, r.first_ns, ctx_.nano);
  fmt::format_to(out, "\t{}\t", r.uid());
  appendIp(b, r.orig_h);
  fmt::format_to(out, "\t{}\t", r.orig_p);
  appendIp(b, r.resp_h);
  fmt::format_to(out, "\t{}\t{}\t", r.resp_p, zeekProto(r.proto));
  appendTs(b, r.last_ns - r.first_ns, ctx_.nano);
  std::string_view hist = r.history_len == 0 ? std::string_view("-") : r.history_str();
  fmt::format_to(out, "\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t", r.orig.payload_bytes,
                 r.resp.payload_bytes, state, hist, r.orig.pkts, r.orig.ip_bytes, r.resp.pkts,
                 r.resp.ip_bytes, connEndName(r.end), r.conn_id != 0 ? "T" : "F");
  if (r.conn_id != 0) {
    fmt::format_to(out, "{}", r.conn_number);
  } else {
    b.push_back('-');
  }
  fmt::format_to(out, "\t{}\t", dataplane::reasonCode(r.first_reason));
  if (r.opened_by != rules::kNoRule && r.opened_by < texts.ruleCount()) {
    b.append(texts.ruleLabel(r.opened_by));
  } else {
    b.push_back('-');
  }
  fmt::format_to(out, "\t{}\t{}", r.denied_pkts, r.icmp_errors);
  if (decap()) {
    if (r.is_tunnel) {
      fmt::format_to(out, "\ttunnel\t{}\t", dataplane::encapKindName(r.tunnel));
    } else {
      b.append(std::string_view("\tconn\t-\t"));
    }
    if (r.parent_count == 0) b.append(std::string_view("(empty)"));
    for (uint8_t i = 0; i < r.parent_count; ++i) {
      if (i > 0) b.push_back(',');
      b.append(ConnRecord::uidOf(r.parents[i]));
    }
  }
  b.push_back('\n');
}

}  // namespace statewall::sim::detail
