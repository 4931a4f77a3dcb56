#include "statewall/sim/flow_text.hpp"

#include <algorithm>
#include <array>
#include <cctype>

#include <fmt/format.h>

#include "statewall/sim/replay.hpp"

namespace statewall::sim {

bool parseDecimal(std::string_view s, uint64_t max, uint64_t* out) {
  // 20 digits overflow uint64_t; nothing we parse needs more than 19.
  if (s.empty() || s.size() > 19) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v > max) return false;
  *out = v;
  return true;
}

bool parsePortRange(std::string_view s, uint16_t* lo, uint16_t* hi) {
  if (s == "*") {
    *lo = 0;
    *hi = 65535;
    return true;
  }
  const size_t dash = s.find('-');
  uint64_t a = 0, b = 0;
  if (dash == std::string_view::npos) {
    if (!parseDecimal(s, 65535, &a)) return false;
    b = a;
  } else if (!parseDecimal(s.substr(0, dash), 65535, &a) ||
             !parseDecimal(s.substr(dash + 1), 65535, &b) || a > b) {
    return false;
  }
  *lo = static_cast<uint16_t>(a);
  *hi = static_cast<uint16_t>(b);
  return true;
}

std::optional<uint8_t> parseProtocol(std::string_view s) {
  if (s == "tcp") return 6;
  if (s == "udp") return 17;
  if (s == "icmp") return 1;
  if (s == "icmpv6" || s == "icmp6") return 58;
  uint64_t n = 0;
  if (parseDecimal(s, 255, &n)) return static_cast<uint8_t>(n);
  return std::nullopt;
}

std::optional<EndpointText> splitEndpoint(std::string_view s, std::string* err) {
  EndpointText e;
  e.host = s;
  if (!s.empty() && s.front() == '[') {
    const size_t close = s.find(']');
    if (close == std::string_view::npos) {
      *err = fmt::format("'{}': missing ']' after an IPv6 address", s);
      return std::nullopt;
    }
    e.host = s.substr(1, close - 1);
    e.bracketed = true;
    const std::string_view rest = s.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') {
        *err = fmt::format("'{}': expected ':PORT' after ']'", s);
        return std::nullopt;
      }
      e.port = rest.substr(1);
      e.has_port = true;
    }
  } else if (std::count(s.begin(), s.end(), ':') == 1) {
    const size_t colon = s.find(':');
    e.host = s.substr(0, colon);
    e.port = s.substr(colon + 1);
    e.has_port = true;
  }
  return e;
}

std::optional<FlowWords> splitFlow(std::string_view text, std::string* err) {
  std::vector<std::string> tok;
  std::string cur;
  auto flush = [&] {
    if (!cur.empty()) tok.push_back(std::move(cur));
    cur.clear();
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '-' && i + 1 < text.size() && text[i + 1] == '>') {
      flush();
      tok.emplace_back("->");
      ++i;
    } else if (c == ',' || std::isspace(static_cast<unsigned char>(c))) {
      flush();
    } else {
      cur.push_back(c);
    }
  }
  flush();
  if (tok.size() < 4 || tok[2] != "->") {
    *err =
        "expected 'PROTO SRC[:PORT] -> DST[:PORT]', e.g. 'tcp 198.51.100.7:50000 -> 10.0.1.10:443'";
    return std::nullopt;
  }
  FlowWords w;
  w.proto = std::move(tok[0]);
  w.src = std::move(tok[1]);
  w.dst = std::move(tok[3]);
  w.rest.assign(std::make_move_iterator(tok.begin() + 4), std::make_move_iterator(tok.end()));
  return w;
}

std::string icmpName(bool v6, uint8_t type, uint8_t code) {
  if (!v6) {
    switch (type) {
      case 0:
        return "echo reply";
      case 3: {
        static constexpr std::array<const char*, 6> kCodes = {
            "network unreachable", "host unreachable",     "protocol unreachable",
            "port unreachable",    "fragmentation needed", "source route failed"};
        if (code < kCodes.size()) return fmt::format("destination unreachable, {}", kCodes[code]);
        if (code == 13) return "destination unreachable, administratively prohibited";
        return "destination unreachable";
      }
      case 4:
        return "source quench";
      case 5:
        return "redirect";
      case 8:
        return "echo request";
      case 9:
        return "router advertisement";
      case 10:
        return "router solicitation";
      case 11:
        return code == 1 ? "time exceeded, fragment reassembly" : "time exceeded";
      case 12:
        return "parameter problem";
      case 13:
        return "timestamp request";
      case 14:
        return "timestamp reply";
      case 15:
        return "information request";
      case 16:
        return "information reply";
      case 17:
        return "address mask request";
      case 18:
        return "address mask reply";
      default:
        return "";
    }
  }
  switch (type) {
    case 1:
      switch (code) {
        case 1:
          return "destination unreachable, administratively prohibited";
        case 3:
          return "destination unreachable, address unreachable";
        case 4:
          return "destination unreachable, port unreachable";
        default:
          return "destination unreachable";
      }
    case 2:
      return "packet too big";
    case 3:
      return "time exceeded";
    case 4:
      return "parameter problem";
    case 128:
      return "echo request";
    case 129:
      return "echo reply";
    case 133:
      return "router solicitation";
    case 134:
      return "router advertisement";
    case 135:
      return "neighbour solicitation";
    case 136:
      return "neighbour advertisement";
    case 137:
      return "redirect";
    default:
      return "";
  }
}

std::string flowKeyWords(const FlowKey& k) {
  std::string s = k.str();
  const bool v6 = k.proto == dataplane::kIpProtoIcmpv6;
  if (!k.ip || (k.proto != dataplane::kIpProtoIcmp && !v6)) return s;
  // FlowKey keeps an ICMP message's type and code in the port fields.
  const std::string name =
      icmpName(v6, static_cast<uint8_t>(k.sport), static_cast<uint8_t>(k.dport));
  const std::string numbers = fmt::format(" type {} code {}", k.sport, k.dport);
  if (name.empty() || !s.ends_with(numbers)) return s;
  s.resize(s.size() - numbers.size());
  return s + " " + name;
}

}  // namespace statewall::sim
