// VPC Flow Logs: the per-side action of a judged packet, the writer and the aggregator
// (sim/flowlog.hpp).
#include <cerrno>
#include <cstring>
#include <unordered_map>

#include <fmt/format.h>

#include "describe.hpp"
#include "statewall/rules/evaluate.hpp"
#include "statewall/rules/exemption.hpp"
#include "statewall/sim/flowlog.hpp"

namespace statewall::sim {

FlowAction actionAtSide(const dataplane::Verdict& v, const rules::CompiledPolicy& policy,
                        bool source_side) {
  if (v.allowed()) return FlowAction::kAccept;
  bool denied_at_source;
  switch (v.reason) {
    case dataplane::Reason::kDenySg:
      denied_at_source = v.deny_dir == rules::Direction::kOutbound;
      break;
    case dataplane::Reason::kDenyAcl:
      denied_at_source = v.acl_entry != rules::kNoAclEntry &&
                         policy.aclEntry(v.acl_entry).dir == rules::Direction::kOutbound;
      break;
    default:
      return FlowAction::kReject;  // invalid, table full, malformed: no side let it through
  }
  if (source_side) return denied_at_source ? FlowAction::kReject : FlowAction::kAccept;
  return denied_at_source ? FlowAction::kNone : FlowAction::kReject;
}

std::unique_ptr<FlowLogWriter> FlowLogWriter::open(const std::string& path, Format format,
                                                   std::string* err, FlowLogFormat fields) {
  std::unique_ptr<FlowLogWriter> w(new FlowLogWriter());
  if (path == "-") {
    w->f_ = stdout;
  } else {
    w->f_ = std::fopen(path.c_str(), "wb");
    w->owned_ = true;
  }
  if (w->f_ == nullptr) {
    *err = fmt::format("{}: cannot create: {}", path, std::strerror(errno));
    return nullptr;
  }
  w->format_ = format;
  w->fields_ = std::move(fields);
  if (format == Format::kText) {
    std::string header = w->fields_.headerLine() + "\n";
    std::fwrite(header.data(), 1, header.size(), w->f_);
  }
  return w;
}

FlowLogWriter::~FlowLogWriter() {
  if (owned_ && f_ != nullptr) std::fclose(f_);
}

namespace {

void appendJsonString(std::string* out, std::string_view s) {
  out->push_back('"');
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(c);
    } else if (static_cast<unsigned char>(c) < 0x20) {
      *out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
    } else {
      out->push_back(c);
    }
  }
  out->push_back('"');
}

}  // namespace

void FlowLogWriter::write(const FlowLogRecord& r, std::string_view rule, std::string_view reason) {
  line_.clear();
  const bool json = format_ == Format::kJsonl;
  const bool data = r.status == LogStatus::kOk;
  if (json) line_ += '{';
  for (size_t i = 0; i < fields_.fields.size(); ++i) {
    // value: nullopt = absent ('-' / null); quoted = a JSON string.
    std::string value;
    bool present = true, quoted = false;
    auto text = [&](std::string_view s) {
      present = !s.empty();
      value.assign(s);
      quoted = true;
    };
    switch (fields_.fields[i]) {
      case FlowLogField::kVersion:
        value = std::to_string(r.version);
        break;
      case FlowLogField::kAccountId:
        text(r.account_id);
        break;
      case FlowLogField::kInterfaceId:
        text(r.interface_id);
        break;
      case FlowLogField::kSrcAddr:
        present = data;
        value = r.src.str(), quoted = true;
        break;
      case FlowLogField::kDstAddr:
        present = data;
        value = r.dst.str(), quoted = true;
        break;
      case FlowLogField::kPktSrcAddr:
        present = data;
        value = r.pkt_src.str(), quoted = true;
        break;
      case FlowLogField::kPktDstAddr:
        present = data;
        value = r.pkt_dst.str(), quoted = true;
        break;
      case FlowLogField::kSrcPort:
        present = data, value = std::to_string(r.sport);
        break;
      case FlowLogField::kDstPort:
        present = data, value = std::to_string(r.dport);
        break;
      case FlowLogField::kProtocol:
        present = data, value = std::to_string(r.proto);
        break;
      case FlowLogField::kPackets:
        present = data, value = std::to_string(r.packets);
        break;
      case FlowLogField::kBytes:
        present = data, value = std::to_string(r.bytes);
        break;
      case FlowLogField::kStart:
        value = std::to_string(r.start);
        break;
      case FlowLogField::kEnd:
        value = std::to_string(r.end);
        break;
      case FlowLogField::kAction:
        present = r.action != FlowAction::kNone;
        value = flowActionName(r.action), quoted = true;
        break;
      case FlowLogField::kLogStatus:
        value = r.status == LogStatus::kOk       ? "OK"
                : r.status == LogStatus::kNoData ? "NODATA"
                                                 : "SKIPDATA";
        quoted = true;
        break;
      case FlowLogField::kVpcId:
        text(r.vpc_id);
        break;
      case FlowLogField::kSubnetId:
        text(r.subnet_id);
        break;
      case FlowLogField::kInstanceId:
        text(r.instance_id);
        break;
      case FlowLogField::kType:
        text(r.type);
        break;
      case FlowLogField::kTcpFlags:
        present = data && r.tcp_flags >= 0, value = std::to_string(r.tcp_flags);
        break;
      case FlowLogField::kFlowDirection:
        present = r.direction != FlowDirection::kUnknown;
        value = flowDirectionName(r.direction), quoted = true;
        break;
      case FlowLogField::kTrafficPath:
        present = r.traffic_path >= 0, value = std::to_string(r.traffic_path);
        break;
      default:
        present = false;
        break;
    }
    if (json) {
      if (i > 0) line_ += ',';
      appendJsonString(&line_, fields_.names[i]);
      line_ += ':';
      if (!present) {
        line_ += "null";
      } else if (quoted) {
        appendJsonString(&line_, value);
      } else {
        line_ += value;
      }
    } else {
      if (i > 0) line_ += ' ';
      line_ += present ? value : std::string("-");
    }
  }
  if (json) {
    if (!rule.empty()) {
      line_ += ",\"rule\":";
      appendJsonString(&line_, rule);
    }
    if (!reason.empty()) {
      line_ += ",\"reason\":";
      appendJsonString(&line_, reason);
    }
    line_ += '}';
  }
  line_ += '\n';
  std::fwrite(line_.data(), 1, line_.size(), f_);
  ++records_;
}

