#include "statewall/sim/gen.hpp"

#include <algorithm>
#include <cmath>
#include <queue>
#include <sstream>
#include <unordered_set>

#include <fmt/format.h>

#include "statewall/dataplane/packet_builder.hpp"
#include "statewall/sim/flow_text.hpp"
#include "statewall/sim/flowlog.hpp"
#include "statewall/sim/pcap_io.hpp"
#include "statewall/sim/replay.hpp"

namespace statewall::sim {
namespace {

using dataplane::Bytes;
using dataplane::FrameOptions;
using rules::Cidr;
using rules::IpAddr;

dataplane::Shim::Kind shimKindOf(dataplane::EncapHeader::Kind k) {
  using Kind = dataplane::EncapHeader::Kind;
  switch (k) {
    case Kind::kMpls:
      return dataplane::Shim::Kind::kMpls;
    case Kind::kPppoe:
      return dataplane::Shim::Kind::kPppoe;
    case Kind::kPbb:
      return dataplane::Shim::Kind::kPbb;
    case Kind::kVnTag:
      return dataplane::Shim::Kind::kVnTag;
    case Kind::kFabricPath:
      return dataplane::Shim::Kind::kFabricPath;
    case Kind::kCmd:
      return dataplane::Shim::Kind::kCmd;
    case Kind::kPseudowire:
      return dataplane::Shim::Kind::kEthernetPw;
    default:
      return dataplane::Shim::Kind::kVlan;
  }
}

constexpr uint64_t kUs = 1000;
constexpr uint64_t kMs = 1000 * kUs;
constexpr uint64_t kSec = 1000 * kMs;

constexpr std::string_view kScenarioNames[kScenarioCount] = {
    "tcp",        "tcp-rst",     "refused", "noanswer", "idle",  "udp",
    "udp-stream", "udp-unreach", "icmp",    "scan",     "flood",
};

// splitmix64: the generator's only source of randomness; fixed arithmetic, same on every platform.
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t next() {
    uint64_t z = (s_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n) (n > 0); the modulo bias is negligible for the ranges used here.
  uint64_t below(uint64_t n) { return n == 0 ? 0 : next() % n; }
  // Uniform in [lo, hi].
  uint64_t range(uint64_t lo, uint64_t hi) { return lo + below(hi - lo + 1); }
  // True with probability p (0..1), decided on integers.
  bool chance(double p) {
    return static_cast<double>(next() >> 11) < p * static_cast<double>(1ull << 53);
  }

 private:
  uint64_t s_;
};

uint64_t mixSeed(uint64_t seed, uint64_t id) {
  Rng r(seed ^ (id * 0xD1B54A32D192ED03ull));
  return r.next();
}

// An address inside `c`, avoiding the all-zero and all-one host parts of IPv4 prefixes.
IpAddr randomHost(const Cidr& c, Rng& rng) {
  unsigned host_bits = c.maxPrefix() - c.prefix;
  IpAddr a = c.addr;
  if (host_bits == 0) return a;
  if (a.isV4()) {
    uint64_t span = 1ull << host_bits;
    uint64_t h = span > 2 ? rng.range(1, span - 2) : rng.below(span);
    a.lo = (a.lo & ~(span - 1)) | h;
    a.lo &= 0xFFFFFFFFull;
  } else {
    if (host_bits >= 64) {
      uint64_t lo = rng.next() | 1;
      uint64_t hi_mask = host_bits >= 128 ? ~0ull : ((1ull << (host_bits - 64)) - 1);
      a.hi = (a.hi & ~hi_mask) | (rng.next() & hi_mask);
      a.lo = lo;
    } else {
      uint64_t mask = (1ull << host_bits) - 1;
      a.lo = (a.lo & ~mask) | ((rng.next() & mask) | 1);
    }
  }
  return a;
}

dataplane::MacAddr macOf(const IpAddr& a) {
  uint64_t x = a.lo ^ (a.hi * 0x9E3779B97F4A7C15ull);
  return {0x02,
          static_cast<uint8_t>(x >> 32),
          static_cast<uint8_t>(x >> 24),
          static_cast<uint8_t>(x >> 16),
          static_cast<uint8_t>(x >> 8),
          static_cast<uint8_t>(x)};
}

// One packet of a flow's script.
enum Dir : uint8_t { kOrig = 0, kResp = 1, kError = 2 };

struct Step {
  uint64_t t = 0;  // from the flow's start
  Dir dir = kOrig;
  uint8_t flags = 0;
  uint32_t seq = 0;
  uint32_t ack = 0;
  uint32_t len = 0;
  uint32_t aux = 0;  // scan: port; flood: source host index; ICMP echo: sequence number
};

// A flow: its plan, and the script of packets it sends, in time order.
struct Flow {
  uint64_t id = 0;
  FlowPlan plan;
  std::vector<Step> steps;
  size_t next = 0;
  uint64_t base_ns = 0;  // absolute start
  uint16_t icmp_id = 0;
  Bytes first_ip;  // the first packet as raw IP, quoted by ICMP errors to the originator
  Bytes resp_ip;   // the responder's latest packet as raw IP, quoted by errors to the responder
};

class ScriptBuilder {
 public:
  explicit ScriptBuilder(std::vector<Step>* out) : out_(out) {}
  void at(uint64_t t) { t_ = std::max(t_, t); }
  void wait(uint64_t d) { t_ += d; }
  uint64_t now() const { return t_; }
  void push(Dir dir, uint8_t flags, uint32_t seq, uint32_t ack, uint32_t len, uint32_t aux = 0) {
    out_->push_back(Step{t_, dir, flags, seq, ack, len, aux});
  }

