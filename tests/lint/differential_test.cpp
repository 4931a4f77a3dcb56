// lint indexes rules to compare each only with those it may share packets with; on random
// policies its findings are exactly those of comparing every pair (the quadratic reference).
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "statewall/rules/compiled.hpp"
#include "statewall/rules/lint.hpp"
#include "statewall/rules/loader.hpp"

namespace statewall::rules {
namespace {

// Small random policies where rules overlap often: few ports, few CIDRs (some /0), group and
// prefix-list peers, every protocol kind, interfaces with several groups, a network ACL.
std::string randomPolicy(std::mt19937& rng) {
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  const char* cidrs[] = {"0.0.0.0/0",       "::/0",         "10.0.0.0/8",     "10.1.0.0/16",
                         "10.1.2.0/24",     "10.1.2.3/32",  "192.168.0.0/16", "2001:db8::/32",
                         "2001:db8:1::/48", "172.16.0.0/12"};
  const int groups = 2 + pick(3);
  std::string t =
      "version: 1\nprefix_lists:\n  pl1: [10.1.0.0/16, 2001:db8::/32]\n"
      "  pl2: [0.0.0.0/0]\n  empty: []\ngroups:\n";
  for (int g = 0; g < groups; ++g) {
    t += "  g" + std::to_string(g) + ":\n";
    for (const char* dir : {"inbound", "outbound"}) {
      if (std::string(dir) == "outbound" && pick(3) == 0) continue;  // the default rule
      t += std::string("    ") + dir + ":\n";
      const int n = pick(14);
      for (int i = 0; i < n; ++i) {
        std::string rule = "{";
        switch (pick(6)) {
          case 0:
            rule += "proto: all";
            break;
          case 1:
            rule += "proto: icmp";
            if (pick(2)) rule += ", icmp: {type: " + std::to_string(pick(2) * 8) + "}";
            break;
          case 2:
            rule += "proto: 47";
            break;
          default: {
            const int lo = pick(5) * 100;
            rule += std::string("proto: ") + (pick(3) ? "tcp" : "udp") + ", ports: " +
                    (pick(6) == 0 ? std::string("all")
                                  : std::to_string(lo) + "-" + std::to_string(lo + pick(300)));
          }
        }
        rule += std::string(", ") + (std::string(dir) == "inbound" ? "from" : "to") + ": [";
        const int peers = 1 + pick(2);
        for (int k = 0; k < peers; ++k) {
          if (k) rule += ", ";
          const int kind = pick(8);
          if (kind == 0) {
            rule += "sg:g" + std::to_string(pick(groups));
          } else if (kind == 1) {
            rule += std::string("pl:") + (pick(3) == 0 ? "empty" : pick(2) ? "pl1" : "pl2");
          } else {
            rule += std::string("\"") + cidrs[pick(10)] + "\"";
          }
        }
        t += "      - " + rule + "]}\n";
      }
    }
  }
  t += "network_acls:\n  acl:\n    inbound:\n";
  for (int i = 0; i < 1 + pick(4); ++i)
    t += "      - {rule: " + std::to_string(100 + i * 10) +
         ", action: " + (pick(3) ? "allow" : "deny") +
         ", proto: tcp, ports: " + std::to_string(pick(5) * 100) + "-" +
         std::to_string(400 + pick(600)) + ", from: " + cidrs[2 + pick(4)] + "}\n";
  t += "    outbound:\n      - {rule: 100, action: allow, proto: all, to: 0.0.0.0/0}\n";
  t += "subnets:\n  s1: {cidr: [10.1.0.0/16], acl: acl}\n";
  const int ifaces = 1 + pick(4);
  t += "interfaces:\n";
  for (int i = 0; i < ifaces; ++i) {
    t += "  i" + std::to_string(i) + ": {addresses: [10.1." + std::to_string(i) + ".10, " +
         "\"2001:db8:1::" + std::to_string(i + 1) + "\"], groups: [";
    const int n = 1 + pick(3);
    for (int k = 0; k < n; ++k)
      t += (k ? ", g" : "g") + std::to_string((i + k) % groups);
    t += "]}\n";
  }
  return t;
}

std::string dump(const std::vector<LintFinding>& v) {
  std::string s;
  for (const auto& f : v) {
    s += f.loc.str() + " " + f.code + " " + std::string(lintSeverityName(f.severity)) + " " +
         f.subject + ": " + f.message + " | " + f.fix + "\n";
    for (const auto& r : f.related)
      s += "    " + r.what + " @ " + r.loc.str() + "\n";
  }
  return s;
}

TEST(LintDifferential, IndexedFindingsEqualEveryPairOnRandomPolicies) {
  std::mt19937 rng(20261207);
  int redundant = 0;
  for (int iter = 0; iter < 300; ++iter) {
    const std::string text = randomPolicy(rng);
    LoadResult loaded = loadPolicyTexts({SourceText{"r.yaml", text}});
    ASSERT_TRUE(loaded.ok()) << text << "\n" << loaded.diagnostics.front().str();
    CompileResult c = compile(*loaded.policy);
    ASSERT_TRUE(c.policy) << text;
    LintOptions reference;
    reference.exhaustive_pairs = true;
    const std::string fast = dump(lintPolicy(*c.policy));
    const std::string slow = dump(lintPolicy(*c.policy, reference));
    ASSERT_EQ(fast, slow) << "policy:\n" << text;
    for (size_t p = fast.find("SW01"); p != std::string::npos; p = fast.find("SW01", p + 1))
      ++redundant;
  }
  // The policies exercise the redundancy checks, which the index serves.
  EXPECT_GT(redundant, 100);
}

}  // namespace
}  // namespace statewall::rules
