#include "query.hpp"

#include <cctype>
#include <charconv>

#include "statewall/dataplane/engine.hpp"
#include "statewall/rules/policy.hpp"
#include "statewall/rules/vocab.hpp"

namespace statewall::control {
namespace {

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Accepts "SYN_SENT", "syn-sent" and "syn_sent" alike.
std::string normalizeState(std::string_view s) {
  std::string out = lower(s);
  for (char& c : out)
    if (c == '-') c = '_';
  return out;
}

Status parseCidrParam(std::string_view key, std::string_view value,
                      std::optional<rules::Cidr>* out) {
  auto cidr = rules::Cidr::parse(value);
  if (!cidr)
    return Status::failure(std::string(key) + ": not an address or CIDR: " + std::string(value));
  *out = *cidr;
  return Status::success();
}

Status parsePortParam(std::string_view key, std::string_view value, std::optional<uint16_t>* out) {
  auto n = parseUnsigned(value, 0, 65535);
  if (!n)
    return Status::failure(std::string(key) +
                           ": not a port number (0..65535): " + std::string(value));
  *out = static_cast<uint16_t>(*n);
  return Status::success();
}

}  // namespace

Status percentDecode(std::string_view in, std::string* out) {
  out->clear();
  out->reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '+') {
      out->push_back(' ');
    } else if (c == '%') {
      if (i + 2 >= in.size()) return Status::failure("truncated %-escape");
      int hi = hexValue(in[i + 1]);
      int lo = hexValue(in[i + 2]);
      if (hi < 0 || lo < 0) return Status::failure("bad %-escape");
      char d = static_cast<char>(hi * 16 + lo);
      if (d == '\0') return Status::failure("NUL byte in query");
      out->push_back(d);
      i += 2;
    } else {
      out->push_back(c);
    }
  }
  return Status::success();
}

Status parseTarget(std::string_view target, Target* out) {
  out->path.clear();
  out->params.clear();
  if (target.empty() || target.front() != '/')
    return Status::failure("request target must start with '/'");
  size_t q = target.find('?');
  std::string_view path = target.substr(0, q);
  if (path.find('%') != std::string_view::npos || path.find('\0') != std::string_view::npos)
    return Status::failure("escapes are not allowed in the path");
  out->path = std::string(path);
  if (q == std::string_view::npos) return Status::success();
  std::string_view query = target.substr(q + 1);
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (part.empty()) continue;
    size_t eq = part.find('=');
    std::string key;
    std::string value;
    Status s = percentDecode(part.substr(0, eq), &key);
    if (!s.ok()) return s;
    if (eq != std::string_view::npos) {
      s = percentDecode(part.substr(eq + 1), &value);
      if (!s.ok()) return s;
    }
    out->params.emplace_back(std::move(key), std::move(value));
  }
  return Status::success();
}

std::optional<uint64_t> parseUnsigned(std::string_view s, uint64_t lo, uint64_t hi) {
  if (s.empty() || s.size() > 20) return std::nullopt;
  uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  if (v < lo || v > hi) return std::nullopt;
  return v;
}

std::string stateName(const dataplane::ConnectionInfo& c) {
  if (c.proto == rules::kProtoTcp) return normalizeState(dataplane::tcpStateName(c.tcp_state));
  return c.replied ? "replied" : "unreplied";
}

bool isStateName(std::string_view s) {
  std::string n = normalizeState(s);
  if (n == "replied" || n == "unreplied") return true;
  for (unsigned i = 0; i < dataplane::kTcpStateCount; ++i)
    if (normalizeState(dataplane::tcpStateName(static_cast<dataplane::TcpState>(i))) == n)
      return true;
  return false;
}

bool ConnectionFilter::matches(const dataplane::ConnectionInfo& c) const {
  if (id && c.id != *id) return false;
  if (proto && c.proto != *proto) return false;
  if (src && !src->contains(c.orig_src)) return false;
  if (dst && !dst->contains(c.orig_dst)) return false;
  if (addr && !addr->contains(c.orig_src) && !addr->contains(c.orig_dst)) return false;
  if (sport && c.orig_sport != *sport) return false;
  if (dport && c.orig_dport != *dport) return false;
  if (port && c.orig_sport != *port && c.orig_dport != *port) return false;
  if (state && stateName(c) != *state) return false;
  return true;
}

bool parseFilterParam(std::string_view key, std::string_view value, ConnectionFilter* filter,
                      Status* status) {
  *status = Status::success();
  if (key == "proto") {
    auto p = rules::parseIpProtocol(value);
    if (!p)
      *status = Status::failure("proto: expected tcp, udp, icmp, icmpv6 or 0..255, got " +
                                std::string(value));
    else
      filter->proto = *p;
  } else if (key == "src") {
    *status = parseCidrParam(key, value, &filter->src);
  } else if (key == "dst") {
    *status = parseCidrParam(key, value, &filter->dst);
  } else if (key == "addr") {
    *status = parseCidrParam(key, value, &filter->addr);
  } else if (key == "sport") {
    *status = parsePortParam(key, value, &filter->sport);
  } else if (key == "dport") {
    *status = parsePortParam(key, value, &filter->dport);
  } else if (key == "port") {
    *status = parsePortParam(key, value, &filter->port);
  } else if (key == "state") {
    if (!isStateName(value))
      *status = Status::failure("state: unknown state " + std::string(value));
    else
      filter->state = normalizeState(value);
  } else if (key == "id") {
    auto n = parseUnsigned(value, 0, UINT64_MAX);
    if (!n)
      *status = Status::failure("id: not a connection id: " + std::string(value));
    else
      filter->id = *n;
  } else {
    return false;
  }
  return true;
}

}  // namespace statewall::control
