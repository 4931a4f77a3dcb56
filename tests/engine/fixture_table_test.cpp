// The fixture table itself: size, coverage (every reason, every TCP transition row, both address
// families, every flag) and consistency (rule texts and deny locations exist in the policies,
// frames parse or fail to parse as their expectations say, time never goes backwards).
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>

#include "engine/fixtures.hpp"
#include "statewall/dataplane/packet.hpp"

namespace statewall::fixtures {
namespace {

using dataplane::Layer;
using dataplane::ParsedPacket;

// The policy in force for each packet of a fixture.
std::vector<rules::CompiledPolicyPtr> policiesFor(const Fixture& f) {
  std::vector<rules::CompiledPolicyPtr> out;
  rules::CompiledPolicyPtr cur = compileFixturePolicy(f.policy_yaml);
  size_t c = 0;
  for (size_t i = 0; i < f.packets.size(); ++i) {
    while (c < f.changes.size() && f.changes[c].before_packet <= i) {
      cur = compileFixturePolicy(f.changes[c].policy_yaml);
      ++c;
    }
    out.push_back(cur);
  }
  return out;
}

std::set<std::string> ruleLabels(const rules::CompiledPolicy& p) {
  std::set<std::string> s;
  for (rules::RuleId r = 0; r < p.ruleCount(); ++r)
    s.insert(ruleLabel(p, r));
  return s;
}

std::set<std::string> denyLocations(const rules::CompiledPolicy& p) {
  std::set<std::string> s{"none"};
  for (size_t i = 0; i < p.ifaceCount(); ++i) {
    s.insert(p.iface(static_cast<rules::IfaceId>(i)).name + " inbound");
    s.insert(p.iface(static_cast<rules::IfaceId>(i)).name + " outbound");
  }
  for (rules::AclEntryId e = 0; e < p.aclEntryCount(); ++e) {
    s.insert(p.aclEntry(e).acl_name + " " + p.aclEntry(e).ruleNumberStr());
  }
  return s;
}

TEST(FixtureTable, SizeAndNames) {
  const auto& table = allFixtures();
  EXPECT_GE(table.size(), 80u);
  size_t packets = 0;
  std::set<std::string> names;
  for (const Fixture& f : table) {
    EXPECT_TRUE(names.insert(f.name).second) << "duplicate fixture name " << f.name;
    for (char ch : f.name) {
      EXPECT_TRUE((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_')
          << f.name << " is not a valid test name";
    }
    EXPECT_FALSE(f.description.empty()) << f.name;
    EXPECT_FALSE(f.packets.empty()) << f.name;
    packets += f.packets.size();
  }
  std::printf("%zu fixtures, %zu packets\n", table.size(), packets);
}

TEST(FixtureTable, TimeAndChangesAreOrdered) {
  for (const Fixture& f : allFixtures()) {
    for (size_t i = 1; i < f.packets.size(); ++i) {
      EXPECT_GE(f.packets[i].at_ns, f.packets[i - 1].at_ns) << f.name << " packet " << i;
    }
    for (size_t c = 0; c < f.changes.size(); ++c) {
      EXPECT_LT(f.changes[c].before_packet, f.packets.size()) << f.name;
      if (c > 0) {
        EXPECT_GE(f.changes[c].before_packet, f.changes[c - 1].before_packet) << f.name;
      }
    }
  }
}

TEST(FixtureTable, EveryReasonIsExpected) {
  std::map<Reason, size_t> seen;
  for (const Fixture& f : allFixtures()) {
    for (const FixturePacket& p : f.packets)
      ++seen[p.reason];
  }
  for (size_t r = 0; r < dataplane::kReasonCount; ++r) {
    const auto reason = static_cast<Reason>(r);
    EXPECT_GE(seen[reason], 2u) << dataplane::reasonCode(reason) << " is (almost) never expected";
  }
}

TEST(FixtureTable, EveryFlagAndStateIsExpected) {
  uint16_t flags = 0;
  std::set<TcpState> states;
  for (const Fixture& f : allFixtures()) {
    for (const FixturePacket& p : f.packets) {
      flags |= p.flags_set;
      if (p.tcp_after) states.insert(*p.tcp_after);
    }
  }
  EXPECT_EQ(flags & kExclusiveFlags, kExclusiveFlags) << describeFlags(flags);
  for (uint16_t bit = 1; bit <= dataplane::kFlagConnClosed; bit = static_cast<uint16_t>(bit << 1)) {
    EXPECT_NE(flags & bit, 0) << describeFlags(bit) << " never expected";
  }
  for (size_t s = 1; s < dataplane::kTcpStateCount; ++s) {
    EXPECT_TRUE(states.count(static_cast<TcpState>(s)))
        << dataplane::tcpStateName(static_cast<TcpState>(s)) << " never reached";
  }
}

TEST(FixtureTable, EveryTransitionRowHasAFixture) {
  EXPECT_TRUE(transitionRowsWithoutFixture().empty());
  const auto rows = dataplane::tcpTransitions();
  size_t row_fixtures = 0;
  for (const Fixture& f : allFixtures()) {
    if (f.name.rfind("tcp_row_", 0) == 0) ++row_fixtures;
  }
  EXPECT_EQ(row_fixtures, rows.size());
}

TEST(FixtureTable, RuleTextsAndDenyLocationsExist) {
  for (const Fixture& f : allFixtures()) {
    const auto policies = policiesFor(f);
    for (size_t i = 0; i < f.packets.size(); ++i) {
      const FixturePacket& p = f.packets[i];
      if (p.rule_text) {
        EXPECT_TRUE(ruleLabels(*policies[i]).count(*p.rule_text))
            << f.name << " packet " << i << ": no rule \"" << *p.rule_text << "\"";
      }
      if (p.where && (p.reason == Reason::kDenySg || p.reason == Reason::kDenyAcl)) {
        EXPECT_TRUE(denyLocations(*policies[i]).count(*p.where))
            << f.name << " packet " << i << ": no deny location \"" << *p.where << "\"";
      }
      if (p.where && p.reason == Reason::kAllowExempt) {
        bool known = false;
        for (std::string_view name : rules::kExemptionNames)
          known = known || (name == *p.where && name != "none");
        EXPECT_TRUE(known) << f.name << " packet " << i << ": no exemption \"" << *p.where << "\"";
      }
      if (p.reason != Reason::kDenySg && p.reason != Reason::kDenyAcl &&
          p.reason != Reason::kDenyMalformed && p.reason != Reason::kAllowExempt) {
        EXPECT_FALSE(p.where) << f.name << " packet " << i;
      }
    }
  }
}

// deny-malformed expectations agree with the parser; every other packet parses. (A fragment
// without its first parses fine: the engine, not the parser, denies it.)
TEST(FixtureTable, FramesParseAsExpected) {
  bool v4 = false, v6 = false;
  for (const Fixture& f : allFixtures()) {
    for (size_t i = 0; i < f.packets.size(); ++i) {
      const FixturePacket& p = f.packets[i];
      ParsedPacket pp;
      const bool ok = dataplane::parsePacket(p.frame.data(), static_cast<uint32_t>(p.frame.size()),
                                             f.link, &pp);
      const bool parser_layer =
          p.reason == Reason::kDenyMalformed && p.where && *p.where != "fragment";
      if (parser_layer) {
        EXPECT_FALSE(ok) << f.name << " packet " << i << " (" << p.note << ") parses";
        EXPECT_EQ(dataplane::layerName(pp.malformed), *p.where)
            << f.name << " packet " << i << " (" << p.note << ")";
      } else if (p.reason != Reason::kDenyMalformed) {
        EXPECT_TRUE(ok) << f.name << " packet " << i << " (" << p.note
                        << "): " << (pp.malformed_why ? pp.malformed_why : "");
      }
      if (ok && pp.l3 == dataplane::L3::kIpv4) v4 = true;
      if (ok && pp.l3 == dataplane::L3::kIpv6) v6 = true;
      // A fragment-layer denial is of a fragment: a later one, or a first fragment that repeats
      // bytes already seen of its datagram.
      if (p.where && *p.where == "fragment") {
        EXPECT_TRUE(ok && pp.is_fragment) << f.name << " packet " << i;
      }
      if ((p.flags_set & dataplane::kFlagFragment) != 0) {
        EXPECT_TRUE(ok && pp.is_fragment && !pp.first_fragment) << f.name << " packet " << i;
      }
    }
  }
  EXPECT_TRUE(v4);
  EXPECT_TRUE(v6);
}

}  // namespace
}  // namespace statewall::fixtures