 private:
  std::vector<Step>* out_;
  uint64_t t_ = 0;
};

using dataplane::kAck;
using dataplane::kFin;
using dataplane::kPsh;
using dataplane::kRst;
using dataplane::kSyn;

void scriptTcp(const FlowPlan& p, Rng& rng, std::vector<Step>* out) {
  ScriptBuilder s(out);
  const uint64_t rtt = std::max<uint64_t>(p.rtt_us, 1) * kUs;
  const uint64_t srv = 50 * kUs + rng.below(100) * kUs;  // responder's turnaround at the tap
  const uint64_t gapx = 10 * kUs;                        // back-to-back segment spacing
  uint32_t c_isn = static_cast<uint32_t>(rng.next());
  uint32_t s_isn = static_cast<uint32_t>(rng.next());
  uint32_t c = c_isn + 1, sv = s_isn + 1;

  s.push(kOrig, kSyn, c_isn, 0, 0);
  if (p.error_type && !p.error_to_resp) {
    s.wait(rtt / 2);
    s.push(kError, 0, 0, 0, 0);
    return;
  }
  if (p.end == TcpEnd::kNoAnswer) {
    s.wait(1 * kSec);
    s.push(kOrig, kSyn, c_isn, 0, 0);
    s.wait(2 * kSec);
    s.push(kOrig, kSyn, c_isn, 0, 0);
    return;
  }
  s.wait(srv);
  if (p.end == TcpEnd::kRefused) {
    s.push(kResp, kRst | kAck, 0, c, 0);
    return;
  }
  s.push(kResp, kSyn | kAck, s_isn, c, 0);
  s.wait(rtt);
  s.push(kOrig, kAck, c, sv, 0);

  uint32_t retrans_left = p.retrans;
  const uint16_t mss = std::max<uint16_t>(p.mss, 100);
  for (uint32_t e = 0; e < p.exchanges; ++e) {
    s.wait(1 * kMs);
    if (p.gap_ns != 0 && e + 1 == p.exchanges) s.wait(p.gap_ns);
    uint32_t left = p.req_bytes;
    while (left > 0) {
      uint32_t len = std::min<uint32_t>(left, mss);
      left -= len;
      s.push(kOrig, left == 0 ? (kPsh | kAck) : kAck, c, sv, len);
      c += len;
      if (left > 0) s.wait(gapx);
    }
    s.wait(srv);
    left = p.resp_bytes;
    uint32_t last_seq = sv, last_len = 0;
    while (left > 0) {
      uint32_t len = std::min<uint32_t>(left, mss);
      left -= len;
      s.push(kResp, left == 0 ? (kPsh | kAck) : kAck, sv, c, len);
      last_seq = sv;
      last_len = len;
      sv += len;
      if (left > 0) s.wait(gapx);
    }
    if (retrans_left > 0 && last_len > 0 &&
        (e + 1 == p.exchanges || rng.below(p.exchanges - e) < retrans_left)) {
      // The client's ACK "got lost": the responder retransmits its last segment.
      --retrans_left;
      s.wait(std::max<uint64_t>(3 * rtt, 200 * kMs));
      s.push(kResp, kPsh | kAck, last_seq, c, last_len);
    }
    s.wait(rtt);
    s.push(kOrig, kAck, c, sv, 0);
  }

  s.wait(1 * kMs);
  switch (p.end) {
    case TcpEnd::kFin:
      s.push(kOrig, kFin | kAck, c, sv, 0);
      ++c;
      s.wait(srv);
      s.push(kResp, kFin | kAck, sv, c, 0);
      ++sv;
      s.wait(rtt);
      s.push(kOrig, kAck, c, sv, 0);
      break;
    case TcpEnd::kFinServer:
      s.push(kResp, kFin | kAck, sv, c, 0);
      ++sv;
      s.wait(rtt);
      s.push(kOrig, kFin | kAck, c, sv, 0);
      ++c;
      s.wait(srv);
      s.push(kResp, kAck, sv, c, 0);
      break;
    case TcpEnd::kRst:
      s.push(kOrig, kRst | kAck, c, sv, 0);
      break;
    case TcpEnd::kRstServer:
      s.push(kResp, kRst | kAck, sv, c, 0);
      break;
    case TcpEnd::kHalfOpen:
      s.push(kOrig, kFin | kAck, c, sv, 0);
      ++c;
      s.wait(srv);
      s.push(kResp, kAck, sv, c, 0);
      break;
    case TcpEnd::kOpen:
    case TcpEnd::kRefused:
    case TcpEnd::kNoAnswer:
      break;
  }
}

void scriptUdp(const FlowPlan& p, Rng& rng, std::vector<Step>* out) {
  ScriptBuilder s(out);
  const uint64_t rtt = std::max<uint64_t>(p.rtt_us, 1) * kUs;
  const uint64_t srv = 50 * kUs + rng.below(100) * kUs;
  const uint64_t interval = p.interval_us != 0 ? p.interval_us * kUs : 2 * rtt;
  for (uint32_t i = 0; i < std::max<uint32_t>(p.count, 1); ++i) {
    if (i > 0) s.wait(interval);
    if (p.gap_ns != 0 && i + 1 == p.count && i > 0) s.wait(p.gap_ns);
    s.push(kOrig, 0, 0, 0, p.req_bytes);
    if (i == 0 && p.error_type && !p.error_to_resp) {
      s.wait(srv);
      s.push(kError, 0, 0, 0, 0);
      continue;
    }
    if (p.reply) {
      s.wait(p.reply_delay_ns != 0 ? p.reply_delay_ns : srv);
      s.push(kResp, 0, 0, 0, p.resp_bytes);
    }
  }
}

void scriptIcmp(const FlowPlan& p, Rng& rng, std::vector<Step>* out) {
  ScriptBuilder s(out);
  const uint64_t srv = 50 * kUs + rng.below(100) * kUs;
  const uint64_t interval = p.interval_us != 0 ? p.interval_us * kUs : 1 * kSec;
  for (uint32_t i = 0; i < std::max<uint32_t>(p.count, 1); ++i) {
    if (i > 0) s.wait(interval);
    s.push(kOrig, 0, 0, 0, 56, i + 1);
    if (p.reply) {
      s.wait(p.reply_delay_ns != 0 ? p.reply_delay_ns : srv);
      s.push(kResp, 0, 0, 0, 56, i + 1);
    }
  }
}

void scriptScan(const FlowPlan& p, Rng& rng, std::vector<Step>* out) {
  ScriptBuilder s(out);
  const uint64_t srv = 50 * kUs + rng.below(100) * kUs;
  for (uint32_t port = p.port_lo; port <= p.port_hi; ++port) {
    s.push(kOrig, kSyn, 0, 0, 0, port);
    if (p.reply) {
      s.wait(srv);
      s.push(kResp, kRst | kAck, 0, 0, 0, port);
    }
    s.wait(200 * kUs);
  }
}

void scriptFlood(const FlowPlan& p, Rng& rng, std::vector<Step>* out) {
  ScriptBuilder s(out);
  const uint64_t spacing = kSec / std::max<uint32_t>(p.flood_pps, 1);
  for (uint32_t i = 0; i < std::max<uint32_t>(p.count, 1); ++i) {
    s.push(kOrig, kSyn, static_cast<uint32_t>(rng.next()), 0, 0, static_cast<uint32_t>(rng.next()));
    s.wait(spacing);
  }
}

void buildScript(Flow& f, Rng& rng) {
  switch (f.plan.kind) {
    case Scenario::kTcp:
    case Scenario::kTcpRst:
    case Scenario::kTcpRefused:
    case Scenario::kTcpNoAnswer:
      scriptTcp(f.plan, rng, &f.steps);
      break;
    case Scenario::kTcpIdle:
      if (f.plan.proto == dataplane::kIpProtoTcp) {
        scriptTcp(f.plan, rng, &f.steps);
      } else {
        scriptUdp(f.plan, rng, &f.steps);
      }
      break;
    case Scenario::kUdp:
    case Scenario::kUdpStream:
    case Scenario::kUdpUnreach:
      scriptUdp(f.plan, rng, &f.steps);
      break;
    case Scenario::kIcmpEcho:
      scriptIcmp(f.plan, rng, &f.steps);
      break;
    case Scenario::kScan:
      scriptScan(f.plan, rng, &f.steps);
      break;
    case Scenario::kFlood:
      scriptFlood(f.plan, rng, &f.steps);
      break;
    case Scenario::kCount:
      break;
  }
  // An error to the responder: about its first data packet (else its first packet), half a
  // round trip after it, before the flow's next packet.
  const FlowPlan& p = f.plan;
  if (p.error_type && p.error_to_resp) {
    size_t at = f.steps.size();
    for (size_t k = 0; k < f.steps.size(); ++k) {
      if (f.steps[k].dir != kResp) continue;
      if (at == f.steps.size()) at = k;
      if (f.steps[k].len > 0) {
        at = k;
        break;
      }
    }
    if (at < f.steps.size()) {
      uint64_t t = f.steps[at].t + std::max<uint64_t>(p.rtt_us, 1) * kUs / 2;
      if (at + 1 < f.steps.size()) t = std::min(t, f.steps[at + 1].t);
      f.steps.insert(f.steps.begin() + static_cast<std::ptrdiff_t>(at) + 1,
                     Step{t, kError, 0, 0, 0, 0, 0});
    }
  }
}

// ---- Explicit flow specs ----

bool parseSeconds(std::string_view s, uint64_t* ns) {
  // "12", "1.5", "0.000250": decimal seconds, parsed exactly (no floating point).
  size_t dot = s.find('.');
  uint64_t whole = 0, frac = 0;
  std::string_view w = s.substr(0, dot);
  if (!w.empty() && !parseDecimal(w, UINT64_MAX, &whole)) return false;
  if (dot != std::string_view::npos) {
    std::string_view f = s.substr(dot + 1);
    if (f.empty() || f.size() > 9 || !parseDecimal(f, UINT64_MAX, &frac)) return false;
    for (size_t i = f.size(); i < 9; ++i)
      frac *= 10;
  } else if (w.empty()) {
    return false;
  }
  if (whole > 100ull * 365 * 86400) return false;
  *ns = whole * kSec + frac;
  return true;
}

// A decimal number of milliseconds ("2", "0.25") in microseconds.
bool parseMillis(std::string_view s, uint32_t* us) {
  uint64_t scaled = 0;  // the value times 1e9
  if (!parseSeconds(s, &scaled)) return false;
  uint64_t v = scaled / 1000000;  // value * 1000 = microseconds
  if (v > 3600ull * 1000 * 1000) return false;
  *us = static_cast<uint32_t>(v);
  return true;
}

// "A:P", "[V6]:P", "A" (port 0 and has_port false), "V6".
bool parseEndpoint(std::string_view s, IpAddr* addr, uint16_t* port, bool* has_port) {
  const auto e = splitEndpoint(s);
  if (!e) return false;
  auto a = IpAddr::parse(e->host);
  if (!a) return false;
  *addr = *a;
  *has_port = e->has_port;
  *port = 0;
  if (e->has_port) {
    uint64_t v = 0;
    if (!parseDecimal(e->port, 65535, &v)) return false;
    *port = static_cast<uint16_t>(v);
  }
  return true;
}

bool parseYesNo(std::string_view v, bool* out) {
  if (v == "yes" || v == "true" || v == "1") {
    *out = true;
    return true;
  }
  if (v == "no" || v == "false" || v == "0") {
    *out = false;
    return true;
  }
  return false;
}

void setError(FlowPlan& p, std::string_view kind) {
  bool v4 = p.src.isV4();
  p.error_code = 0;
  if (kind == "unreach") {
    p.error_type = v4 ? dataplane::kIcmpDestUnreachable : dataplane::kIcmpv6DestUnreachable;
    p.error_code = v4 ? (p.proto == dataplane::kIpProtoUdp ? 3 : 1)
                      : (p.proto == dataplane::kIpProtoUdp ? 4 : 3);
  } else if (kind == "ttl") {
    p.error_type = v4 ? dataplane::kIcmpTimeExceeded : dataplane::kIcmpv6TimeExceeded;
  } else {
    p.error_type = v4 ? dataplane::kIcmpDestUnreachable : dataplane::kIcmpv6PacketTooBig;
    p.error_code = v4 ? 4 : 0;
  }
}

}  // namespace

std::string_view scenarioName(Scenario s) {
  return s < Scenario::kCount ? kScenarioNames[static_cast<size_t>(s)] : "?";
}

std::vector<double> GenOptions::defaultMix() {
  std::vector<double> m(kScenarioCount, 0.0);
  auto set = [&](Scenario s, double w) { m[static_cast<size_t>(s)] = w; };
  set(Scenario::kTcp, 70);
  set(Scenario::kTcpRst, 4);
  set(Scenario::kTcpRefused, 3);
  set(Scenario::kTcpNoAnswer, 2);
  set(Scenario::kTcpIdle, 1);
  set(Scenario::kUdp, 10);
  set(Scenario::kUdpStream, 4);
  set(Scenario::kUdpUnreach, 1);
  set(Scenario::kIcmpEcho, 4);
  set(Scenario::kScan, 0.5);
  set(Scenario::kFlood, 0.5);
  return m;
}

base::Expected<std::vector<double>> parseMix(const std::string& text) {
  using base::Status;
  std::vector<double> m(kScenarioCount, 0.0);
  std::stringstream ss(text);
  std::string item;
  double total = 0;
  while (std::getline(ss, item, ',')) {
    size_t eq = item.find('=');
    if (eq == std::string::npos) {
      return Status::failure(fmt::format("mix entry '{}': expected NAME=WEIGHT", item));
    }
    std::string name = item.substr(0, eq);
    size_t idx = kScenarioCount;
    for (size_t i = 0; i < kScenarioCount; ++i)
      if (kScenarioNames[i] == name) idx = i;
    if (idx == kScenarioCount) {
      std::string names;
      for (auto n : kScenarioNames)
        names += fmt::format("{}{}", names.empty() ? "" : ", ", n);
      return Status::failure(
          fmt::format("mix entry '{}': unknown scenario (one of {})", item, names));
    }
    char* end = nullptr;
    std::string w = item.substr(eq + 1);
    double v = std::strtod(w.c_str(), &end);
    if (w.empty() || end != w.c_str() + w.size() || !(v >= 0) || !std::isfinite(v)) {
      return Status::failure(fmt::format("mix entry '{}': weight must be a number >= 0", item));
    }
    m[idx] = v;
    total += v;
  }
  if (total <= 0) {
    return Status::failure("mix: at least one scenario needs a positive weight");
  }
  return m;
}

base::Expected<FlowPlan> parseFlowSpec(const std::string& text) {
  auto fail = [&](const std::string& msg) {
    return base::Status::failure(fmt::format("flow '{}': {}", text, msg));
  };
  auto words = splitFlow(text);
  if (!words) return fail("expected KIND SRC -> DST [key=value ...]");
  std::vector<std::string> tok = {words->proto, words->src, "->", words->dst};
  tok.insert(tok.end(), words->rest.begin(), words->rest.end());
  FlowPlan p;
  const std::string& kind = tok[0];
  bool src_port = false, dst_port = false;
  if (kind == "tcp") {
    p.kind = Scenario::kTcp;
    p.proto = dataplane::kIpProtoTcp;
  } else if (kind == "udp") {
    p.kind = Scenario::kUdp;
    p.proto = dataplane::kIpProtoUdp;
    p.req_bytes = 40;
    p.resp_bytes = 120;
  } else if (kind == "icmp") {
    p.kind = Scenario::kIcmpEcho;
  } else if (kind == "scan") {
    p.kind = Scenario::kScan;
    p.proto = dataplane::kIpProtoTcp;
    p.reply = false;
  } else if (kind == "flood") {
    p.kind = Scenario::kFlood;
    p.proto = dataplane::kIpProtoTcp;
    p.count = 1000;
  } else {
    return fail("unknown kind '" + kind + "' (tcp, udp, icmp, scan, flood)");
  }
  if (p.kind == Scenario::kFlood) {
    auto c = Cidr::parse(tok[1]);
    if (!c) return fail("flood source must be a CIDR, got '" + tok[1] + "'");
    p.spoof = *c;
    p.src = c->addr;
  } else if (!parseEndpoint(tok[1], &p.src, &p.sport, &src_port)) {
    return fail("bad source '" + tok[1] + "'");
  }
  if (!parseEndpoint(tok[3], &p.dst, &p.dport, &dst_port)) {
    return fail("bad destination '" + tok[3] + "'");
  }
  if (p.src.family != p.dst.family) return fail("source and destination families differ");
  bool needs_dport =
      p.kind == Scenario::kTcp || p.kind == Scenario::kUdp || p.kind == Scenario::kFlood;
  if (needs_dport && !dst_port) return fail("the destination needs a port");
  if ((p.kind == Scenario::kIcmpEcho || p.kind == Scenario::kScan) && (src_port || dst_port)) {
    return fail(kind + " flows take addresses without ports");
  }
  if (p.kind == Scenario::kIcmpEcho) {
    p.proto = p.src.isV4() ? dataplane::kIpProtoIcmp : dataplane::kIpProtoIcmpv6;
  }
  std::optional<std::string> error_kind;
  for (size_t i = 4; i < tok.size(); ++i) {
    const std::string& kv = tok[i];
    size_t eq = kv.find('=');
    if (eq == std::string::npos) return fail("expected key=value, got '" + kv + "'");
    std::string_view k(kv.data(), eq), v(kv.data() + eq + 1, kv.size() - eq - 1);
    uint64_t n = 0;
    auto num = [&](uint64_t max) { return parseDecimal(v, max, &n); };
    auto bad = [&]() { return fail(fmt::format("bad value for {}: '{}'", k, v)); };
    if (k == "at") {
      if (!parseSeconds(v, &p.start_ns)) return bad();
    } else if (k == "rtt") {
      if (!parseMillis(v, &p.rtt_us) || p.rtt_us == 0) return bad();
    } else if (k == "interval") {
      if (!parseMillis(v, &p.interval_us)) return bad();
    } else if (k == "gap") {
      if (!parseSeconds(v, &p.gap_ns)) return bad();
    } else if (k == "delay" && (p.kind == Scenario::kUdp || p.kind == Scenario::kIcmpEcho)) {
      if (!parseSeconds(v, &p.reply_delay_ns)) return bad();
    } else if (k == "data" && p.proto == dataplane::kIpProtoTcp && p.kind == Scenario::kTcp) {
      if (!num(1000000)) return bad();
      p.exchanges = static_cast<uint32_t>(n);
    } else if (k == "req" || k == "len") {
      if (!num(65000)) return bad();
      p.req_bytes = static_cast<uint32_t>(n);
    } else if (k == "resp") {
      if (!num(100000000)) return bad();
      p.resp_bytes = static_cast<uint32_t>(n);
    } else if (k == "mss") {
      if (!num(9000) || n < 100) return bad();
      p.mss = static_cast<uint16_t>(n);
    } else if (k == "retrans") {
      if (!num(1000000)) return bad();
      p.retrans = static_cast<uint32_t>(n);
    } else if (k == "count") {
      if (!num(100000000) || n == 0) return bad();
      p.count = static_cast<uint32_t>(n);
    } else if (k == "reply") {
      if (!parseYesNo(v, &p.reply)) return bad();
    } else if (k == "id" && p.kind == Scenario::kIcmpEcho) {
      if (!num(65535)) return bad();
      p.sport = p.dport = static_cast<uint16_t>(n);
      src_port = true;
    } else if (k == "rate" && p.kind == Scenario::kFlood) {
      if (!num(100000000) || n == 0) return bad();
      p.flood_pps = static_cast<uint32_t>(n);
    } else if (k == "ports" && p.kind == Scenario::kScan) {
      uint16_t lo = 0, hi = 0;
      if (!parsePortRange(v, &lo, &hi) || lo == 0) return bad();
      p.port_lo = lo;
      p.port_hi = hi;
    } else if (k == "end" && p.kind == Scenario::kTcp) {
      if (v == "fin") {
        p.end = TcpEnd::kFin;
      } else if (v == "fin-server") {
        p.end = TcpEnd::kFinServer;
      } else if (v == "rst") {
        p.end = TcpEnd::kRst;
      } else if (v == "rst-server") {
        p.end = TcpEnd::kRstServer;
      } else if (v == "refused") {
        p.end = TcpEnd::kRefused;
      } else if (v == "noanswer") {
        p.end = TcpEnd::kNoAnswer;
      } else if (v == "open") {
        p.end = TcpEnd::kOpen;
      } else if (v == "half") {
        p.end = TcpEnd::kHalfOpen;
      } else {
        return bad();
      }
    } else if (k == "error" && (p.kind == Scenario::kTcp || p.kind == Scenario::kUdp)) {
      if (v != "unreach" && v != "ttl" && v != "ptb") return bad();
      error_kind = std::string(v);
    } else if (k == "error-to" && (p.kind == Scenario::kTcp || p.kind == Scenario::kUdp)) {
      if (v != "orig" && v != "resp") return bad();
      p.error_to_resp = v == "resp";
    } else if (k == "error-from" && (p.kind == Scenario::kTcp || p.kind == Scenario::kUdp)) {
      auto a = IpAddr::parse(v);
      if (!a || a->family != p.src.family) return bad();
      p.error_from = *a;
    } else {
      return fail(fmt::format("unknown option '{}' for a {} flow", k, kind));
    }
  }
  if (error_kind) setError(p, *error_kind);
  if (p.kind == Scenario::kTcp && p.end == TcpEnd::kRefused) p.kind = Scenario::kTcpRefused;
  if (p.kind == Scenario::kTcp && p.end == TcpEnd::kNoAnswer) p.kind = Scenario::kTcpNoAnswer;
  if (p.error_to_resp && !p.error_type) return fail("error-to= needs error=");
  if (p.error_to_resp && (!p.reply || p.end == TcpEnd::kNoAnswer)) {
    return fail("error-to=resp needs a responder that answers");
  }
  if (p.kind == Scenario::kUdp) {
    if (p.error_type && !p.error_to_resp)
      p.kind = Scenario::kUdpUnreach;
    else if (p.count > 1)
      p.kind = Scenario::kUdpStream;
  }
  if (!src_port) p.sport = 0;  // drawn per flow
  return p;
}

base::Expected<std::vector<dataplane::EncapHeader>> parseEncapList(const std::string& text,
                                                                   dataplane::LinkType link) {
  using base::Status;
  using Kind = dataplane::EncapHeader::Kind;
  std::vector<dataplane::EncapHeader> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    dataplane::EncapHeader h;
    const std::string e = dataplane::parseEncapText(item, &h);
    if (!e.empty()) {
      return Status::failure("--encap: " + e);
    }
    out.push_back(h);
  }
  if (out.empty()) {
    return Status::failure("--encap: empty list");
  }
  auto bad = [&](size_t i, const std::string& why) {
    return Status::failure(
        fmt::format("--encap: '{}' (item {}): {}", dataplane::encapText(out[i]), i + 1, why));
  };
  const bool link_has_type = link == dataplane::LinkType::kEthernet ||
                             link == dataplane::LinkType::kLinuxSll ||
                             link == dataplane::LinkType::kLinuxSll2;
  // The group of layer-2.5 headers in front of each item: the link's, or a tunnel's inner frame.
  std::optional<Kind> carrier;  // the tunnel whose inner frame we are in (none: the link)
  bool group_start = true;
  bool in_stack = false;  // after an MPLS label of this group
  bool after_pppoe = false;
  size_t last_tunnel = out.size();
  for (size_t i = 0; i < out.size(); ++i) {
    const Kind k = out[i].kind;
    if (dataplane::encapIsTunnel(k)) {
      if (in_stack) return bad(i, "an MPLS stack carries IP or an Ethernet pseudowire (pw-eth)");
      carrier = k;
      group_start = true;
      in_stack = false;
      after_pppoe = false;
      last_tunnel = i;
      continue;
    }
    if (group_start) {
      if (!carrier && !link_has_type) {
        return bad(i, "layer-2.5 headers need a link with an EtherType (ethernet, sll, sll2)");
      }
      if (carrier && *carrier != Kind::kVxlan && *carrier != Kind::kGeneve &&
          *carrier != Kind::kErspan) {
        return bad(i,
                   "only vxlan, geneve and erspan carry an Ethernet frame with layer-2.5 "
                   "headers inside");
      }
      if (k == Kind::kPseudowire) return bad(i, "an Ethernet pseudowire follows an MPLS label");
    }
    group_start = false;
    if (after_pppoe) return bad(i, "PPPoE must be the last layer-2.5 header of its frame");
    if (k == Kind::kPseudowire) {
      if (!in_stack) return bad(i, "an Ethernet pseudowire follows an MPLS label");
      in_stack = false;
      continue;
    }
    if (in_stack && k != Kind::kMpls)
      return bad(i, "after an MPLS label comes another label, pw-eth or the IP packet");
    in_stack = k == Kind::kMpls;
    after_pppoe = k == Kind::kPppoe;
  }
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i].kind == Kind::kTeredo && i != last_tunnel) {
      return bad(i,
                 "Teredo carries IPv6 only, so it must be the innermost tunnel (the tunnels "
                 "inside it would run over IPv4)");
    }
  }
  return out;
}

