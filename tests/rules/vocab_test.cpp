// The shared vocabulary (rules/include/statewall/rules/vocab.hpp): each spelling accepted or
// rejected, labels, flows and the formatting helpers.
#include "statewall/rules/vocab.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/protocol_spellings.hpp"
#include "statewall/rules/vocab_json.hpp"

namespace statewall::rules {
namespace {

TEST(Vocab, ProtocolSpellingTable) {
  for (const auto& s : testing::kProtocolSpellings) {
    EXPECT_EQ(parseIpProtocol(s.text), s.proto) << "'" << s.text << "'";
    const auto rule = parseProtocol(s.text);
    if (s.proto) {
      EXPECT_EQ(rule, std::optional<int>(*s.proto)) << "'" << s.text << "'";
    } else {
      EXPECT_EQ(rule, std::nullopt) << "'" << s.text << "'";
    }
  }
}

TEST(Vocab, AllIsARuleProtocolOnly) {
  for (const char* s : {"all", "ALL", "All", "-1"}) {
    EXPECT_EQ(parseProtocol(s), kProtoAll) << s;
    EXPECT_EQ(parseIpProtocol(s), std::nullopt) << s;
  }
  EXPECT_EQ(parseProtocol("-2"), std::nullopt);
}

TEST(Vocab, ProtocolNamesRoundTrip) {
  for (int p = -1; p <= 255; ++p)
    EXPECT_EQ(parseProtocol(protoName(p)), p) << p;
  EXPECT_EQ(protoName(58), "icmpv6");
  EXPECT_EQ(protoName(47), "47");
}

TEST(Vocab, PortRanges) {
  struct Case {
    std::string_view text;
    bool ok;
    uint16_t lo, hi;
  };
  const Case cases[] = {
      {"443", true, 443, 443},
      {"0", true, 0, 0},
      {"1024-65535", true, 1024, 65535},
      {"1024 - 65535", true, 1024, 65535},
      {"*", true, 0, 65535},
      {"all", true, 0, 65535},
      {"2-1", false, 0, 0},
      {"1-", false, 0, 0},
      {"-1", false, 0, 0},
      {"70000", false, 0, 0},
      {"", false, 0, 0},
      {"1-70000", false, 0, 0},
      {"a-b", false, 0, 0},
      {"+1", false, 0, 0},
  };
  for (const Case& c : cases) {
    uint16_t lo = 7, hi = 7;
    EXPECT_EQ(parsePortRange(c.text, &lo, &hi), c.ok) << "'" << c.text << "'";
    if (c.ok) {
      EXPECT_EQ(lo, c.lo) << c.text;
      EXPECT_EQ(hi, c.hi) << c.text;
    }
  }
}

TEST(Vocab, Endpoints) {
  auto e = splitEndpoint("[2001:db8::1]:443");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->host, "2001:db8::1");
  EXPECT_EQ(e->port, "443");
  EXPECT_TRUE(e->bracketed);
  e = splitEndpoint("2001:db8::1");
  ASSERT_TRUE(e);
  EXPECT_FALSE(e->has_port);
  EXPECT_EQ(splitEndpoint("[::1").message(), "'[::1': missing ']' after an IPv6 address");
  EXPECT_EQ(splitEndpoint("[::1]443").message(), "'[::1]443': expected ':PORT' after ']'");

