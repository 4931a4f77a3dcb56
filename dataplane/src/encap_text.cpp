// Names and text forms of encapsulation headers and the tunnel port table (packet.hpp). For
// outputs and command lines: allocates, never on the packet path.
#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

#include "statewall/dataplane/packet.hpp"

namespace statewall::dataplane {
namespace {

using Kind = EncapHeader::Kind;

constexpr Kind kAllKinds[] = {
    Kind::kVlan, Kind::kMpls,       Kind::kPppoe, Kind::kPbb,    Kind::kVnTag, Kind::kFabricPath,
    Kind::kCmd,  Kind::kPseudowire, Kind::kGre,   Kind::kErspan, Kind::kVxlan, Kind::kGeneve,
    Kind::kGtpU, Kind::kTeredo,     Kind::kAyiya, Kind::kIpIp,   Kind::kAruba};

bool udpTunnelKind(Kind k) {
  return k == Kind::kVxlan || k == Kind::kGeneve || k == Kind::kGtpU || k == Kind::kTeredo ||
         k == Kind::kAyiya || k == Kind::kGre;
}

bool kindByName(std::string_view name, Kind* k) {
  for (Kind c : kAllKinds) {
    if (encapKindName(c) == name) {
      *k = c;
      return true;
    }
  }
  return false;
}

// A decimal or 0x-hex number no larger than `max`.
bool parseNumber(std::string_view s, uint64_t max, uint64_t* v) {
  int base = 10;
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    s.remove_prefix(2);
    base = 16;
  }
  if (s.empty()) return false;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *v, base);
  return ec == std::errc() && end == s.data() + s.size() && *v <= max;
}

std::string hex(uint32_t v) {
  char buf[16];
  const auto r = std::to_chars(buf, buf + sizeof buf, v, 16);
  return "0x" + std::string(buf, r.ptr);
}

}  // namespace

std::string_view encapKindName(Kind k) {
  switch (k) {
    case Kind::kVlan:
      return "vlan";
    case Kind::kMpls:
      return "mpls";
    case Kind::kPppoe:
      return "pppoe";
    case Kind::kPbb:
      return "pbb";
    case Kind::kVnTag:
      return "vn-tag";
    case Kind::kFabricPath:
      return "fabricpath";
    case Kind::kCmd:
      return "cmd";
    case Kind::kPseudowire:
      return "pw-eth";
    case Kind::kGre:
      return "gre";
    case Kind::kErspan:
      return "erspan";
    case Kind::kVxlan:
      return "vxlan";
    case Kind::kGeneve:
      return "geneve";
    case Kind::kGtpU:
      return "gtp-u";
    case Kind::kTeredo:
      return "teredo";
    case Kind::kAyiya:
      return "ayiya";
    case Kind::kIpIp:
      return "ip-in-ip";
    case Kind::kAruba:
      return "aruba";
  }
  return "?";
}

std::string encapText(const EncapHeader& h) {
  std::string s(encapKindName(h.kind));
  const std::string v = std::to_string(h.value);
  switch (h.kind) {
    case Kind::kVlan:
    case Kind::kMpls:
    case Kind::kPppoe:
    case Kind::kPbb:
    case Kind::kVnTag:
    case Kind::kFabricPath:
    case Kind::kCmd:
      return s + ":" + v;
    case Kind::kAruba:
      return s + ":proto=" + hex(h.value);
    case Kind::kGre: {
      // GRE in UDP (RFC 8086) names its port (the parser fills dport only for a UDP carrier), so
      // that `gen --encap` builds it again.
      const std::string port = h.dport != 0 ? ":port=" + std::to_string(h.dport) : std::string();
      return (h.aux != 0 ? s + ":key=" + v : s) + port;
    }
    case Kind::kErspan:
      if (h.aux == 1) return s + ":type=1";
      if (h.aux == 3) return s + ":session=" + v + ":type=3";
      return s + ":session=" + v;
    case Kind::kVxlan:
    case Kind::kGeneve:
      return s + ":vni=" + v;
    case Kind::kGtpU:
      return s + ":teid=" + hex(h.value);
    case Kind::kPseudowire:
    case Kind::kTeredo:
    case Kind::kAyiya:
    case Kind::kIpIp:
      return s;
  }
  return s;
}