struct TraceGenerator::Impl {
  GenOptions opt;
  FrameOptions frame;
  uint64_t next_id = 0;
  uint64_t random_drawn = 0;
  uint64_t random_next_start = 0;
  std::vector<double> cum;  // cumulative mix weights
  std::vector<Cidr> clients4, clients6;
  std::vector<IpAddr> servers4, servers6;

  struct HeapItem {
    uint64_t ts;
    uint64_t id;
    Flow* flow;
    bool operator>(const HeapItem& o) const { return ts != o.ts ? ts > o.ts : id > o.id; }
  };
  std::priority_queue<HeapItem, std::vector<HeapItem>, std::greater<>> heap;
  std::unordered_set<uint64_t> live;     // flows with packets still to send
  std::unordered_set<uint64_t> stopped;  // of those, the ones stopFlow() cut short

  explicit Impl(const GenOptions& o) : opt(o) {
    frame.link = o.link;
    if (o.vlan &&
        (o.link == dataplane::LinkType::kEthernet || o.link == dataplane::LinkType::kLinuxSll ||
         o.link == dataplane::LinkType::kLinuxSll2)) {
      frame.vlans.push_back(dataplane::VlanTag{*o.vlan, dataplane::kEtherTypeVlan, 0});
    }
    for (const dataplane::EncapHeader& h : o.encap) {
      if (dataplane::encapIsTunnel(h.kind)) {
        dataplane::TunnelSpec t = dataplane::tunnelSpecOf(h);
        const auto k = static_cast<uint32_t>(frame.tunnels.size());
        t.outer_src = IpAddr::v4(0xc0000201 + 2 * k);  // 192.0.2.(2k+1)
        t.outer_dst = IpAddr::v4(0xc0000202 + 2 * k);
        frame.tunnels.push_back(t);
        continue;
      }
      const dataplane::Shim shim{.kind = shimKindOf(h.kind), .value = h.value};
      (frame.tunnels.empty() ? frame.shims : frame.tunnels.back().inner_shims).push_back(shim);
    }
    std::vector<Cidr> cl = o.clients;
    if (cl.empty()) {
      cl.push_back(*Cidr::parse("198.51.100.0/24"));
      cl.push_back(*Cidr::parse("2001:db8:ff00::/64"));
    }
    for (const auto& c : cl)
      (c.addr.isV4() ? clients4 : clients6).push_back(c);
    std::vector<IpAddr> sv = o.servers;
    if (sv.empty()) {
      sv.push_back(*IpAddr::parse("10.0.1.10"));
      sv.push_back(*IpAddr::parse("2001:db8:1::10"));
    }
    for (const auto& a : sv)
      (a.isV4() ? servers4 : servers6).push_back(a);
    double acc = 0;
    for (size_t i = 0; i < kScenarioCount; ++i) {
      acc += i < o.mix.size() ? o.mix[i] : 0.0;
      cum.push_back(acc);
    }
    for (const FlowPlan& p : o.explicit_flows)
      startFlow(p);
    scheduleRandom();
  }

