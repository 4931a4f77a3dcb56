// The nftables translation of a policy's security groups (nft_export.hpp).
#include "statewall/sim/nft_export.hpp"
#include "statewall/rules/vocab.hpp"

#include <algorithm>
#include <map>
#include <string_view>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace statewall::sim {
namespace {

using rules::Cidr;
using rules::Direction;
using rules::IpAddr;
using rules::Match;
using rules::PeerKind;
using rules::Policy;

// The CIDRs of a rule's peers, group references resolved to the addresses of the interfaces that
// carry the group, prefix lists to their entries (by name or AWS id, as the compiler resolves
// them).
std::vector<Cidr> peerCidrs(const Policy& p, const rules::SgRule& rule) {
  std::vector<Cidr> out;
  for (const rules::Peer& peer : rule.peers) {
    switch (peer.kind) {
      case PeerKind::kCidr:
        out.push_back(peer.cidr);
        break;
      case PeerKind::kPrefixList:
        for (const auto& pl : p.prefix_lists)
          if (pl.name == peer.name || (!pl.id.empty() && pl.id == peer.name))
            out.insert(out.end(), pl.cidrs.begin(), pl.cidrs.end());
        break;
      case PeerKind::kGroup:
        for (const auto& itf : p.interfaces) {
          const bool carries =
              std::any_of(itf.groups.begin(), itf.groups.end(), [&](const auto& g) {
                for (const auto& sg : p.groups)
                  if (sg.name == g &&
                      (sg.name == peer.name || (!sg.id.empty() && sg.id == peer.name)))
                    return true;
                return false;
              });
          if (carries)
            for (const IpAddr& a : itf.addresses)
              out.push_back(Cidr::host(a));
        }
        break;
    }
  }
  return out;
}

// The protocol part of a rule for one address family; empty `ok` when the rule cannot match that
// family (icmp with IPv6 peers, icmpv6 with IPv4 peers).
struct L4Match {
  bool ok = true;
  std::string text;  // "" matches every protocol
};

L4Match l4Match(const Match& m, bool v4) {
  auto ports = [&](const char* proto) {
    if (m.allPorts()) return fmt::format("meta l4proto {}", proto);
    if (m.port_lo == m.port_hi) return fmt::format("{} dport {}", proto, m.port_lo);
    return fmt::format("{} dport {}-{}", proto, m.port_lo, m.port_hi);
  };
  auto icmp = [&](const char* l4, const char* kw) {
    std::string s = fmt::format("meta l4proto {}", l4);
    if (m.icmp_type != rules::kAny) s += fmt::format(" {} type {}", kw, m.icmp_type);
    if (m.icmp_code != rules::kAny) s += fmt::format(" {} code {}", kw, m.icmp_code);
    return s;
  };
  switch (m.proto) {
    case rules::kProtoAll:
      return {true, ""};
    case rules::kProtoTcp:
      return {true, ports("tcp")};
    case rules::kProtoUdp:
      return {true, ports("udp")};
    case rules::kProtoIcmp:
      return v4 ? L4Match{true, icmp("icmp", "icmp")} : L4Match{false, ""};
    case rules::kProtoIcmpV6:
      return v4 ? L4Match{false, ""} : L4Match{true, icmp("ipv6-icmp", "icmpv6")};
    default:
      return {true, fmt::format("meta l4proto {}", m.proto)};
  }
}

// An nft string literal (comments): quotes and backslashes dropped, never a syntax error.
std::string quoted(std::string_view s) {
  std::string out = "\"";
  for (char c : s)
    if (c != '"' && c != '\\' && c != '\n') out += c;
  return out + "\"";
}

std::string setOf(const std::vector<std::string>& items) {
  std::string s = "{ ";
  for (size_t i = 0; i < items.size(); ++i)
    s += (i ? ", " : "") + items[i];
  return s + " }";
}

}  // namespace

