// Small helpers to write Policy objects in test code.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "statewall/rules/compiled.hpp"
#include "statewall/rules/policy.hpp"

namespace statewall::rules::testing {

inline IpAddr A(const std::string& s) {
  auto a = IpAddr::parse(s);
  if (!a) {
    ADD_FAILURE() << "bad address in test: " << s;
    return {};
  }
  return *a;
}

inline Cidr C(const std::string& s) {
  auto c = Cidr::parse(s);
  if (!c) {
    ADD_FAILURE() << "bad CIDR in test: " << s;
    return {};
  }
  return *c;
}

inline Match tcp(int lo, int hi = -1) {
  Match m;
  m.proto = kProtoTcp;
  m.port_lo = static_cast<uint16_t>(lo);
  m.port_hi = static_cast<uint16_t>(hi < 0 ? lo : hi);
  return m;
}
inline Match udp(int lo, int hi = -1) {
  Match m = tcp(lo, hi);
  m.proto = kProtoUdp;
  return m;
}
inline Match icmp(int type = kAny, int code = kAny, int proto = kProtoIcmp) {
  Match m;
  m.proto = proto;
  m.icmp_type = type;
  m.icmp_code = code;
  return m;
}
inline Match icmp6(int type = kAny, int code = kAny) {
  return icmp(type, code, kProtoIcmpV6);
}
inline Match protoNum(int p) {
  Match m;
  m.proto = p;
  return m;
}
inline Match all() {
  return protoNum(kProtoAll);
}

// "10.0.0.0/8", "sg:web", "pl:office"
inline Peer P(const std::string& s) {
  Peer p;
  if (s.rfind("sg:", 0) == 0) {
    p.kind = PeerKind::kGroup;
    p.name = s.substr(3);
  } else if (s.rfind("pl:", 0) == 0) {
    p.kind = PeerKind::kPrefixList;
    p.name = s.substr(3);
  } else {
    p.kind = PeerKind::kCidr;
    p.cidr = C(s);
  }
  return p;
}

inline SgRule R(Match m, std::vector<std::string> peers, std::string desc = {}) {
  SgRule r;
  r.match = m;
  for (const auto& s : peers)
    r.peers.push_back(P(s));
  r.description = std::move(desc);
  return r;
}

inline SecurityGroup G(std::string name, std::vector<SgRule> in, std::vector<SgRule> out) {
  SecurityGroup g;
  g.name = std::move(name);
  g.inbound = std::move(in);
  g.outbound = std::move(out);
  return g;
}

inline Interface I(std::string name, std::vector<std::string> addrs,
                   std::vector<std::string> groups) {
  Interface i;
  i.name = std::move(name);
  for (const auto& a : addrs)
    i.addresses.push_back(A(a));
  i.groups = std::move(groups);
  return i;
}

inline AclEntry E(int number, bool allow, Match m, const std::string& cidr) {
  AclEntry e;
  e.rule_number = number;
  e.allow = allow;
  e.match = m;
  e.cidr = C(cidr);
  return e;
}

inline Subnet S(std::string name, std::vector<std::string> cidrs, std::string acl = {}) {
  Subnet s;
  s.name = std::move(name);
  for (const auto& c : cidrs)
    s.cidrs.push_back(C(c));
  s.acl = std::move(acl);
  return s;
}

inline CompiledPolicyPtr compileOrFail(const Policy& p) {
  CompileResult r = compile(p);
  for (const auto& d : r.diagnostics)
    ADD_FAILURE() << d.str();
  EXPECT_TRUE(r.policy);
  return r.policy;
}

inline FlowSpec tcpTo(const std::string& remote, uint16_t port) {
  return FlowSpec{kProtoTcp, A(remote), port, 0, 0};
}
inline FlowSpec udpTo(const std::string& remote, uint16_t port) {
  return FlowSpec{kProtoUdp, A(remote), port, 0, 0};
}
inline FlowSpec icmpTo(const std::string& remote, uint8_t type, uint8_t code,
                       uint8_t proto = kProtoIcmp) {
  return FlowSpec{proto, A(remote), 0, type, code};
}
inline FlowSpec protoTo(const std::string& remote, uint8_t proto) {
  return FlowSpec{proto, A(remote), 0, 0, 0};
}

}  // namespace statewall::rules::testing