  ~Impl() {
    while (!heap.empty()) {
      delete heap.top().flow;
      heap.pop();
    }
  }

  // The start time of random flow i: evenly spread with jitter, so starts are non-decreasing.
  uint64_t randomStart(uint64_t i) const {
    const uint64_t dur = static_cast<uint64_t>(std::max(opt.duration_s, 0.0) * 1e9);
    const uint64_t slot = opt.flows == 0 ? 0 : dur / opt.flows;
    Rng r(mixSeed(opt.seed ^ 0x5EED5EED, i));
    return i * slot + (slot > 0 ? r.below(slot) : 0);
  }

  void scheduleRandom() {
    if (random_drawn < opt.flows) random_next_start = randomStart(random_drawn);
  }

  void startFlow(const FlowPlan& plan) {
    auto* f = new Flow();
    f->id = next_id++;
    f->plan = plan;
    Rng rng(mixSeed(opt.seed, f->id));
    if (f->plan.sport == 0 && f->plan.kind != Scenario::kIcmpEcho) {
      f->plan.sport = static_cast<uint16_t>(rng.range(32768, 60999));
    }
    f->icmp_id = f->plan.kind == Scenario::kIcmpEcho && f->plan.sport != 0
                     ? f->plan.sport
                     : static_cast<uint16_t>(rng.range(1, 65535));
    buildScript(*f, rng);
    f->base_ns = plan.start_ns;
    if (f->steps.empty()) {
      delete f;
      return;
    }
    heap.push(HeapItem{f->base_ns + f->steps[0].t, f->id, f});
  }