NftExport exportNft(const rules::CompiledPolicy& policy, const NftExportOptions& options) {
  NftExport out;
  const Policy& p = policy.source();
  if (!p.acls.empty())
    out.errors.push_back(
        fmt::format("{} network ACL(s): not translated (they must run before connection tracking)",
                    p.acls.size()));
  if (!out.ok()) return out;

  std::string chains;
  // Per family: "ADDR : jump CHAIN" entries for the vmaps, and the protected addresses.
  std::map<std::pair<bool, Direction>, std::vector<std::string>> vmap;
  std::vector<std::string> protected4, protected6;
  bool untracked_warned = false;
  for (size_t i = 0; i < policy.ifaceCount(); ++i) {
    const rules::InterfaceInfo& itf = policy.iface(static_cast<rules::IfaceId>(i));
    for (Direction d : {Direction::kInbound, Direction::kOutbound}) {
      const bool in = d == Direction::kInbound;
      const std::string chain = fmt::format("{}_{}", in ? "in" : "out", i);
      chains += fmt::format("\n\t# interface {} {} (groups {})\n\tchain {} {{\n", itf.name,
                            rules::directionName(d), fmt::join(itf.group_names, ", "), chain);
      for (uint16_t g : itf.groups) {
        const rules::SecurityGroup& sg = p.groups[g];
        const auto& list = in ? sg.inbound : sg.outbound;
        for (size_t r = 0; r < list.size(); ++r) {
          const std::string label = rules::ruleLabel(sg.name, d, static_cast<uint32_t>(r));
          for (const Cidr& c : peerCidrs(p, list[r])) {
            const bool v4 = c.addr.isV4();
            const L4Match l4 = l4Match(list[r].match, v4);
            if (!l4.ok) continue;
            if (c.prefix == 0 && !untracked_warned) {
              out.warnings.push_back(fmt::format(
                  "{} has an all-addresses peer: where AWS leaves such a flow untracked, the "
                  "kernel tracks it",
                  label));
              untracked_warned = true;
            }
            std::string match =
                fmt::format("{} {}addr {}", v4 ? "ip" : "ip6", in ? "s" : "d", c.str());
            if (c.prefix == 0) match = v4 ? "meta nfproto ipv4" : "meta nfproto ipv6";
            chains += fmt::format("\t\t{}{}{} return comment {}\n", match,
                                  l4.text.empty() ? "" : " ", l4.text, quoted(label));
          }
        }
      }
      chains += "\t\tdrop\n\t}\n";
      for (const IpAddr& a : itf.addresses)
        vmap[{a.isV4(), d}].push_back(fmt::format("{} : jump {}", a.str(), chain));
    }
    for (const IpAddr& a : itf.addresses)
      (a.isV4() ? protected4 : protected6).push_back(a.str());
  }

  std::string fwd =
      "\tchain forward {\n\t\ttype filter hook forward priority filter; policy drop;\n";
  fwd += "\t\tct state established accept\n";
  // A related ICMP error may travel between two unprotected addresses (a router on the path to a
  // host), where no interface's tracking sees it: the policy's `unprotected` decides those.
  for (bool v4 : {true, false}) {
    const auto& prot = v4 ? protected4 : protected6;
    if (prot.empty()) continue;
    for (const char* dir : {"saddr", "daddr"})
      fwd += fmt::format("\t\tct state related {} {} {} accept\n", v4 ? "ip" : "ip6", dir,
                         setOf(prot));
  }
  if (policy.strict()) fwd += "\t\tct state invalid drop\n";
  for (bool v4 : {true, false}) {
    const char* fam = v4 ? "ip" : "ip6";
    for (Direction d : {Direction::kOutbound, Direction::kInbound}) {
      auto it = vmap.find({v4, d});
      if (it == vmap.end()) continue;
      fwd += fmt::format("\t\t{} {}addr vmap {}\n", fam, d == Direction::kOutbound ? "s" : "d",
                         setOf(it->second));
    }
    const auto& prot = v4 ? protected4 : protected6;
    if (prot.empty()) continue;
    fwd += fmt::format("\t\t{} saddr {} accept\n", fam, setOf(prot));
    fwd += fmt::format("\t\t{} daddr {} accept\n", fam, setOf(prot));
  }
  fwd += policy.unprotectedAllow() ? "\t\taccept comment \"unprotected: allow\"\n"
                                   : "\t\tdrop comment \"unprotected: deny\"\n";
  fwd += "\t}\n";

  out.ruleset = fmt::format(
      "# generated by statewall from {}\n"
      "# security groups only; see sim/include/statewall/sim/nft_export.hpp\n"
      "table inet {} {{\n{}{}}}\n",
      fmt::join(p.files, ", "), options.table, fwd, chains);
  return out;
}

std::vector<std::pair<std::string, uint32_t>> conntrackSysctls(const rules::Timeouts& t) {
  using K = rules::TimeoutKey;
  const std::string pre = "net.netfilter.nf_conntrack_";
  uint32_t tcp_max = 0;
  for (K k : {K::kTcpSynSent, K::kTcpSynRecv, K::kTcpEstablished, K::kTcpFinWait, K::kTcpCloseWait,
              K::kTcpLastAck, K::kTcpTimeWait, K::kTcpClose})
    tcp_max = std::max(tcp_max, t.get(k));
  return {
      {pre + "tcp_timeout_syn_sent", t.get(K::kTcpSynSent)},
      {pre + "tcp_timeout_syn_recv", t.get(K::kTcpSynRecv)},
      {pre + "tcp_timeout_established", t.get(K::kTcpEstablished)},
      {pre + "tcp_timeout_fin_wait", t.get(K::kTcpFinWait)},
      {pre + "tcp_timeout_close_wait", t.get(K::kTcpCloseWait)},
      {pre + "tcp_timeout_last_ack", t.get(K::kTcpLastAck)},
      {pre + "tcp_timeout_time_wait", t.get(K::kTcpTimeWait)},
      {pre + "tcp_timeout_close", t.get(K::kTcpClose)},
      {pre + "tcp_timeout_max_retrans", tcp_max},
      {pre + "tcp_timeout_unacknowledged", tcp_max},
      {pre + "udp_timeout", t.get(K::kUdp)},
      {pre + "udp_timeout_stream", t.get(K::kUdpStream)},
      {pre + "icmp_timeout", t.get(K::kIcmp)},
      {pre + "icmpv6_timeout", t.get(K::kIcmp)},
      {pre + "generic_timeout", t.get(K::kOther)},
  };
}

}  // namespace statewall::sim