std::string parseEncapText(std::string_view text, EncapHeader* h) {
  const std::string quoted = "'" + std::string(text) + "'";
  const size_t colon = text.find(':');
  const std::string_view name = text.substr(0, colon);
  Kind kind;
  if (!kindByName(name, &kind)) {
    return quoted + ": unknown encapsulation '" + std::string(name) +
           "' (vlan, mpls, pppoe, pbb, vn-tag, fabricpath, cmd, pw-eth, gre, erspan, vxlan, "
           "geneve, "
           "gtp-u, teredo, ayiya, ip-in-ip, aruba)";
  }
  EncapHeader r;
  r.kind = kind;
  if (kind == Kind::kErspan) r.aux = 2;
  if (kind == Kind::kAruba) r.value = 0x8200;
  bool erspan_session = false;
  std::string_view rest =
      colon == std::string_view::npos ? std::string_view{} : text.substr(colon + 1);
  if (colon != std::string_view::npos && rest.empty()) return quoted + ": nothing after ':'";
  while (!rest.empty()) {
    const size_t next = rest.find(':');
    const std::string_view attr = rest.substr(0, next);
    rest = next == std::string_view::npos ? std::string_view{} : rest.substr(next + 1);
    const size_t eq = attr.find('=');
    const std::string_view key =
        eq == std::string_view::npos ? std::string_view{} : attr.substr(0, eq);
    const std::string_view val = eq == std::string_view::npos ? attr : attr.substr(eq + 1);
    if (key == "port" && udpTunnelKind(kind)) {
      uint64_t port;
      if (!parseNumber(val, 65535, &port) || port == 0)
        return quoted + ": the port must be a number from 1 to 65535";
      r.dport = static_cast<uint16_t>(port);
      continue;
    }
    // The attribute each kind takes, and its largest value.
    std::string_view want;
    uint64_t max = 0;
    switch (kind) {
      case Kind::kVlan:
        max = 4095;
        break;
      case Kind::kMpls:
        max = 0xfffff;
        break;
      case Kind::kPppoe:
        max = 0xffff;
        break;
      case Kind::kPbb:
        max = 0xffffff;
        break;
      case Kind::kVnTag:
        max = 0xffffffff;
        break;
      case Kind::kFabricPath:
        max = 1023;
        break;
      case Kind::kCmd:
        max = 0xffff;
        break;
      case Kind::kAruba:
        want = "proto";
        max = 0xffff;
        break;
      case Kind::kGre:
        want = "key";
        max = 0xffffffff;
        break;
      case Kind::kErspan:
        want = key == "type" ? "type" : "session";
        max = key == "type" ? 3 : 1023;
        break;
      case Kind::kVxlan:
      case Kind::kGeneve:
        want = "vni";
        max = 0xffffff;
        break;
      case Kind::kGtpU:
        want = "teid";
        max = 0xffffffff;
        break;
      default:
        return quoted + ": " + std::string(name) + " takes no value";
    }
    if (key != want) {
      return quoted + ": " + std::string(name) +
             (want.empty() ? std::string(" takes a plain number")
                           : " takes " + std::string(want) + "=N");
    }
    uint64_t v;
    if (!parseNumber(val, max, &v)) {
      return quoted + ": '" + std::string(val) + "' is not a number from 0 to " +
             std::to_string(max);
    }
    if (kind == Kind::kAruba && !isArubaGreType(static_cast<uint16_t>(v))) {
      return quoted + ": not an Aruba GRE protocol type (0x8200 to 0x82f0 and 0x8300 to 0x8370 " +
             "in steps of 0x10, or 0x9000)";
    }
    if (key == "type") {
      if (v == 0) return quoted + ": ERSPAN type is 1, 2 or 3";
      r.aux = static_cast<uint8_t>(v);
    } else {
      r.value = static_cast<uint32_t>(v);
      if (kind == Kind::kErspan) erspan_session = true;
      if (kind == Kind::kGre) r.aux = 1;
    }
  }
  if (kind == Kind::kErspan && r.aux == 1 && erspan_session)
    return quoted + ": ERSPAN type 1 has no session id";
  *h = r;
  return "";
}

bool ParseOptions::addTunnelPort(uint16_t port, EncapHeader::Kind kind) {
  if (!udpTunnelKind(kind)) return false;
  for (uint32_t i = 0; i < tunnel_port_count; ++i) {
    if (tunnel_ports[i].port == port) {
      tunnel_ports[i].kind = kind;
      return true;
    }
  }
  if (tunnel_port_count == kMaxTunnelPorts) return false;
  tunnel_ports[tunnel_port_count++] = {port, kind};
  return true;
}

std::string parseTunnelPort(std::string_view text, ParseOptions* opts) {
  const std::string quoted = "--tunnel-port '" + std::string(text) + "'";
  const size_t eq = text.find('=');
  if (eq == std::string_view::npos) return quoted + ": expected KIND=PORT, e.g. vxlan=8472";
  const std::string_view name = text.substr(0, eq);
  Kind kind;
  if (!kindByName(name, &kind) || !udpTunnelKind(kind)) {
    return quoted + ": '" + std::string(name) +
           "' is not a UDP tunnel (vxlan, geneve, gtp-u, teredo, ayiya, gre)";
  }
  uint64_t port;
  if (!parseNumber(text.substr(eq + 1), 65535, &port) || port == 0)
    return quoted + ": the port must be a number from 1 to 65535";
  if (!opts->addTunnelPort(static_cast<uint16_t>(port), kind)) {
    return quoted + ": at most " + std::to_string(ParseOptions::kMaxTunnelPorts) + " tunnel ports";
  }
  return "";
}

}  // namespace statewall::dataplane