  EXPECT_EQ(endpointText(*IpAddr::parse("10.0.1.10"), 443), "10.0.1.10:443");
  EXPECT_EQ(endpointText(*IpAddr::parse("2001:db8::1"), 443), "[2001:db8::1]:443");
}

TEST(Vocab, HostPort) {
  for (auto [text, host, port] : {std::tuple{"127.0.0.1:8080", "127.0.0.1", 8080},
                                  {"[::1]:0", "::1", 0},
                                  {"localhost:9", "127.0.0.1", 9},
                                  {"::1:80", "::1", 80}}) {
    auto hp = parseHostPort(text);
    ASSERT_TRUE(hp) << text;
    EXPECT_EQ(hp->host, host);
    EXPECT_EQ(hp->port, port);
  }
  EXPECT_EQ(parseHostPort("127.0.0.1").message(), "expected HOST:PORT (e.g. 127.0.0.1:8080)");
  EXPECT_EQ(parseHostPort("127.0.0.1:70000").message(), "bad port '70000' (0-65535)");
  EXPECT_FALSE(parseHostPort("127.0.0.1:"));
}

TEST(Vocab, BiFlowKeyIsTheSameFromEitherDirection) {
  const IpAddr a = *IpAddr::parse("10.0.0.1"), b = *IpAddr::parse("10.0.0.2");
  const BiFlowKey k1 = biFlowKey(6, a, 40000, b, 443), k2 = biFlowKey(6, b, 443, a, 40000);
  EXPECT_EQ(k1, k2);
  EXPECT_EQ(BiFlowKeyHash{}(k1), BiFlowKeyHash{}(k2));
  EXPECT_EQ(k1.a, a);
  EXPECT_NE(biFlowKey(17, a, 40000, b, 443), k1);
  // Same addresses, ports swapped between them: another flow.
  EXPECT_NE(biFlowKey(6, a, 443, b, 40000), k1);
}

RuleInfo webRule() {
  RuleInfo r;
  r.group_name = "web";
  r.dir = Direction::kInbound;
  r.index = 2;
  r.text = "tcp 443 from 0.0.0.0/0";
  return r;
}

AclEntryInfo aclEntry(int number) {
  AclEntryInfo e;
  e.acl_name = "public-acl";
  e.dir = Direction::kOutbound;
  e.rule_number = number;
  e.allow = number != 0;
  e.text = number == 0 ? "* deny all to 0.0.0.0/0, ::/0" : "90 allow tcp 443 to 0.0.0.0/0";
  return e;
}

TEST(Vocab, Labels) {
  EXPECT_EQ(ruleLabel(webRule()), "web inbound[2]");
  EXPECT_EQ(ruleLabel("db", Direction::kOutbound, 0), "db outbound[0]");
  EXPECT_EQ(ruleLabelLong(webRule()), "web inbound rule 2 'tcp 443 from 0.0.0.0/0'");
  EXPECT_EQ(aclEntryLabel(aclEntry(90)), "public-acl outbound rule 90");
  EXPECT_EQ(aclEntryLabel(aclEntry(0)), "public-acl outbound rule *");
  EXPECT_EQ(aclEntryLabelLong(aclEntry(90)),
            "public-acl outbound rule 90 'allow tcp 443 to 0.0.0.0/0'");
  EXPECT_EQ(aclEntryLabelLong(aclEntry(0)),
            "public-acl outbound rule * '* deny all to 0.0.0.0/0, ::/0'");
}

TEST(Vocab, JsonSchema) {
  EXPECT_EQ(ruleJson<nlohmann::ordered_json>(webRule()).dump(),
            R"({"group":"web","direction":"inbound","index":2,"text":"tcp 443 from 0.0.0.0/0"})");
  EXPECT_EQ(aclEntryJson<nlohmann::ordered_json>(aclEntry(90)).dump(),
            R"({"acl":"public-acl","direction":"outbound","number":90,"action":"allow",)"
            R"("text":"90 allow tcp 443 to 0.0.0.0/0"})");
  EXPECT_EQ(aclEntryJson<nlohmann::ordered_json>(aclEntry(0))["number"], "*");
}

TEST(Vocab, Formatting) {
  EXPECT_EQ(withThousands(0), "0");
  EXPECT_EQ(withThousands(999), "999");
  EXPECT_EQ(withThousands(1000), "1,000");
  EXPECT_EQ(withThousands(1234567), "1,234,567");
  EXPECT_EQ(tcpFlagLetters(0), "");
  EXPECT_EQ(tcpFlagLetters(0x02), "S");
  EXPECT_EQ(tcpFlagLetters(0x12), "SA");
  EXPECT_EQ(tcpFlagLetters(0xFF), "FSRPAUEC");
  const uint64_t t = 1714564800ull * 1000000000ull + 123456789;  // 2024-05-01 12:00:00.123456789
  EXPECT_EQ(utcText(t, 0), "2024-05-01 12:00:00 UTC");
  EXPECT_EQ(utcText(t, 3), "2024-05-01 12:00:00.123 UTC");
  EXPECT_EQ(utcText(t, 6), "2024-05-01 12:00:00.123456 UTC");
  EXPECT_EQ(utcText(t, 9), "2024-05-01 12:00:00.123456789 UTC");
  EXPECT_EQ(utcText(1000, 6), "1970-01-01 00:00:00.000001 UTC");
  EXPECT_EQ(rfc3339Millis(t), "2024-05-01T12:00:00.123Z");
}

}  // namespace
}  // namespace statewall::rules