  FlowPlan drawPlan(uint64_t i) {
    Rng rng(mixSeed(opt.seed ^ 0xA11CE, i));
    FlowPlan p;
    p.start_ns = randomStart(i);
    double total = cum.empty() ? 0 : cum.back();
    double x = total * (static_cast<double>(rng.next() >> 11) / static_cast<double>(1ull << 53));
    size_t k = 0;
    while (k + 1 < cum.size() && x >= cum[k])
      ++k;
    p.kind = static_cast<Scenario>(k);
    bool can4 = !clients4.empty() && !servers4.empty();
    bool can6 = !clients6.empty() && !servers6.empty();
    bool v6 = can6 && (!can4 || rng.chance(opt.ipv6_share));
    const auto& cls = v6 ? clients6 : clients4;
    const auto& svs = v6 ? servers6 : servers4;
    if (cls.empty() || svs.empty()) {
      // No address pair of either family: fall back to the default documentation prefixes.
      p.src = *IpAddr::parse("198.51.100.1");
      p.dst = *IpAddr::parse("10.0.1.10");
    } else {
      p.src = randomHost(cls[rng.below(cls.size())], rng);
      p.dst = svs[rng.below(svs.size())];
    }
    p.rtt_us = static_cast<uint32_t>(rng.range(1000, 50000));
    auto pick = [&](const std::vector<uint16_t>& ports, uint16_t dflt) {
      return ports.empty() ? dflt : ports[rng.below(ports.size())];
    };
    const uint32_t mean = std::max<uint32_t>(opt.exchanges, 1);
    switch (p.kind) {
      case Scenario::kTcp:
      case Scenario::kTcpRst:
      case Scenario::kTcpRefused:
      case Scenario::kTcpNoAnswer:
        p.proto = dataplane::kIpProtoTcp;
        p.dport = pick(opt.tcp_ports, 443);
        p.exchanges = static_cast<uint32_t>(rng.range(1, 2 * mean - 1));
        p.req_bytes =
            static_cast<uint32_t>(rng.range(opt.req_lo, std::max(opt.req_lo, opt.req_hi)));
        p.resp_bytes =
            static_cast<uint32_t>(rng.range(opt.resp_lo, std::max(opt.resp_lo, opt.resp_hi)));
        p.retrans = rng.chance(0.05) ? 1 : 0;
        p.end = p.kind == Scenario::kTcpRst ? (rng.chance(0.5) ? TcpEnd::kRst : TcpEnd::kRstServer)
                : p.kind == Scenario::kTcpRefused  ? TcpEnd::kRefused
                : p.kind == Scenario::kTcpNoAnswer ? TcpEnd::kNoAnswer
                : rng.chance(0.2)                  ? TcpEnd::kFinServer
                                                   : TcpEnd::kFin;
        break;
      case Scenario::kTcpIdle:
        p.gap_ns = static_cast<uint64_t>(opt.idle_gap_s) * kSec;
        if (rng.chance(0.5)) {
          p.proto = dataplane::kIpProtoTcp;
          p.dport = pick(opt.tcp_ports, 443);
          p.exchanges = 2;
        } else {
          p.proto = dataplane::kIpProtoUdp;
          p.dport = pick(opt.udp_ports, 53);
          p.count = 3;
          p.req_bytes = 60;
          p.resp_bytes = 60;
        }
        break;
      case Scenario::kUdp:
      case Scenario::kUdpStream:
      case Scenario::kUdpUnreach:
        p.proto = dataplane::kIpProtoUdp;
        p.dport = pick(opt.udp_ports, 53);
        p.req_bytes = static_cast<uint32_t>(rng.range(30, 120));
        p.resp_bytes = static_cast<uint32_t>(rng.range(60, 500));
        p.count = p.kind == Scenario::kUdpStream ? static_cast<uint32_t>(rng.range(3, 20)) : 1;
        if (p.kind == Scenario::kUdpUnreach) {
          p.dport = static_cast<uint16_t>(rng.range(1024, 9999));
          setError(p, "unreach");
        }
        break;
      case Scenario::kIcmpEcho:
        p.proto = v6 ? dataplane::kIpProtoIcmpv6 : dataplane::kIpProtoIcmp;
        p.count = static_cast<uint32_t>(rng.range(1, 4));
        break;
      case Scenario::kScan:
        p.proto = dataplane::kIpProtoTcp;
        p.port_lo = 1;
        p.port_hi = static_cast<uint16_t>(std::clamp<uint32_t>(opt.scan_ports, 1, 65535));
        p.reply = false;
        break;
      case Scenario::kFlood:
        p.proto = dataplane::kIpProtoTcp;
        p.dport = pick(opt.tcp_ports, 443);
        p.count = std::max<uint32_t>(opt.flood_packets, 1);
        p.spoof = v6 ? *Cidr::parse("2001:db8:f000::/36") : *Cidr::parse("100.64.0.0/10");
        break;
      case Scenario::kCount:
        break;
    }
    return p;
  }

