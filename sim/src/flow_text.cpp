#include "statewall/sim/flow_text.hpp"

#include <algorithm>
#include <array>
#include <cctype>

#include <fmt/format.h>

#include "statewall/sim/replay.hpp"

namespace statewall::sim {

base::Expected<FlowWords> splitFlow(std::string_view text) {
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
    return base::Status::failure(
        "expected 'PROTO SRC[:PORT] -> DST[:PORT]', e.g. 'tcp 198.51.100.7:50000 -> "
        "10.0.1.10:443'");
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
