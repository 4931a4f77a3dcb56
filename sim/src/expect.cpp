#include "statewall/sim/expect.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "statewall/sim/flow_text.hpp"

namespace statewall::sim {
namespace {

using dataplane::Reason;

// "*", "*:443", "10.0.0.0/8", "10.0.1.10:443", "[2001:db8::/32]:1024-65535", "2001:db8::1".
bool parseSide(std::string_view s, std::optional<rules::Cidr>* cidr, uint16_t* lo, uint16_t* hi,
               bool* has_port) {
  const auto e = splitEndpoint(s);
  if (!e) return false;
  *has_port = e->has_port;
  if (e->host == "*") {
    cidr->reset();
  } else {
    auto c = rules::Cidr::parse(e->host);
    if (!c) return false;
    *cidr = *c;
  }
  if (e->has_port) return parsePortRange(e->port, lo, hi);
  *lo = 0;
  *hi = 65535;
  return true;
}

std::string markStr(const std::string& file, const YAML::Mark& m) {
  return fmt::format("{}:{}:{}", file, m.line + 1, m.column + 1);
}

struct ParseError {
  std::string msg;
};

}  // namespace

bool FlowPattern::matches(uint8_t p, const rules::IpAddr& s, const rules::IpAddr& d, uint16_t sp,
                          uint16_t dp, uint8_t itype, uint8_t icode) const {
  if (proto >= 0 && proto != p) return false;
  if (src && !src->contains(s)) return false;
  if (dst && !dst->contains(d)) return false;
  if (p == dataplane::kIpProtoIcmp || p == dataplane::kIpProtoIcmpv6) {
    if (icmp_type >= 0 && icmp_type != itype) return false;
    if (icmp_code >= 0 && icmp_code != icode) return false;
    return true;
  }
  if (sp < sport_lo || sp > sport_hi) return false;
  if (dp < dport_lo || dp > dport_hi) return false;
  return true;
}

base::Expected<FlowPattern> parseFlowPattern(std::string_view text) {
  FlowPattern f;
  f.text = std::string(text);
  auto fail = [&](const std::string& msg) {
    return base::Status::failure(fmt::format("flow pattern '{}': {}", text, msg));
  };
  auto words = splitFlow(text);
  if (!words) return fail("expected PROTO SRC -> DST");
  std::vector<std::string> tok = {words->proto, words->src, "->", words->dst};
  tok.insert(tok.end(), words->rest.begin(), words->rest.end());
  const std::string& p = tok[0];
  if (p == "*" || p == "any") {
    f.proto = -1;
  } else if (auto n = rules::parseProtocol(p)) {  // "all" is kProtoAll, -1
    f.proto = *n;
  } else {
    return fail("unknown protocol '" + p + "'");
  }
  bool sp = false, dp = false;
  if (!parseSide(tok[1], &f.src, &f.sport_lo, &f.sport_hi, &sp)) {
    return fail("bad source '" + tok[1] + "'");
  }
  if (!parseSide(tok[3], &f.dst, &f.dport_lo, &f.dport_hi, &dp)) {
    return fail("bad destination '" + tok[3] + "'");
  }
  if (f.src && f.dst && f.src->family() != f.dst->family()) {
    return fail("source and destination families differ");
  }
  bool icmp = f.proto == dataplane::kIpProtoIcmp || f.proto == dataplane::kIpProtoIcmpv6;
  if ((sp || dp) && f.proto != dataplane::kIpProtoTcp && f.proto != dataplane::kIpProtoUdp &&
      f.proto != -1) {
    return fail("ports only apply to tcp and udp");
  }
  for (size_t i = 4; i < tok.size(); ++i) {
    size_t eq = tok[i].find('=');
    std::string k = tok[i].substr(0, eq == std::string::npos ? tok[i].size() : eq);
    uint64_t n = 0;
    if (!icmp || eq == std::string::npos || (k != "type" && k != "code") ||
        !parseDecimal(std::string_view(tok[i]).substr(eq + 1), 255, &n)) {
      return fail("unexpected '" + tok[i] + "' (icmp patterns take type=N code=N)");
    }
    (k == "type" ? f.icmp_type : f.icmp_code) = static_cast<int>(n);
  }
  return f;
}

namespace detail {

bool packetMatches(const Expectation& e, uint64_t index, const dataplane::ParsedPacket& p) {
  if (e.kind == Expectation::Kind::kPackets) {
    return index >= e.first_index && index <= e.last_index;
  }
  if (p.l3 != dataplane::L3::kIpv4 && p.l3 != dataplane::L3::kIpv6) return false;
  const FlowPattern& f = e.pattern;
  if (f.matches(p.proto, p.src, p.dst, p.sport, p.dport, p.icmp_type, p.icmp_code)) return true;
  if (e.kind != Expectation::Kind::kConnection) return false;
  // The reverse direction: replies of a matching connection. ICMP echo replies carry a
  // different type, so ICMP type/code constraints only bind the forward direction.
  FlowPattern rev = f;
  rev.icmp_type = rev.icmp_code = -1;
  return rev.matches(p.proto, p.dst, p.src, p.dport, p.sport, p.icmp_type, p.icmp_code);
}

bool verdictHolds(const Expectation& e, Reason r) {
  if (e.want_allow && *e.want_allow != dataplane::reasonAllows(r)) return false;
  if (e.reasons != 0 && (e.reasons & (1u << static_cast<unsigned>(r))) == 0) return false;
  return true;
}

}  // namespace detail

base::Expected<Expectations> Expectations::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return base::Status::failure(fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
  std::stringstream ss;
  ss << in.rdbuf();
  return parse(path, ss.str());
}

base::Expected<Expectations> Expectations::parse(const std::string& name, const std::string& text) {
  try {
    return parseYaml(name, text);
  } catch (const YAML::Exception& ex) {
    return base::Status::failure(fmt::format("{}: {}", markStr(name, ex.mark), ex.msg));
  }
}

base::Expected<Expectations> Expectations::parseYaml(const std::string& name,
                                                     const std::string& text) {
  Expectations out;
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& ex) {
    return base::Status::failure(fmt::format("{}: {}", markStr(name, ex.mark), ex.msg));
  }
  auto fail = [&](const YAML::Node& n, const std::string& msg) {
    return base::Status::failure(fmt::format("{}: {}", markStr(name, n.Mark()), msg));
  };
  if (root.IsMap()) {
    for (auto it = root.begin(); it != root.end(); ++it) {
      const YAML::Node key_node = it->first;
      if (key_node.as<std::string>() != "expect") {
        return fail(key_node, "unknown key '" + key_node.as<std::string>() +
                                  "' (the file holds 'expect: [...]')");
      }
    }
  }
  // yaml-cpp's Node::operator= writes through to the node referred to: no reassignment here.
  const YAML::Node list = root.IsMap() ? root["expect"] : root;
  if (!list || !list.IsSequence()) {
    return fail(root, "expected a list of expectations (or 'expect:' holding one)");
  }
  for (const auto& item : list) {
    if (!item.IsMap()) return fail(item, "each expectation is a map");
    Expectation e;
    e.where = fmt::format("{}:{}", name, item.Mark().line + 1);
    int subjects = 0;
    for (auto it = item.begin(); it != item.end(); ++it) {
      // By value: the iterator's pair is a temporary (a reference into it would dangle).
      const YAML::Node key_node = it->first;
      const YAML::Node v = it->second;
      const std::string key = key_node.as<std::string>();
      auto scalar = [&](std::string* s) {
        if (!v.IsScalar()) return false;
        *s = v.as<std::string>();
        return true;
      };
      std::string s;
      if (key == "name") {
        if (!scalar(&e.name)) return fail(v, "name: expected text");
      } else if (key == "flow" || key == "connection") {
        ++subjects;
        if (!scalar(&s)) return fail(v, key + ": expected a flow pattern");
        auto pat = parseFlowPattern(s);
        if (!pat) return fail(v, pat.message());
        e.kind = key == "flow" ? Expectation::Kind::kFlow : Expectation::Kind::kConnection;
        e.pattern = *pat;
        e.what = key + " " + s;
      } else if (key == "packet" || key == "packets") {
        ++subjects;
        if (!scalar(&s)) return fail(v, key + ": expected an index or FIRST-LAST");
        size_t dash = s.find('-');
        uint64_t a = 0, b = 0;
        bool ok = dash == std::string::npos
                      ? parseDecimal(s, UINT64_MAX, &a) && (b = a, true)
                      : parseDecimal(std::string_view(s).substr(0, dash), UINT64_MAX, &a) &&
                            parseDecimal(std::string_view(s).substr(dash + 1), UINT64_MAX, &b);
        if (!ok || a == 0 || a > b) {
          return fail(v, key + ": expected a 1-based index or FIRST-LAST, got '" + s + "'");
        }
        e.kind = Expectation::Kind::kPackets;
        e.first_index = a;
        e.last_index = b;
        e.what = a == b ? fmt::format("packet {}", a) : fmt::format("packets {}-{}", a, b);
      } else if (key == "verdict") {
        if (!scalar(&s) || (s != "allow" && s != "deny")) {
          return fail(v, "verdict: expected allow or deny");
        }
        e.want_allow = s == "allow";
      } else if (key == "reason") {
        std::vector<std::string> codes;
        if (v.IsScalar()) {
          codes.push_back(v.as<std::string>());
        } else if (v.IsSequence()) {
          for (const auto& c : v) {
            if (!c.IsScalar()) return fail(c, "reason: expected reason codes");
            codes.push_back(c.as<std::string>());
          }
        } else {
          return fail(v, "reason: expected a reason code or a list of them");
        }
        for (const auto& c : codes) {
          auto r = dataplane::parseReason(c);
          if (!r) {
            std::string all;
            for (auto code : dataplane::kReasonCodes) {
              all += fmt::format("{}{}", all.empty() ? "" : ", ", code);
            }
            return fail(v, fmt::format("reason: unknown code '{}' (one of {})", c, all));
          }
          e.reasons |= 1u << static_cast<unsigned>(*r);
        }
      } else if (key == "match") {
        if (!scalar(&s)) return fail(v, "match: expected all, any or first");
        if (s == "all") {
          e.quant = Expectation::Quantifier::kAll;
        } else if (s == "any") {
          e.quant = Expectation::Quantifier::kAny;
        } else if (s == "first") {
          e.quant = Expectation::Quantifier::kFirst;
        } else {
          return fail(v, "match: expected all, any or first");
        }
      } else if (key == "count") {
        uint64_t n = 0;
        if (!scalar(&s) || !parseDecimal(s, UINT64_MAX, &n))
          return fail(v, "count: expected a number");
        e.count = n;
      } else {
        return fail(key_node, "unknown key '" + key +
                                  "' (name, flow, connection, packet, packets, verdict, reason, "
                                  "match, count)");
      }
    }
    if (subjects != 1) {
      return fail(item, "give exactly one of flow, connection, packet, packets");
    }
    if (!e.want_allow && e.reasons == 0) return fail(item, "give a verdict and/or a reason");
    if (e.want_allow && e.reasons != 0) {
      for (size_t r = 0; r < dataplane::kReasonCount; ++r) {
        if ((e.reasons & (1u << r)) && dataplane::kReasonAllows[r] != *e.want_allow) {
          return fail(item,
                      fmt::format("reason {} contradicts verdict {}", dataplane::kReasonCodes[r],
                                  *e.want_allow ? "allow" : "deny"));
        }
      }
    }
    out.items_.push_back(std::move(e));
  }
  return out;
}