  FrameOptions frameFor(const IpAddr& src, const IpAddr& dst) const {
    FrameOptions f = frame;
    f.src_mac = macOf(src);
    f.dst_mac = macOf(dst);
    // Each direction of a flow crosses the tunnels the other way.
    if (dst < src) {
      for (dataplane::TunnelSpec& t : f.tunnels)
        std::swap(t.outer_src, t.outer_dst);
    }
    return f;
  }

  Bytes buildStep(Flow& f, const Step& st) {
    const FlowPlan& p = f.plan;
    const bool resp = st.dir == kResp;
    IpAddr src = resp ? p.dst : p.src;
    IpAddr dst = resp ? p.src : p.dst;
    uint16_t sport = resp ? p.dport : p.sport;
    uint16_t dport = resp ? p.sport : p.dport;
    if (p.kind == Scenario::kScan) {
      (resp ? sport : dport) = static_cast<uint16_t>(st.aux);
    }
    if (p.kind == Scenario::kFlood) {
      Rng r(st.aux);
      src = randomHost(p.spoof, r);
      sport = static_cast<uint16_t>(r.range(1024, 65535));
    }
    if (st.dir == kError) {
      // To the originator about its first packet, or to the responder about its latest one.
      const IpAddr& to = p.error_to_resp ? p.dst : p.src;
      IpAddr from = p.error_from ? *p.error_from : (p.error_to_resp ? p.src : p.dst);
      dataplane::IcmpErrorSpec e;
      e.src = from;
      e.dst = to;
      e.type = *p.error_type;
      e.code = p.error_code;
      bool ptb = (p.src.isV4() && e.type == dataplane::kIcmpDestUnreachable && e.code == 4) ||
                 (!p.src.isV4() && e.type == dataplane::kIcmpv6PacketTooBig);
      e.rest = ptb ? 1280 : 0;
      return dataplane::buildIcmpError(e, p.error_to_resp ? f.resp_ip : f.first_ip,
                                       frameFor(from, to));
    }
    FrameOptions fo = frameFor(src, dst);
    switch (p.proto) {
      case dataplane::kIpProtoTcp: {
        dataplane::TcpSpec t;
        t.src = src;
        t.dst = dst;
        t.sport = sport;
        t.dport = dport;
        t.flags = st.flags;
        t.seq = st.seq;
        t.ack = st.ack;
        t.payload_len = st.len;
        if (st.flags & kSyn) {
          t.window = 64240;
          t.mss = p.mss;
          t.wscale = 7;
          t.sack_permitted = true;
        } else {
          t.window = 502;  // 64256 bytes with the window scale of 7 both sides announced
        }
        if (f.first_ip.empty() && st.dir == kOrig)
          f.first_ip = dataplane::buildTcp(t, dataplane::rawIp());
        if (resp && p.error_to_resp) f.resp_ip = dataplane::buildTcp(t, dataplane::rawIp());
        return dataplane::buildTcp(t, fo);
      }
      case dataplane::kIpProtoUdp: {
        dataplane::UdpSpec u;
        u.src = src;
        u.dst = dst;
        u.sport = sport;
        u.dport = dport;
        u.payload_len = st.len;
        if (f.first_ip.empty() && st.dir == kOrig)
          f.first_ip = dataplane::buildUdp(u, dataplane::rawIp());
        if (resp && p.error_to_resp) f.resp_ip = dataplane::buildUdp(u, dataplane::rawIp());
        return dataplane::buildUdp(u, fo);
      }
      default: {
        dataplane::IcmpEchoSpec e;
        e.src = src;
        e.dst = dst;
        e.id = f.icmp_id;
        e.seq = static_cast<uint16_t>(st.aux);
        e.reply = resp;
        e.payload_len = st.len;
        return dataplane::buildIcmpEcho(e, fo);
      }
    }
  }

