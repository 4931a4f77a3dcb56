// VPC Flow Logs records: field names, formats, the writer and the aggregation of judged packets
// (statewall/flowlog/flow_log.hpp).
#include "statewall/flowlog/flow_log.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "statewall/rules/vocab.hpp"

namespace statewall::flowlog {
namespace {

constexpr std::array<std::string_view, kFlowLogFieldCount> kFieldNames = {
#define STATEWALL_FLOWLOG_NAME(e, name, version) name,
    STATEWALL_FLOWLOG_FIELDS(STATEWALL_FLOWLOG_NAME)
#undef STATEWALL_FLOWLOG_NAME
};

bool isDigit(char c) {
  return c >= '0' && c <= '9';
}

uint8_t awsTcpFlags(uint8_t f) {
  uint8_t out = 0;
  if (f & dataplane::kFin) out |= kFlowTcpFin;
  if (f & dataplane::kRst) out |= kFlowTcpRst;
  if (f & dataplane::kSyn) out |= (f & dataplane::kAck) ? kFlowTcpSynAck : kFlowTcpSyn;
  return out;
}

}  // namespace

std::string_view flowLogFieldName(FlowLogField f) {
  return f == FlowLogField::kUnknown ? std::string_view("?") : kFieldNames[static_cast<size_t>(f)];
}

std::optional<FlowLogField> parseFlowLogField(std::string_view name) {
  for (size_t i = 0; i < kFieldNames.size(); ++i)
    if (kFieldNames[i] == name) return static_cast<FlowLogField>(i);
  return std::nullopt;
}

std::string_view flowActionName(FlowAction a) {
  switch (a) {
    case FlowAction::kAccept:
      return "ACCEPT";
    case FlowAction::kReject:
      return "REJECT";
    case FlowAction::kNone:
      break;
  }
  return "-";
}

std::string_view flowDirectionName(FlowDirection d) {
  switch (d) {
    case FlowDirection::kIngress:
      return "ingress";
    case FlowDirection::kEgress:
      return "egress";
    case FlowDirection::kUnknown:
      break;
  }
  return "-";
}

FlowLogFormat FlowLogFormat::defaultV2() {
  FlowLogFormat f;
  for (size_t i = 0; i <= static_cast<size_t>(FlowLogField::kLogStatus); ++i) {
    f.fields.push_back(static_cast<FlowLogField>(i));
    f.names.emplace_back(kFieldNames[i]);
  }
  return f;
}

FlowLogFormat FlowLogFormat::v5() {
  FlowLogFormat f = defaultV2();
  for (FlowLogField x : {FlowLogField::kVpcId, FlowLogField::kSubnetId, FlowLogField::kTcpFlags,
                         FlowLogField::kType, FlowLogField::kPktSrcAddr, FlowLogField::kPktDstAddr,
                         FlowLogField::kFlowDirection, FlowLogField::kTrafficPath}) {
    f.fields.push_back(x);
    f.names.emplace_back(flowLogFieldName(x));
  }
  f.fields[0] = FlowLogField::kVersion;
  return f;
}

base::Expected<FlowLogFormat> FlowLogFormat::parse(std::string_view text) {
  using base::Status;
  FlowLogFormat f;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t'))
      ++i;
    if (i == text.size()) break;
    size_t j = i;
    while (j < text.size() && text[j] != ' ' && text[j] != '\t')
      ++j;
    std::string_view tok = text.substr(i, j - i);
    i = j;
    if (tok.size() >= 3 && tok.substr(0, 2) == "${" && tok.back() == '}') {
      tok = tok.substr(2, tok.size() - 3);
    } else if (tok.find_first_of("${}") != std::string_view::npos) {
      return Status::failure(fmt::format("bad field '{}': expected NAME or ${{NAME}}", tok));
    }
    auto known = parseFlowLogField(tok);
    if (!known && (tok.empty() || isDigit(tok[0]))) {
      return Status::failure(
          fmt::format("bad field '{}': expected a field name such as interface-id", tok));
    }
    if (known && std::find(f.fields.begin(), f.fields.end(), *known) != f.fields.end()) {
      return Status::failure(fmt::format("field '{}' is named twice", tok));
    }
    f.fields.push_back(known.value_or(FlowLogField::kUnknown));
    f.names.emplace_back(tok);
  }
  if (f.fields.empty()) {
    return Status::failure(
        "empty format: expected field names such as ${version} ${interface-id} ...");
  }
  for (FlowLogField need : {FlowLogField::kInterfaceId, FlowLogField::kSrcAddr,
                            FlowLogField::kDstAddr, FlowLogField::kSrcPort, FlowLogField::kDstPort,
                            FlowLogField::kProtocol, FlowLogField::kStart, FlowLogField::kAction}) {
    if (std::find(f.fields.begin(), f.fields.end(), need) == f.fields.end()) {
      return Status::failure(
          fmt::format("the format has no '{}' field: records cannot be judged without it",
                      flowLogFieldName(need)));
    }
  }
  return f;
}

std::string FlowLogFormat::headerLine() const {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += ' ';
    out += names[i];
  }
  return out;
}

FlowAction actionAtSide(const dataplane::Verdict& v, const rules::CompiledPolicy& policy,
                        bool source_side) {
  if (v.allowed()) return FlowAction::kAccept;
  bool denied_at_source;
  switch (v.reason) {
    case dataplane::Reason::kDenySg:
      denied_at_source = v.deny_dir == rules::Direction::kOutbound;
      break;
    case dataplane::Reason::kDenyAcl:
      // (An entry the policy does not have: statewalld names a verdict of the policy before.)
      denied_at_source = v.acl_entry != rules::kNoAclEntry &&
                         v.acl_entry < policy.aclEntryCount() &&
                         policy.aclEntry(v.acl_entry).dir == rules::Direction::kOutbound;
      break;
    default:
      return FlowAction::kReject;  // invalid, table full, malformed: no side let it through
  }
  if (source_side) return denied_at_source ? FlowAction::kReject : FlowAction::kAccept;
  return denied_at_source ? FlowAction::kNone : FlowAction::kReject;
}

