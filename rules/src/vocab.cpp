#include "statewall/rules/vocab.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>

namespace statewall::rules {

// ---- protocol names ----

std::string_view protoKeyword(int proto) {
  switch (proto) {
    case kProtoAll:
      return "all";
    case kProtoTcp:
      return "tcp";
    case kProtoUdp:
      return "udp";
    case kProtoIcmp:
      return "icmp";
    case kProtoIcmpV6:
      return "icmpv6";
    default:
      return {};
  }
}

std::string protoName(int proto) {
  const std::string_view k = protoKeyword(proto);
  return k.empty() ? std::to_string(proto) : std::string(k);
}

std::optional<uint8_t> parseIpProtocol(std::string_view text) {
  std::string lower(text);
  for (char& c : lower)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "tcp") return kProtoTcp;
  if (lower == "udp") return kProtoUdp;
  if (lower == "icmp") return kProtoIcmp;
  if (lower == "icmpv6" || lower == "icmp6" || lower == "ipv6-icmp") return kProtoIcmpV6;
  uint64_t n = 0;
  if (parseDecimal(lower, 255, &n)) return static_cast<uint8_t>(n);
  return std::nullopt;
}

std::optional<int> parseProtocol(std::string_view text) {
  if (text == "-1" ||
      (text.size() == 3 && std::tolower(static_cast<unsigned char>(text[0])) == 'a' &&
       std::tolower(static_cast<unsigned char>(text[1])) == 'l' &&
       std::tolower(static_cast<unsigned char>(text[2])) == 'l'))
    return kProtoAll;
  if (auto p = parseIpProtocol(text)) return *p;
  return std::nullopt;
}

// ---- numbers, port ranges, endpoints ----

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

namespace {

std::string_view trimSpaces(std::string_view s) {
  while (!s.empty() && s.front() == ' ')
    s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ')
    s.remove_suffix(1);
  return s;
}

}  // namespace

bool parsePortRange(std::string_view s, uint16_t* lo, uint16_t* hi) {
  if (s == "*" || s == "all") {
    *lo = 0;
    *hi = 65535;
    return true;
  }
  const size_t dash = s.find('-');
  uint64_t a = 0, b = 0;
  if (dash == std::string_view::npos) {
    if (!parseDecimal(s, 65535, &a)) return false;
    b = a;
  } else if (!parseDecimal(trimSpaces(s.substr(0, dash)), 65535, &a) ||
             !parseDecimal(trimSpaces(s.substr(dash + 1)), 65535, &b) || a > b) {
    return false;
  }
  *lo = static_cast<uint16_t>(a);
  *hi = static_cast<uint16_t>(b);
  return true;
}

