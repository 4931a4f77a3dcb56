// The fixture table: allFixtures() assembles the scenario families (fixture_dsl.hpp lists them,
// one file each: fixtures_tcp.cpp, fixtures_udp_icmp.cpp, ...), and the helpers that compare a
// verdict with a fixture's expectation. Every expectation follows docs/design.md; comments in the
// family files name the rule a fixture exercises.
#include "fixtures.hpp"

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <set>
#include <utility>

#include "engine/fixture_dsl.hpp"
#include "statewall/dataplane/packet_builder.hpp"
#include "statewall/rules/loader.hpp"

namespace statewall::fixtures {
namespace dsl {

namespace {
std::vector<Fixture>* g_table = nullptr;
}  // namespace

void put(Fx& fx) {
  g_table->push_back(fx.take());
}

}  // namespace dsl

namespace {

using namespace dsl;

std::vector<Fixture> buildAll() {
  std::vector<Fixture> table;
  g_table = &table;
  tcpBasics();
  strictMode();
  udpIcmpOther();
  icmpErrors();
  fragmentFixtures();
  controlAndLinks();
  malformedPackets();
  untrackedFlows();
  tierFixtures();
  aclFixtures();
  timeoutFixtures();
  tableFull();
  policySwaps();
  tcpTransitionRows();
  tcpKernelFindings();
  bypassFixtures();
  peerFixtures();
  g_table = nullptr;
  return table;
}

}  // namespace

const std::vector<Fixture>& allFixtures() {
  static const std::vector<Fixture> table = buildAll();
  return table;
}

rules::CompiledPolicyPtr compileFixturePolicy(const std::string& yaml) {
  rules::LoadResult lr = rules::loadPolicyTexts({{"fixture.yaml", yaml}});
  if (!lr.ok()) {
    for (const auto& d : lr.diagnostics)
      std::fprintf(stderr, "%s\n", d.str().c_str());
    std::fprintf(stderr, "fixture policy does not load:\n%s\n", yaml.c_str());
    std::abort();
  }
  rules::CompileResult cr = rules::compile(*lr.policy);
  if (!cr.policy) {
    for (const auto& d : cr.diagnostics)
      std::fprintf(stderr, "%s\n", d.str().c_str());
    std::fprintf(stderr, "fixture policy does not compile:\n%s\n", yaml.c_str());
    std::abort();
  }
  return cr.policy;
}

std::string ruleLabel(const rules::CompiledPolicy& policy, rules::RuleId rule) {
  if (rule == rules::kNoRule) return "none";
  if (rule >= policy.ruleCount()) return "?";
  const rules::RuleInfo& r = policy.rule(rule);
  return r.group_name + " " + std::string(rules::directionName(r.dir)) + " " + r.text;
}

std::string denyWhere(const rules::CompiledPolicy& policy, const Verdict& v) {
  switch (v.reason) {
    case Reason::kDenySg:
      if (v.deny_iface == rules::kNoIface) return "none";
      if (v.deny_iface >= policy.ifaceCount()) return "?";
      return policy.iface(v.deny_iface).name + " " + std::string(rules::directionName(v.deny_dir));
    case Reason::kDenyAcl: {
      if (v.acl_entry == rules::kNoAclEntry || v.acl_entry >= policy.aclEntryCount()) return "?";
      const rules::AclEntryInfo& e = policy.aclEntry(v.acl_entry);
      return e.acl_name + " " + e.ruleNumberStr();
    }
    case Reason::kDenyMalformed:
      return std::string(layerName(v.malformed_layer));
    case Reason::kAllowExempt:
      return std::string(rules::exemptionName(v.exemption));
    default:
      return "";
  }
}

std::string describeFlags(uint16_t flags) {
  static constexpr std::pair<uint16_t, const char*> kNames[] = {
      {kFlagNewConnection, "new"},    {kFlagReply, "reply"},       {kFlagTcpInvalid, "invalid"},
      {kFlagUntracked, "untracked"},  {kFlagControl, "control"},   {kFlagFragment, "fragment"},
      {kFlagMidStream, "mid-stream"}, {kFlagReopened, "reopened"}, {kFlagConnClosed, "closed"},
  };
  std::string s;
  for (const auto& [bit, name] : kNames) {
    if ((flags & bit) != 0) {
      if (!s.empty()) s += "|";
      s += name;
    }
  }
  return s.empty() ? "-" : s;
}

std::string describeVerdict(const rules::CompiledPolicy& policy, const Verdict& v) {
  std::string s(reasonCode(v.reason));
  s += " flags=" + describeFlags(v.flags);
  s += " tcp=" + std::string(tcpStateName(v.tcp_before)) + "->" +
       std::string(tcpStateName(v.tcp_after));
  if (v.rule != rules::kNoRule) s += " rule=\"" + ruleLabel(policy, v.rule) + "\"";
  const std::string w = denyWhere(policy, v);
  if (!w.empty()) s += " at=\"" + w + "\"";
  if (v.why != nullptr) s += " why=\"" + std::string(v.why) + "\"";
  return s;
}

std::string checkPacket(const FixturePacket& p, const Verdict& v,
                        const rules::CompiledPolicy& policy) {
  std::string err;
  if (v.reason != p.reason) {
    err += "reason " + std::string(reasonCode(v.reason)) + ", expected " +
           std::string(reasonCode(p.reason)) + "\n";
  }
  if ((v.flags & p.flags_set) != p.flags_set) {
    err += "flags " + describeFlags(v.flags) + " lack " +
           describeFlags(static_cast<uint16_t>(p.flags_set & ~v.flags)) + "\n";
  }
  const uint16_t must_clear = static_cast<uint16_t>(p.flags_unset & ~p.flags_set);
  if ((v.flags & must_clear) != 0) {
    err += "flags " + describeFlags(v.flags) + " must not have " +
           describeFlags(static_cast<uint16_t>(v.flags & must_clear)) + "\n";
  }
  if (p.tcp_before && v.tcp_before != *p.tcp_before) {
    err += "tcp state before " + std::string(tcpStateName(v.tcp_before)) + ", expected " +
           std::string(tcpStateName(*p.tcp_before)) + "\n";
  }
  if (p.tcp_after && v.tcp_after != *p.tcp_after) {
    err += "tcp state " + std::string(tcpStateName(v.tcp_after)) + ", expected " +
           std::string(tcpStateName(*p.tcp_after)) + "\n";
  }
  if (p.rule_text) {
    const std::string got = ruleLabel(policy, v.rule);
    if (got != *p.rule_text) err += "rule \"" + got + "\", expected \"" + *p.rule_text + "\"\n";
  }
  if (p.where) {
    const std::string got = denyWhere(policy, v);
    if (got != *p.where) err += "deny at \"" + got + "\", expected \"" + *p.where + "\"\n";
  }
  return err;
}

}  // namespace statewall::fixtures