bool FlowLogWriter::close(std::string* err) {
  if (f_ == nullptr) return true;
  bool ok = std::fflush(f_) == 0 && !std::ferror(f_);
  if (owned_) ok = std::fclose(f_) == 0 && ok;
  f_ = nullptr;
  if (!ok) *err = std::string("write error: ") + std::strerror(errno);
  return ok;
}

// ---- aggregator ----

namespace {

struct AggKey {
  rules::IfaceId iface = rules::kNoIface;
  bool egress = false;
  FlowAction action = FlowAction::kNone;
  uint8_t proto = 0;
  rules::IpAddr src, dst;
  uint16_t sport = 0, dport = 0;
  friend bool operator==(const AggKey&, const AggKey&) = default;
};

struct AggKeyHash {
  size_t operator()(const AggKey& k) const noexcept {
    rules::IpAddrHash h;
    uint64_t x = h(k.src) * 31 + h(k.dst);
    x ^= (uint64_t{k.sport} << 32 | uint64_t{k.dport} << 16 | k.proto) * 0x9E3779B97F4A7C15ull;
    x ^= (uint64_t{k.iface} << 2 | uint64_t{k.egress} << 1) +
         static_cast<uint64_t>(k.action) * 0xBF58476D1CE4E5B9ull;
    return static_cast<size_t>(x ^ (x >> 29));
  }
};

struct Agg {
  AggKey key;
  uint64_t first_ns = 0, last_ns = 0, packets = 0, bytes = 0;
  uint8_t flags = 0;
  dataplane::Verdict first;  // the first packet's: its deciding rule and reason (JSON lines)
};

uint8_t awsTcpFlags(uint8_t f) {
  uint8_t out = 0;
  if (f & dataplane::kFin) out |= kFlowTcpFin;
  if (f & dataplane::kRst) out |= kFlowTcpRst;
  if (f & dataplane::kSyn) out |= (f & dataplane::kAck) ? kFlowTcpSynAck : kFlowTcpSyn;
  return out;
}

}  // namespace

struct FlowLogAggregator::Impl {
  const rules::CompiledPolicy& policy;
  FlowLogWriter* writer;
  uint64_t window_ns;
  std::string account;
  std::vector<std::string> iface_ids, subnet_ids;  // per IfaceId
  detail::PolicyTexts texts;
  uint64_t window = UINT64_MAX;
  std::vector<Agg> aggs;  // in order of first packet
  std::unordered_map<AggKey, size_t, AggKeyHash> index;