base::Expected<EndpointText> splitEndpoint(std::string_view s) {
  using base::Status;
  EndpointText e;
  e.host = s;
  if (!s.empty() && s.front() == '[') {
    const size_t close = s.find(']');
    if (close == std::string_view::npos) {
      return Status::failure("'" + std::string(s) + "': missing ']' after an IPv6 address");
    }
    e.host = s.substr(1, close - 1);
    e.bracketed = true;
    const std::string_view rest = s.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') {
        return Status::failure("'" + std::string(s) + "': expected ':PORT' after ']'");
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

base::Expected<HostPort> parseHostPort(std::string_view s) {
  using base::Status;
  const size_t colon = s.rfind(':');
  if (colon == std::string_view::npos) {
    return Status::failure("expected HOST:PORT (e.g. 127.0.0.1:8080)");
  }
  std::string_view host = s.substr(0, colon);
  const std::string_view port = s.substr(colon + 1);
  uint64_t n = 0;
  if (!parseDecimal(port, 65535, &n)) {
    return Status::failure("bad port '" + std::string(port) + "' (0-65535)");
  }
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  HostPort hp;
  hp.host = host == "localhost" ? "127.0.0.1" : std::string(host);
  hp.port = static_cast<uint16_t>(n);
  return hp;
}

std::string endpointText(const IpAddr& a, uint16_t port) {
  return a.isV4() ? a.str() + ":" + std::to_string(port)
                  : "[" + a.str() + "]:" + std::to_string(port);
}

// ---- flows ----

BiFlowKey biFlowKey(uint8_t proto, const IpAddr& src, uint16_t sport, const IpAddr& dst,
                    uint16_t dport) {
  if (std::tie(dst, dport) < std::tie(src, sport)) return BiFlowKey{proto, dst, src, dport, sport};
  return BiFlowKey{proto, src, dst, sport, dport};
}

// ---- labels ----

std::string ruleLabel(std::string_view group, Direction dir, uint32_t index) {
  std::string s(group);
  s += ' ';
  s += directionName(dir);
  s += '[';
  s += std::to_string(index);
  s += ']';
  return s;
}

std::string ruleLabel(const RuleInfo& r) {
  return ruleLabel(r.group_name, r.dir, r.index);
}

std::string ruleLabelWords(const RuleInfo& r) {
  return r.group_name + " " + std::string(directionName(r.dir)) + " rule " +
         std::to_string(r.index);
}

std::string ruleLabelLong(const RuleInfo& r) {
  return ruleLabelWords(r) + " '" + r.text + "'";
}

std::string aclEntryLabel(const AclEntryInfo& e) {
  return e.acl_name + " " + std::string(directionName(e.dir)) + " rule " + e.ruleNumberStr();
}

std::string aclEntryTextWithoutNumber(const AclEntryInfo& e) {
  const std::string prefix = std::to_string(e.rule_number) + " ";
  return e.text.rfind(prefix, 0) == 0 ? e.text.substr(prefix.size()) : e.text;
}

std::string aclEntryLabelLong(const AclEntryInfo& e) {
  return aclEntryLabel(e) + " '" + aclEntryTextWithoutNumber(e) + "'";
}

// ---- formatting helpers ----

std::string withThousands(uint64_t v) {
  std::string s = std::to_string(v);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3)
    s.insert(static_cast<size_t>(i), ",");
  return s;
}

size_t tcpFlagLetters(uint8_t flags, char out[8]) {
  static constexpr char kLetters[] = "FSRPAUEC";
  size_t n = 0;
  for (int bit = 0; bit < 8; ++bit)
    if (flags & (1u << bit)) out[n++] = kLetters[bit];
  return n;
}

std::string tcpFlagLetters(uint8_t flags) {
  char buf[8];
  return std::string(buf, tcpFlagLetters(flags, buf));
}

namespace {

std::tm utcFields(uint64_t ns) {
  const std::time_t secs = static_cast<std::time_t>(ns / 1000000000ull);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return tm;
}

}  // namespace

std::string utcText(uint64_t ns, int frac_digits) {
  const std::tm tm = utcFields(ns);
  char buf[80];
  int n = std::snprintf(buf, sizeof(buf), "%04d-%02d-%02d %02d:%02d:%02d", tm.tm_year + 1900,
                        tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  if (frac_digits > 0) {
    uint64_t frac = ns % 1000000000ull;
    for (int d = 9; d > frac_digits; --d)
      frac /= 10;
    n += std::snprintf(buf + n, sizeof(buf) - static_cast<size_t>(n), ".%0*llu", frac_digits,
                       static_cast<unsigned long long>(frac));
  }
  return std::string(buf, static_cast<size_t>(n)) + " UTC";
}

std::string rfc3339Millis(uint64_t ns) {
  const std::tm tm = utcFields(ns);
  char buf[64];
  const int n =
      std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03lluZ", tm.tm_year + 1900,
                    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                    static_cast<unsigned long long>(ns % 1000000000ull / 1000000));
  return std::string(buf, static_cast<size_t>(n));
}

}  // namespace statewall::rules