  bool next(GenPacket* out) {
    for (;;) {
      // Start every random flow due before the earliest pending packet.
      while (random_drawn < opt.flows && (heap.empty() || random_next_start <= heap.top().ts)) {
        FlowPlan p = drawPlan(random_drawn);
        ++random_drawn;
        startFlow(p);
        scheduleRandom();
      }
      if (heap.empty()) return false;
      HeapItem top = heap.top();
      heap.pop();
      Flow* f = top.flow;
      if (!stopped.empty() && stopped.erase(f->id) != 0) {
        live.erase(f->id);
        delete f;
        continue;
      }
      const Step& st = f->steps[f->next];
      out->flow = f->id;
      out->frame = buildStep(*f, st);
      out->ts_ns = opt.start_ns + top.ts;
      ++f->next;
      if (f->next < f->steps.size()) {
        heap.push(HeapItem{f->base_ns + f->steps[f->next].t, f->id, f});
        live.insert(f->id);
      } else {
        live.erase(f->id);
        delete f;
      }
      return true;
    }
  }
};

TraceGenerator::TraceGenerator(const GenOptions& options)
    : impl_(std::make_unique<Impl>(options)) {}
TraceGenerator::~TraceGenerator() = default;
bool TraceGenerator::next(GenPacket* out) {
  return impl_->next(out);
}
uint64_t TraceGenerator::flowsStarted() const {
  return impl_->next_id;
}
bool TraceGenerator::stopFlow(uint64_t flow) {
  if (impl_->live.count(flow) == 0) return false;
  return impl_->stopped.insert(flow).second;
}