std::vector<ExpectResult> Expectations::results() const {
  std::vector<ExpectResult> out;
  for (const auto& e : items_) {
    ExpectResult r;
    r.where = e.where;
    r.name = e.name;
    r.what = e.what;
    r.matched = e.matched;
    std::string reasons;
    for (size_t i = 0; i < dataplane::kReasonCount; ++i) {
      if (e.reasons & (1u << i)) {
        reasons += fmt::format("{}{}", reasons.empty() ? "" : " or ", dataplane::kReasonCodes[i]);
      }
    }
    if (e.want_allow) {
      r.expected = *e.want_allow ? "allow" : "deny";
      if (!reasons.empty()) r.expected += " (" + reasons + ")";
    } else {
      r.expected = reasons;
    }
    const char* quant = e.quant == Expectation::Quantifier::kAll   ? "all"
                        : e.quant == Expectation::Quantifier::kAny ? "any"
                                                                   : "first";
    if (e.count && e.matched != *e.count) {
      r.passed = false;
      r.outcome = fmt::format("{} packets matched, expected exactly {}", e.matched, *e.count);
    } else if (e.matched == 0) {
      r.passed = false;
      r.outcome = "no packet matched";
    } else {
      switch (e.quant) {
        case Expectation::Quantifier::kAll:
          r.passed = e.held == e.matched;
          break;
        case Expectation::Quantifier::kAny:
          r.passed = e.held > 0;
          break;
        case Expectation::Quantifier::kFirst:
          r.passed = e.first_held;
          break;
      }
      if (r.passed) {
        r.outcome = fmt::format("{} of {} matching packets as expected (match: {})", e.held,
                                e.matched, quant);
      } else if (e.quant == Expectation::Quantifier::kFirst) {
        r.outcome =
            fmt::format("the first matching packet, #{}, was {}", e.first_bad, e.first_bad_detail);
      } else {
        r.outcome = fmt::format("{} of {} matching packets were not; first #{}: {}",
                                e.matched - e.held, e.matched, e.first_bad, e.first_bad_detail);
      }
    }
    out.push_back(std::move(r));
  }
  return out;
}

bool Expectations::allPassed() const {
  for (const auto& r : results())
    if (!r.passed) return false;
  return true;
}

}  // namespace statewall::sim
