#include "statewall/sim/query_analysis.hpp"

#include <algorithm>
#include <cstdint>

#include <fmt/format.h>

#include "statewall/dataplane/packet.hpp"
#include "statewall/sim/flow_text.hpp"

namespace statewall::sim {
namespace {

using rules::CheckKind;
using rules::CompiledPolicy;
using rules::Direction;
using rules::Evaluation;
using rules::Flow5;
using rules::IpAddr;

// ---- flow syntax ----

struct Endpoint {
  IpAddr addr;
  std::optional<uint16_t> port;
  bool bracketed = false;
};

base::Expected<Endpoint> parseEndpoint(std::string_view s) {
  using base::Status;
  const auto e = splitEndpoint(s);
  if (!e) return e.status();
  Endpoint ep;
  ep.bracketed = e->bracketed;
  auto a = IpAddr::parse(e->host);
  if (!a) {
    return Status::failure(
        fmt::format("'{}' is not an IPv4 or IPv6 address{}", e->host,
                    std::count(s.begin(), s.end(), ':') > 1 && !e->bracketed
                        ? " (write IPv6 addresses with a port in brackets: [2001:db8::1]:443)"
                        : ""));
  }
  if (e->bracketed && a->isV4()) {
    return Status::failure(fmt::format("'{}': brackets are for IPv6 addresses", s));
  }
  ep.addr = *a;
  if (e->has_port) {
    uint64_t p = 0;
    if (!parseDecimal(e->port, 65535, &p)) {
      return Status::failure(fmt::format("'{}': the port must be a number 0..65535", s));
    }
    ep.port = static_cast<uint16_t>(p);
  }
  return ep;
}

}  // namespace

// PROTO SRC[:PORT] -> DST[:PORT] [type=T[,code=C]]
base::Expected<Flow5> parseQueryFlow(std::string_view text) {
  using base::Status;
  auto words = splitFlow(text);
  if (!words) return words.status();
  std::vector<std::string> tok = {words->proto, words->src, "->", words->dst};
  tok.insert(tok.end(), words->rest.begin(), words->rest.end());
  Flow5 f;
  const std::string& proto = tok[0];
  if (auto n = parseProtocol(proto)) {
    f.proto = *n;
  } else {
    return Status::failure(fmt::format(
        "unknown protocol '{}': expected tcp, udp, icmp, icmpv6 or a number 0..255", proto));
  }
  auto src = parseEndpoint(tok[1]);
  if (!src) return src.status();
  auto dst = parseEndpoint(tok[3]);
  if (!dst) return dst.status();
  if (src->addr.family != dst->addr.family) {
    return Status::failure("the source and the destination must both be IPv4 or both IPv6");
  }
  f.src = src->addr;
  f.dst = dst->addr;
  const bool ports = rules::protoHasPorts(f.proto);
  for (const auto& [ep, word] : {std::pair{&*src, &tok[1]}, std::pair{&*dst, &tok[3]}}) {
    if (ports && !ep->addr.isV4() && !ep->bracketed) {
      return Status::failure(
          fmt::format("'{}': write IPv6 addresses of {} flows in brackets, e.g. [2001:db8::1]:443",
                      *word, proto));
    }
  }
  const bool icmp = rules::protoIsIcmp(f.proto);
  if (ports) {
    if (!dst->port) {
      return Status::failure(fmt::format("{} needs a destination port: DST:PORT", proto));
    }
    f.dport = *dst->port;
    f.sport = src->port.value_or(kQueryDefaultSourcePort);
  } else if (src->port || dst->port) {
    return Status::failure(fmt::format("ports apply to tcp and udp only, not to {}", proto));
  }
  if (icmp) {
    f.icmp_type = f.proto == rules::kProtoIcmp ? 8 : 128;  // echo request unless told
    f.icmp_code = 0;
  }
  for (size_t k = 4; k < tok.size(); ++k) {
    const std::string& t = tok[k];
    const size_t eq = t.find('=');
    const std::string key = t.substr(0, eq);
    uint64_t v = 0;
    if (eq == std::string::npos || (key != "type" && key != "code")) {
      return Status::failure(fmt::format(
          "unexpected '{}': after the destination only type=T,code=C (ICMP) may follow", t));
    }
    if (!icmp) {
      return Status::failure(fmt::format("'{}': type and code apply to icmp and icmpv6 only", t));
    }
    if (!parseDecimal(std::string_view(t).substr(eq + 1), 255, &v)) {
      return Status::failure(fmt::format("'{}': {} must be a number 0..255", t, key));
    }
    (key == "type" ? f.icmp_type : f.icmp_code) = static_cast<uint8_t>(v);
  }
  return f;
}

namespace {

std::string reasonOf(const Evaluation& e) {
  if (e.unprotected) return e.allowed ? "allow-unprotected" : "deny-sg";
  if (!e.allowed) {
    return e.checks[static_cast<size_t>(e.first_deny)].kind == CheckKind::kAcl ? "deny-acl"
                                                                               : "deny-sg";
  }
  return e.untracked ? "allow-untracked" : "allow-rule";
}

ReplyAnalysis analyseReply(const CompiledPolicy& cp, const Evaluation& first, const Flow5& reply) {
  ReplyAnalysis r;
  r.flow = reply;
  auto side = [&](bool is_source, const rules::Check& c) {
    ReplySide s;
    s.is_source = is_source;
    s.iface = c.iface;
    s.untracked = c.sg.untracked;
    if (s.untracked) {
      // The reply leaves the first packet's destination (its outbound rules) or arrives at the
      // first packet's source (its inbound rules).
      const Direction d = is_source ? Direction::kInbound : Direction::kOutbound;
      const rules::FlowSpec spec =
          is_source ? rules::dstSideSpec(reply) : rules::srcSideSpec(reply);
      s.sg = cp.classify(c.iface, d, spec);
      r.allowed = r.allowed && s.sg.allowed();
    }
    r.sides.push_back(s);
  };
  for (int i = 0; i < first.n_checks; ++i) {
    const rules::Check& c = first.checks[static_cast<size_t>(i)];
    if (c.kind == CheckKind::kSg) side(c.dir == Direction::kOutbound, c);
  }
  rules::evaluate(cp, reply, rules::EvalMode::kAclOnly, &r.acl);
  r.allowed = r.allowed && r.acl.allowed;
  return r;
}

std::string replyDropper(const CompiledPolicy& cp, const ReplyAnalysis& ra) {
  for (int i = 0; i < ra.acl.n_checks; ++i) {
    const rules::Check& c = ra.acl.checks[static_cast<size_t>(i)];
    if (c.allowed) continue;
    const rules::AclEntryInfo& e = cp.aclEntry(c.acl.entry);
    return fmt::format("network ACL {} ({})", e.acl_name, rules::directionName(e.dir));
  }
  for (const ReplySide& s : ra.sides)
    if (s.untracked && !s.sg.allowed())
      return fmt::format("{}'s {} rules (the flow is untracked)", cp.iface(s.iface).name,
                         s.is_source ? "inbound" : "outbound");
  return "the rules";
}

std::optional<IcmpErrorNote> icmpErrorNote(const Flow5& f, const Evaluation& ev) {
  const bool v6 = f.proto == rules::kProtoIcmpV6;
  if ((f.proto != rules::kProtoIcmp && !v6) || !dataplane::icmpIsError(v6, f.icmp_type))
    return std::nullopt;
  IcmpErrorNote n;
  const std::string name = icmpName(v6, f.icmp_type, f.icmp_code);
  n.what =
      fmt::format("{} {}", v6 ? "icmpv6" : "icmp",
                  name.empty() ? fmt::format("type {} code {}", f.icmp_type, f.icmp_code) : name);
  n.path_mtu = dataplane::icmpIsPathMtuError(v6, f.icmp_type, f.icmp_code);
  if (!dataplane::icmpErrorMayBeRelated(v6, f.icmp_type)) {
    n.related = fmt::format(
        "{} is an ICMP error that is never related to a connection (only destination "
        "unreachable, packet too big, time exceeded and parameter problem are): the rules below "
        "judge it whatever it quotes.",
        n.what);
    return n;
  }
  n.may_be_related = true;
  n.related = fmt::format(
      "{} is an ICMP error. One about a connection that is tracked, sent back to the host that "
      "sent the packet it quotes, passes as related (allow-related) without a security-group "
      "rule; network ACLs judge it either way. Below is how an error about no tracked connection "
      "(an untracked flow's, or a stray one) is judged.",
      n.what);
  if (n.path_mtu && !ev.allowed) {
    const bool by_acl =
        ev.first_deny >= 0 && ev.checks[static_cast<size_t>(ev.first_deny)].kind == CheckKind::kAcl;
    n.warning =
        by_acl ? fmt::format(
                     "the network ACL drops this error even when it is related: path-MTU "
                     "discovery fails for every connection of {} that needs it (large transfers "
                     "hang while small packets pass). AWS documents network ACL rules for these "
                     "messages in both directions.",
                     f.dst.str())
               : fmt::format(
                     "denied when it is about no tracked connection: path-MTU discovery fails "
                     "for {}'s untracked flows (large transfers hang while small packets pass); "
                     "its tracked connections get it as related.",
                     f.dst.str());
  }
  return n;
}

}  // namespace

std::optional<Flow5> replyOf(const Flow5& f) {
  Flow5 r = f;
  r.src = f.dst;
  r.dst = f.src;
  r.sport = f.dport;
  r.dport = f.sport;
  if (f.proto == rules::kProtoIcmp) {
    switch (f.icmp_type) {
      case 8:
        r.icmp_type = 0;
        break;  // echo
      case 13:
        r.icmp_type = 14;
        break;  // timestamp
      case 15:
        r.icmp_type = 16;
        break;  // information
      case 17:
        r.icmp_type = 18;
        break;  // address mask
      default:
        return std::nullopt;
    }
  } else if (f.proto == rules::kProtoIcmpV6) {
    if (f.icmp_type != 128) return std::nullopt;
    r.icmp_type = 129;
  }
  return r;
}

std::string_view repliesName(Replies r) {
  switch (r) {
    case Replies::kPass:
      return "pass";
    case Replies::kDropped:
      return "dropped";
    case Replies::kNoneExpected:
      return "none expected";
    case Replies::kNoConnection:
      break;
  }
  return "no connection";
}

std::vector<int> QueryAnalysis::checksOfSide(bool source) const {
  std::vector<int> idx;
  for (int i = 0; i < first.n_checks; ++i)
    if ((first.checks[static_cast<size_t>(i)].dir == Direction::kOutbound) == source)
      idx.push_back(i);
  return idx;
}

QueryAnalysis analyseQuery(const CompiledPolicy& cp, const Flow5& flow) {
  QueryAnalysis q;
  q.flow = flow;
  q.exemption = rules::serviceExemption(cp, flow);
  if (q.exemption != rules::Exemption::kNone) {
    q.reason = "allow-exempt";
    return q;
  }
  rules::evaluate(cp, flow, rules::EvalMode::kFull, &q.first);
  q.reason = reasonOf(q.first);
  q.reply = replyOf(flow);
  if (q.first.allowed && q.reply && !q.first.unprotected)
    q.reply_analysis = analyseReply(cp, q.first, *q.reply);
  if (!q.first.allowed) {
    q.replies = Replies::kNoConnection;
  } else if (!q.reply) {
    q.replies = Replies::kNoneExpected;
  } else if (q.reply_analysis && !q.reply_analysis->allowed) {
    q.replies = Replies::kDropped;
    q.reply_dropper = replyDropper(cp, *q.reply_analysis);
  } else {
    q.replies = Replies::kPass;
  }
  q.icmp_error = icmpErrorNote(flow, q.first);
  return q;
}

}  // namespace statewall::sim