base::Status writeTrace(const GenOptions& options, const std::string& path, GenStats* stats) {
  using base::Status;
  if (!options.encap.empty() &&
      options.encap.back().kind == dataplane::EncapHeader::Kind::kTeredo) {
    // Teredo carries IPv6: every flow must be IPv6.
    bool v4 = options.flows != 0 && options.ipv6_share < 1.0;
    for (const FlowPlan& p : options.explicit_flows)
      v4 = v4 || p.src.isV4();
    if (v4)
      return Status::failure(
          "--encap teredo carries IPv6 only: give IPv6 flows (and --ipv6-share 1)");
  }
  auto opened = PcapWriter::open(path, dltFromLinkType(options.link), 262144, true);
  if (!opened) return opened.status();
  std::unique_ptr<PcapWriter> w = std::move(*opened);
  TraceGenerator gen(options);
  GenPacket pkt;
  GenStats s;
  // --stop-on-deny and --flow-log: the replay's own driver judges each packet as it is written.
  std::unique_ptr<Replay> judge;
  bool denied = false;
  std::vector<Frame> one(1);
  one[0].link = options.link;
  const rules::CompiledPolicyPtr& policy =
      options.stop_on_deny ? options.stop_on_deny : options.flow_log_policy;
  std::unique_ptr<FlowLogWriter> flow_log;
  std::unique_ptr<FlowLogAggregator> flow_agg;
  if (!options.flow_log_path.empty() && policy) {
    auto log = FlowLogWriter::open(options.flow_log_path, options.flow_log_jsonl
                                                              ? FlowLogWriter::Format::kJsonl
                                                              : FlowLogWriter::Format::kText);
    if (!log) return log.status();
    flow_log = std::move(*log);
    flow_agg =
        std::make_unique<FlowLogAggregator>(*policy, flow_log.get(), options.flow_log_window_s);
  }
  if (policy) {
    ReplayOptions ro;
    ro.burst = 1;  // a verdict per packet, before the next one is generated
    for (const dataplane::EncapHeader& h : options.encap)
      ro.parse.decap = ro.parse.decap || dataplane::encapIsTunnel(h.kind);
    // Room for every flow at once (a full table would deny, and so stop, flows of its own).
    ro.table_capacity =
        std::clamp<size_t>(options.explicit_flows.size() + options.flows + options.flood_packets,
                           1 << 12, kDefaultTableCapacity);
    judge = std::make_unique<Replay>(policy, ro);
    judge->setObserver([&](uint64_t, uint64_t ts_ns, const dataplane::Verdict& v,
                           const dataplane::ParsedPacket& p) {
      denied = !v.allowed();
      if (flow_agg) flow_agg->add(ts_ns, v, p);
    });
  }
  while (gen.next(&pkt)) {
    const auto len = static_cast<uint32_t>(pkt.frame.size());
    w->write(pkt.ts_ns, pkt.frame.data(), len, len);
    if (judge) {
      one[0].ts_ns = pkt.ts_ns;
      one[0].bytes.swap(pkt.frame);
      denied = false;
      judge->runFrames(one);
      one[0].bytes.swap(pkt.frame);
      if (denied && options.stop_on_deny && gen.stopFlow(pkt.flow)) ++s.flows_stopped;
    }
    if (s.packets == 0) s.first_ts_ns = pkt.ts_ns;
    s.last_ts_ns = pkt.ts_ns;
    ++s.packets;
    s.bytes += len;
  }
  s.flows = gen.flowsStarted();
  if (flow_agg) {
    flow_agg->finish();
    s.flow_log_records = flow_log->records();
    if (Status closed = flow_log->close(); !closed.ok()) return closed;
  }
  if (stats != nullptr) *stats = s;
  return w->close();
}

}  // namespace statewall::sim