  Impl(const rules::CompiledPolicy& p, FlowLogWriter* w, uint32_t window_s, std::string acct)
      : policy(p),
        writer(w),
        window_ns(uint64_t{window_s == 0 ? 60u : window_s} * 1000000000ull),
        account(std::move(acct)),
        texts(p) {
    for (size_t i = 0; i < p.ifaceCount(); ++i) {
      const auto& info = p.iface(static_cast<rules::IfaceId>(i));
      iface_ids.push_back(info.id.empty() ? info.name : info.id);
      std::string subnet;
      if (info.subnet != rules::kNoSubnet) {
        const auto& s = p.subnet(info.subnet);
        subnet = s.id.empty() ? s.name : s.id;
      }
      subnet_ids.push_back(subnet);
    }
  }

  void flush() {
    for (const Agg& a : aggs) {
      FlowLogRecord r;
      r.version = 5;
      r.account_id = account;
      r.interface_id = iface_ids[a.key.iface];
      r.subnet_id = subnet_ids[a.key.iface];
      r.src = r.pkt_src = a.key.src;
      r.dst = r.pkt_dst = a.key.dst;
      r.has_addrs = true;
      r.sport = a.key.sport;
      r.dport = a.key.dport;
      r.proto = a.key.proto;
      r.packets = a.packets;
      r.bytes = a.bytes;
      r.start = a.first_ns / 1000000000ull;
      r.end = a.last_ns / 1000000000ull;
      r.action = a.key.action;
      r.tcp_flags = a.key.proto == dataplane::kIpProtoTcp ? a.flags : 0;
      r.type = a.key.src.isV4() ? "IPv4" : "IPv6";
      r.direction = a.key.egress ? FlowDirection::kEgress : FlowDirection::kIngress;
      const dataplane::Verdict& v = a.first;
      const std::string& rule = v.rule != rules::kNoRule            ? texts.ruleLabel(v.rule)
                                : v.acl_entry != rules::kNoAclEntry ? texts.aclLabel(v.acl_entry)
                                                                    : std::string();
      writer->write(r, rule, dataplane::reasonCode(v.reason));
    }
    aggs.clear();
    index.clear();
  }

  void add(const AggKey& k, uint64_t ts_ns, const dataplane::Verdict& v,
           const dataplane::ParsedPacket& p) {
    auto [it, fresh] = index.try_emplace(k, aggs.size());
    if (fresh) {
      aggs.push_back(Agg{k, ts_ns, ts_ns, 0, 0, 0, v});
    }
    Agg& a = aggs[it->second];
    a.last_ns = ts_ns;
    ++a.packets;
    a.bytes += p.ip_len;
    if (p.proto == dataplane::kIpProtoTcp) a.flags |= awsTcpFlags(p.tcp_flags);
  }
};

FlowLogAggregator::FlowLogAggregator(const rules::CompiledPolicy& policy, FlowLogWriter* writer,
                                     uint32_t window_s, std::string account_id)
    : impl_(std::make_unique<Impl>(policy, writer, window_s, std::move(account_id))) {}
FlowLogAggregator::~FlowLogAggregator() = default;

void FlowLogAggregator::add(uint64_t ts_ns, const dataplane::Verdict& v,
                            const dataplane::ParsedPacket& p) {
  if (p.l3 != dataplane::L3::kIpv4 && p.l3 != dataplane::L3::kIpv6) return;
  // Flow logs do not capture traffic to the AWS services (metadata, Amazon DNS, Time Sync,
  // DHCP) nor ARP and neighbour discovery.
  if (v.reason == dataplane::Reason::kAllowExempt) return;
  Impl& m = *impl_;
  const uint64_t w = ts_ns / m.window_ns;
  if (w != m.window) {
    const uint64_t before = m.writer->records();
    m.flush();
    records_ += m.writer->records() - before;
    m.window = w;
  }
  const bool icmp = p.proto == dataplane::kIpProtoIcmp || p.proto == dataplane::kIpProtoIcmpv6;
  AggKey k;
  k.proto = p.proto;
  k.src = p.src;
  k.dst = p.dst;
  k.sport = icmp ? 0 : p.sport;  // AWS logs ICMP with ports 0
  k.dport = icmp ? 0 : p.dport;
  const rules::IfaceId si = m.policy.interfaceOf(p.src);
  const rules::IfaceId di = m.policy.interfaceOf(p.dst);
  if (si != rules::kNoIface) {
    k.iface = si;
    k.egress = true;
    k.action = actionAtSide(v, m.policy, true);
    m.add(k, ts_ns, v, p);
  }
  if (di != rules::kNoIface && di != si) {
    k.iface = di;
    k.egress = false;
    k.action = actionAtSide(v, m.policy, false);
    if (k.action != FlowAction::kNone) m.add(k, ts_ns, v, p);
  }
}

void FlowLogAggregator::finish() {
  const uint64_t before = impl_->writer->records();
  impl_->flush();
  records_ += impl_->writer->records() - before;
}

}  // namespace statewall::sim
