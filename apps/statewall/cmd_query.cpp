// `statewall query --policy P... 'tcp 198.51.100.7:50000 -> 10.0.1.10:443'`: the verdict for
// the first packet of a flow, every rule and ACL entry that decided it on each side, and what
// happens to the replies (tracked, untracked and needing a rule, or dropped by a stateless ACL).
// Exit 0 allowed, 1 denied, 2 usage error, unreadable flow or a policy that does not load.
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "json_text.hpp"
#include "policy_input.hpp"
#include "statewall/rules/compiled.hpp"
#include "statewall/rules/evaluate.hpp"
#include "statewall/rules/exemption.hpp"
#include "statewall/rules/vocab.hpp"
#include "statewall/rules/vocab_json.hpp"
#include "statewall/sim/query_analysis.hpp"

namespace statewall::cli {
namespace {

using rules::CheckKind;
using rules::CompiledPolicy;
using rules::Direction;
using rules::Evaluation;
using rules::Flow5;
using rules::IpAddr;

struct QueryArgs {
  std::vector<std::string> policies;
  std::vector<std::string> flow_words;
  bool json = false;
};

// ---- rendering of sim::QueryAnalysis (sim/query_analysis.hpp) ----

std::string protoStr(uint8_t p) {
  return rules::protoName(p);
}

std::string endpointStr(const IpAddr& a, std::optional<uint16_t> port) {
  return port ? rules::endpointText(a, *port) : a.str();
}

std::string flowStr(const Flow5& f) {
  const bool ports = rules::protoHasPorts(f.proto);
  std::string s =
      fmt::format("{} {} -> {}", protoStr(f.proto),
                  endpointStr(f.src, ports ? std::optional<uint16_t>(f.sport) : std::nullopt),
                  endpointStr(f.dst, ports ? std::optional<uint16_t>(f.dport) : std::nullopt));
  if (rules::protoIsIcmp(f.proto)) s += fmt::format(" type={},code={}", f.icmp_type, f.icmp_code);
  return s;
}

nlohmann::ordered_json flowJson(const Flow5& f) {
  nlohmann::ordered_json j = {
      {"proto", protoStr(f.proto)}, {"src", f.src.str()}, {"dst", f.dst.str()}};
  if (rules::protoHasPorts(f.proto)) {
    j["sport"] = f.sport;
    j["dport"] = f.dport;
  }
  if (rules::protoIsIcmp(f.proto)) {
    j["type"] = f.icmp_type;
    j["code"] = f.icmp_code;
  }
  return j;
}

std::string ruleStr(const CompiledPolicy& cp, rules::RuleId id) {
  const rules::RuleInfo& r = cp.rule(id);
  std::string s = rules::ruleLabelWords(r) + ": " + r.text;
  if (!r.description.empty()) s += fmt::format(" ({})", r.description);
  if (!r.loc.file.empty()) s += fmt::format(" [{}]", r.loc.str());
  return s;
}

nlohmann::ordered_json ruleJson(const CompiledPolicy& cp, rules::RuleId id) {
  const rules::RuleInfo& r = cp.rule(id);
  auto j = rules::ruleJson<nlohmann::ordered_json>(r);
  j["description"] = r.description;
  j["location"] = r.loc.file.empty() ? "" : r.loc.str();
  return j;
}

// "network ACL public-acl inbound: allow by rule 110: 110 allow tcp 443 from 0.0.0.0/0 [loc]"
std::string aclStr(const CompiledPolicy& cp, const rules::AclVerdict& v) {
  const rules::AclEntryInfo& e = cp.aclEntry(v.entry);
  std::string s = fmt::format("network ACL {} {}: {} by rule ", e.acl_name,
                              rules::directionName(e.dir), e.allow ? "allow" : "deny");
  if (e.rule_number == 0) return s + "* (no numbered rule matches)";
  s += fmt::format("{}: {}", e.rule_number, e.text);
  if (!e.loc.file.empty()) s += fmt::format(" [{}]", e.loc.str());
  return s;
}

nlohmann::ordered_json aclJson(const CompiledPolicy& cp, const rules::AclVerdict& v) {
  const rules::AclEntryInfo& e = cp.aclEntry(v.entry);
  return {{"acl", e.acl_name},
          {"direction", rules::directionName(e.dir)},
          {"number", e.ruleNumberStr()},
          {"action", e.allow ? "allow" : "deny"},
          {"text", e.text},
          {"location", e.loc.file.empty() ? "" : e.loc.str()}};
}

std::string groupsStr(const rules::InterfaceInfo& itf) {
  std::string s;
  for (const auto& g : itf.group_names)
    s += (s.empty() ? "" : ", ") + g;
  return s.empty() ? "no groups" : "groups " + s;
}

int runQuery(const QueryArgs& a) {
  std::string text;
  for (const auto& w : a.flow_words)
    text += (text.empty() ? "" : " ") + w;
  const base::Expected<Flow5> flow = sim::parseQueryFlow(text);
  if (!flow) {
    std::fprintf(stderr, "statewall query: bad flow '%s': %s\n", text.c_str(),
                 flow.message().c_str());
    return 2;
  }
  const rules::CompiledPolicyPtr policy =
      loadCompiledPolicy(a.policies, "query", "nothing evaluated");
  if (!policy) return 2;
  const CompiledPolicy& cp = *policy;
  const sim::QueryAnalysis q = sim::analyseQuery(cp, *flow);

  if (const rules::Exemption x = q.exemption; x != rules::Exemption::kNone) {
    const std::string words(rules::exemptionWords(x));
    const std::string note = "traffic with " + words +
                             " passes without security-group or network-ACL rules, as in AWS "
                             "(the policy's 'exempt: false' turns this off)";
    if (a.json) {
      nlohmann::ordered_json out;
      out["flow"] = flowJson(*flow);
      out["verdict"] = "allow";
      out["reason"] = q.reason;
      out["exemption"] = std::string(rules::exemptionName(x));
      out["note"] = note;
      std::printf("%s\n", jsonText(out, 2).c_str());
      return 0;
    }
    std::printf("%s\nverdict: allow (%s: %s)\n  %s\n", flowStr(*flow).c_str(), q.reason.c_str(),
                std::string(rules::exemptionName(x)).c_str(), note.c_str());
    return 0;
  }

  const Evaluation& ev = q.first;
  const std::string& reason = q.reason;
  const std::optional<Flow5>& reply = q.reply;
  const std::optional<sim::ReplyAnalysis>& ra = q.reply_analysis;
  const std::string replies(sim::repliesName(q.replies));
  const std::optional<sim::IcmpErrorNote>& icmp_note = q.icmp_error;

  if (a.json) {
    nlohmann::ordered_json out;
    out["flow"] = flowJson(*flow);
    out["verdict"] = ev.allowed ? "allow" : "deny";
    out["reason"] = reason;
    out["replies"] = replies;
    if (icmp_note) {
      out["icmp_error"] = {{"error", true},
                           {"name", icmp_note->what.substr(icmp_note->what.find(' ') + 1)},
                           {"may_be_related", icmp_note->may_be_related},
                           {"path_mtu", icmp_note->path_mtu},
                           {"note", icmp_note->related}};
      if (!icmp_note->warning.empty()) out["icmp_error"]["warning"] = icmp_note->warning;
    }
    out["sides"] = nlohmann::ordered_json::array();
    for (bool source : {true, false}) {
      const IpAddr& addr = source ? flow->src : flow->dst;
      const rules::IfaceId iface = source ? ev.src_iface : ev.dst_iface;
      nlohmann::ordered_json s = {{"side", source ? "source" : "destination"},
                                  {"address", addr.str()},
                                  {"protected", iface != rules::kNoIface}};
      if (iface != rules::kNoIface) {
        const rules::InterfaceInfo& itf = cp.iface(iface);
        s["interface"] = itf.name;
        s["subnet"] = itf.subnet == rules::kNoSubnet
                          ? nlohmann::ordered_json(nullptr)
                          : nlohmann::ordered_json(cp.subnet(itf.subnet).name);
        s["groups"] = itf.group_names;
        s["checks"] = nlohmann::ordered_json::array();
        for (int i : q.checksOfSide(source)) {
          const rules::Check& c = ev.checks[static_cast<size_t>(i)];
          nlohmann::ordered_json cj = {{"kind", c.kind == CheckKind::kSg ? "sg" : "acl"},
                                       {"direction", rules::directionName(c.dir)},
                                       {"allowed", c.allowed},
                                       {"decisive", i == ev.first_deny}};
          if (c.kind == CheckKind::kSg) {
            cj["rule"] = c.sg.allowed() ? ruleJson(cp, c.sg.rule) : nlohmann::ordered_json(nullptr);
            if (c.sg.allowed()) {
              s["tracking"] = c.sg.untracked ? "untracked" : "tracked";
              cj["untracked"] = c.sg.untracked;
            }
          } else {
            cj["entry"] = aclJson(cp, c.acl);
          }
          s["checks"].push_back(cj);
        }
      }
      out["sides"].push_back(s);
    }
    nlohmann::ordered_json rj;
    if (icmp_note) {
      rj = {{"expected", false}, {"note", "an ICMP error has no reply"}};
    } else if (!ev.allowed) {
      rj = {{"expected", false}, {"note", "the first packet is denied: no connection"}};
    } else if (!reply) {
      rj = {{"expected", false}, {"note", "this ICMP type has no reply"}};
    } else if (ev.unprotected) {
      rj = {{"expected", true},
            {"flow", flowJson(*reply)},
            {"verdict", "allow"},
            {"note", "unprotected traffic: the reply passes as the first packet did"}};
    } else {
      rj["expected"] = true;
      rj["flow"] = flowJson(ra->flow);
      rj["verdict"] = ra->allowed ? "allow" : "deny";
      rj["sides"] = nlohmann::ordered_json::array();
      for (const sim::ReplySide& s : ra->sides) {
        nlohmann::ordered_json sj = {{"side", s.is_source ? "source" : "destination"},
                                     {"interface", cp.iface(s.iface).name},
                                     {"tracking", s.untracked ? "untracked" : "tracked"},
                                     {"needs_rule", s.untracked}};
        if (s.untracked) {
          sj["allowed"] = s.sg.allowed();
          sj["rule"] = s.sg.allowed() ? ruleJson(cp, s.sg.rule) : nlohmann::ordered_json(nullptr);
        } else {
          sj["allowed"] = true;
        }
        rj["sides"].push_back(sj);
      }
      rj["acl_checks"] = nlohmann::ordered_json::array();
      for (int i = 0; i < ra->acl.n_checks; ++i) {
        const rules::Check& c = ra->acl.checks[static_cast<size_t>(i)];
        rj["acl_checks"].push_back({{"direction", rules::directionName(c.dir)},
                                    {"allowed", c.allowed},
                                    {"entry", aclJson(cp, c.acl)}});
      }
      rj["acl_drops"] = !ra->acl.allowed;
    }
    out["reply"] = rj;
    std::printf("%s\n", jsonText(out, 2).c_str());
    return ev.allowed ? 0 : 1;
  }

  std::printf("%s\n", flowStr(*flow).c_str());
  if (replies == "dropped") {
    std::printf(
        "verdict: allow (%s), but the replies are dropped by %s: the connection cannot "
        "complete\n",
        reason.c_str(), q.reply_dropper.c_str());
  } else {
    std::printf("verdict: %s (%s)\n", ev.allowed ? "allow" : "deny", reason.c_str());
  }
  if (icmp_note) {
    std::printf("  %s\n", icmp_note->related.c_str());
    if (!icmp_note->warning.empty()) std::printf("  warning: %s\n", icmp_note->warning.c_str());
  }
  if (ev.unprotected) {
    std::printf(
        "  neither %s nor %s is a protected interface address; the policy's 'unprotected: %s' "
        "decides\n",
        flow->src.str().c_str(), flow->dst.str().c_str(), ev.allowed ? "allow" : "deny");
  }
  for (bool source : {true, false}) {
    const IpAddr& addr = source ? flow->src : flow->dst;
    const rules::IfaceId iface = source ? ev.src_iface : ev.dst_iface;
    const char* side = source ? "source" : "destination";
    if (ev.unprotected) break;
    if (iface == rules::kNoIface) {
      std::printf("\n%s %s: not a protected interface address (no rules on this side)\n", side,
                  addr.str().c_str());
      continue;
    }
    const rules::InterfaceInfo& itf = cp.iface(iface);
    std::printf("\n%s %s: interface %s, %s, %s\n", side, addr.str().c_str(), itf.name.c_str(),
                itf.subnet == rules::kNoSubnet ? "no subnet"
                                               : ("subnet " + cp.subnet(itf.subnet).name).c_str(),
                groupsStr(itf).c_str());
    for (int i : q.checksOfSide(source)) {
      const rules::Check& c = ev.checks[static_cast<size_t>(i)];
      const std::string dir(rules::directionName(c.dir));
      const char* mark = i == ev.first_deny ? "  <- decides" : "";
      if (c.kind == CheckKind::kAcl) {
        std::printf("  %d. %s%s\n", i + 1, aclStr(cp, c.acl).c_str(), mark);
      } else if (c.sg.allowed()) {
        std::printf("  %d. security groups %s: allow by %s\n", i + 1, dir.c_str(),
                    ruleStr(cp, c.sg.rule).c_str());
        if (c.sg.untracked) {
          std::printf(
              "     untracked: a matching rule allows all addresses and the %s rules of %s allow\n"
              "     all traffic back\n",
              source ? "inbound" : "outbound", itf.name.c_str());
        }
      } else {
        std::printf("  %d. security groups %s: deny, no %s rule of %s (%s) allows it%s\n", i + 1,
                    dir.c_str(), dir.c_str(), itf.name.c_str(), groupsStr(itf).c_str(), mark);
      }
    }
  }

  std::printf("\n");
  if (icmp_note) {
    std::printf("reply: none (an ICMP error has no reply)\n");
  } else if (!ev.allowed) {
    std::printf("reply: none (the first packet is denied, no connection opens)\n");
  } else if (!reply) {
    std::printf("reply: none expected (icmp type %u has no reply)\n", flow->icmp_type);
  } else if (ev.unprotected) {
    std::printf("reply %s: unprotected, passes as the first packet did\n", flowStr(*reply).c_str());
  } else {
    std::printf("reply %s:\n", flowStr(ra->flow).c_str());
    for (const sim::ReplySide& s : ra->sides) {
      const std::string& name = cp.iface(s.iface).name;
      if (!s.untracked) {
        std::printf("  %s: tracked, the reply passes %s's groups without a rule\n", name.c_str(),
                    name.c_str());
      } else if (s.sg.allowed()) {
        std::printf("  %s: untracked, the reply needs its own %s rule: allowed by %s\n",
                    name.c_str(), s.is_source ? "inbound" : "outbound",
                    ruleStr(cp, s.sg.rule).c_str());
      } else {
        std::printf(
            "  %s: untracked, the reply needs its own %s rule and none allows it: replies are "
            "dropped\n",
            name.c_str(), s.is_source ? "inbound" : "outbound");
      }
    }
    for (int i = 0; i < ra->acl.n_checks; ++i) {
      const rules::Check& c = ra->acl.checks[static_cast<size_t>(i)];
      std::printf("  %s (stateless: it sees replies too)\n", aclStr(cp, c.acl).c_str());
    }
    if (ra->allowed) {
      std::printf("  => replies pass\n");
    } else if (!ra->acl.allowed) {
      std::printf("  => the network ACL drops the replies: the connection cannot complete\n");
    } else {
      std::printf("  => replies are dropped: the connection cannot complete\n");
    }
  }
  return ev.allowed ? 0 : 1;
}

}  // namespace

void addQueryCommand(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<QueryArgs>();
  CLI::App* cmd = app.add_subcommand(
      "query", "Decide the first packet of one flow: verdict, deciding rules, reply handling");
  cmd->footer(
      "Flow syntax (quote it: '->' is a shell redirection otherwise):\n"
      "  tcp|udp SRC[:PORT] -> DST:PORT        source port defaults to 49152\n"
      "  icmp|icmpv6 SRC -> DST [type=T,code=C] default: echo request, code 0\n"
      "  NUMBER SRC -> DST                     any other IP protocol\n"
      "IPv6 addresses with a port go in brackets: tcp [2001:db8::1]:5000 -> [2001:db8::10]:443\n"
      "Exit status: 0 allowed, 1 denied, 2 usage error, bad flow or a policy that does not load.");
  cmd->add_option("--policy,-p", args->policies,
                  "policy file (repeatable; the files together form one policy)")
      ->required();
  cmd->add_option("flow", args->flow_words,
                  "the flow, e.g. 'tcp 198.51.100.7:50000 -> 10.0.1.10:443'")
      ->required();
  cmd->add_flag("--json", args->json,
                "print one JSON object {flow, verdict, reason, sides, reply}");
  cmd->callback([args, exit_code]() { *exit_code = runQuery(*args); });
}

}  // namespace statewall::cli