base::Expected<std::unique_ptr<FlowLogWriter>> FlowLogWriter::open(const std::string& path,
                                                                   Format format,
                                                                   FlowLogFormat fields) {
  if (path == "-") {
    std::unique_ptr<FlowLogWriter> w = adopt(stdout, format, std::move(fields));
    w->owned_ = false;
    return w;
  }
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) {
    return base::Status::failure(fmt::format("{}: cannot create: {}", path, std::strerror(errno)));
  }
  return adopt(f, format, std::move(fields));
}

std::unique_ptr<FlowLogWriter> FlowLogWriter::adopt(FILE* f, Format format, FlowLogFormat fields) {
  std::unique_ptr<FlowLogWriter> w(new FlowLogWriter());
  w->f_ = f;
  w->owned_ = true;
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

base::Status FlowLogWriter::close() {
  if (f_ == nullptr) return base::Status::success();
  bool ok = std::fflush(f_) == 0 && !std::ferror(f_);
  if (owned_) ok = std::fclose(f_) == 0 && ok;
  f_ = nullptr;
  if (!ok) return base::Status::failure(std::string("write error: ") + std::strerror(errno));
  return base::Status::success();
}

// ---- aggregation ----

unsigned flowLogSides(const dataplane::Verdict& v, const rules::CompiledPolicy& policy,
                      rules::IfaceId si, rules::IfaceId di, FlowLogSide sides[2]) noexcept {
  unsigned n = 0;
  if (si != rules::kNoIface) sides[n++] = {si, true, actionAtSide(v, policy, true)};
  if (di != rules::kNoIface && di != si) {
    const FlowAction a = actionAtSide(v, policy, false);
    if (a != FlowAction::kNone) sides[n++] = {di, false, a};
  }
  return n;
}

unsigned flowLogKeys(const dataplane::Verdict& v, const dataplane::ParsedPacket& p,
                     const rules::CompiledPolicy& policy, FlowLogKey keys[2]) noexcept {
  if (!flowLogCounted(v, p)) return 0;
  FlowLogSide sides[2];
  const unsigned n =
      flowLogSides(v, policy, policy.interfaceOf(p.src), policy.interfaceOf(p.dst), sides);
  for (unsigned i = 0; i < n; ++i) {
    FlowLogKey& k = keys[i];
    k = FlowLogKey{};
    k.proto = p.proto;
    k.src = p.src;
    k.dst = p.dst;
    flowLogPorts(p, &k.sport, &k.dport);
    k.iface = sides[i].iface;
    k.egress = sides[i].egress;
    k.action = sides[i].action;
  }
  return n;
}

void flowLogBegin(FlowLogAgg* a, const FlowLogKey& k, uint64_t ts_ns,
                  const dataplane::Verdict& v) noexcept {
  *a = FlowLogAgg{};
  a->key = k;
  a->first_ns = a->last_ns = ts_ns;
  a->rule = v.rule;
  a->acl_entry = v.acl_entry;
  a->reason = v.reason;
}

void flowLogCount(FlowLogAgg* a, uint64_t ts_ns, const dataplane::ParsedPacket& p) noexcept {
  a->last_ns = ts_ns;
  ++a->packets;
  a->bytes += p.ip_len;
  if (p.proto == dataplane::kIpProtoTcp) a->flags |= awsTcpFlags(p.tcp_flags);
}

FlowLogNames::FlowLogNames(const rules::CompiledPolicy& p, std::string account_id)
    : account_(std::move(account_id)) {
  for (size_t i = 0; i < p.ifaceCount(); ++i) {
    const auto& info = p.iface(static_cast<rules::IfaceId>(i));
    iface_ids_.push_back(info.id.empty() ? info.name : info.id);
    std::string subnet;
    if (info.subnet != rules::kNoSubnet) {
      const auto& s = p.subnet(info.subnet);
      subnet = s.id.empty() ? s.name : s.id;
    }
    subnet_ids_.push_back(subnet);
  }
  // The vocabulary's short labels: "web inbound[0]", "public-acl inbound rule 90" / "... rule *".
  for (rules::RuleId r = 0; r < p.ruleCount(); ++r)
    rule_labels_.push_back(rules::ruleLabel(p.rule(r)));
  for (rules::AclEntryId e = 0; e < p.aclEntryCount(); ++e)
    acl_labels_.push_back(rules::aclEntryLabel(p.aclEntry(e)));
}

void FlowLogNames::write(FlowLogWriter& w, const FlowLogAgg& a) const {
  static const std::string kNone;
  auto at = [](const std::vector<std::string>& v, size_t i) -> const std::string& {
    return i < v.size() ? v[i] : kNone;
  };
  FlowLogRecord r;
  r.version = 5;
  r.account_id = account_;
  r.interface_id = at(iface_ids_, a.key.iface);
  r.subnet_id = at(subnet_ids_, a.key.iface);
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
  const std::string& rule = a.rule != rules::kNoRule            ? at(rule_labels_, a.rule)
                            : a.acl_entry != rules::kNoAclEntry ? at(acl_labels_, a.acl_entry)
                                                                : kNone;
  w.write(r, rule, dataplane::reasonCode(a.reason));
}

}  // namespace statewall::flowlog
