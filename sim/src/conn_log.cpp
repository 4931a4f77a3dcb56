#include "statewall/sim/conn_log.hpp"

namespace statewall::sim {
namespace {

using dataplane::kAck;
using dataplane::kFin;
using dataplane::kRst;
using dataplane::kSyn;

// Bit per letter in ConnSide::letters.
enum Letter : uint16_t {
  kLetS = 1 << 0,
  kLetH = 1 << 1,
  kLetA = 1 << 2,
  kLetD = 1 << 3,
  kLetF = 1 << 4,
  kLetR = 1 << 5,
  kLetQ = 1 << 6,
  kLetI = 1 << 7,
};

bool seqBefore(uint32_t a, uint32_t b) {
  return static_cast<int32_t>(a - b) < 0;
}

bool isPowerOf10(uint32_t n) {
  while (n >= 10 && n % 10 == 0)
    n /= 10;
  return n == 1;
}

// Zeek's endpoint states, derived from what each side sent.
enum class Ep : uint8_t {
  kInactive,
  kSynSent,
  kSynAckSent,
  kPartial,
  kEstablished,
  kClosed,
  kReset
};

}  // namespace

std::string_view connEndName(ConnEnd e) {
  switch (e) {
    case ConnEnd::kOpen:
      return "open";
    case ConnEnd::kClosed:
      return "closed";
    case ConnEnd::kTimedOut:
      return "timed-out";
  }
  return "open";
}

bool likelyServerPort(uint16_t port) {
  if (port < 1024) return true;
  switch (port) {
    case 1080:  // SOCKS
    case 1433:  // SQL Server
    case 1521:  // Oracle
    case 3128:  // HTTP proxy
    case 3306:  // MySQL
    case 3389:  // RDP
    case 5432:  // PostgreSQL
    case 5900:  // VNC
    case 6379:  // Redis
    case 6667:  // IRC
    case 8000:  // alternative HTTP
    case 8080:
    case 8443:
    case 8888:
    case 9200:   // Elasticsearch
    case 27017:  // MongoDB
      return true;
    default:
      return false;
  }
}

void ConnRecord::addParent(uint64_t parent_seq) {
  for (uint8_t i = 0; i < parent_count; ++i) {
    if (parents[i] == parent_seq) return;
  }
  if (parent_count < kMaxParents) parents[parent_count++] = parent_seq;
}

std::string ConnRecord::uidOf(uint64_t seq) {
  static constexpr char kDigits[] =
      "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  uint64_t z = seq + 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  uint64_t w = z * 0x2545F4914F6CDD1Dull + seq;
  std::string s = "C";
  for (int i = 0; i < 17; ++i) {
    uint64_t& x = i < 10 ? z : w;
    s.push_back(kDigits[x % 62]);
    x /= 62;
  }
  return s;
}

void ConnRecord::begin(const dataplane::ParsedPacket& p, bool reply) {
  proto = p.proto;
  const bool synack =
      p.proto == dataplane::kIpProtoTcp && (p.tcp_flags & (kSyn | kAck | kRst)) == (kSyn | kAck);
  flipped = synack;
  if (!reply && p.proto == dataplane::kIpProtoTcp && !synack && (p.tcp_flags & kSyn) == 0 &&
      likelyServerPort(p.sport)) {
    // Zeek's guess for a connection it did not see open: the likely server is the responder
    // (when both ports are likely, the lower one).
    flipped = !likelyServerPort(p.dport) || p.sport < p.dport;
  }
  const bool swap = reply != flipped;
  orig_h = swap ? p.dst : p.src;
  resp_h = swap ? p.src : p.dst;
  if (p.proto == dataplane::kIpProtoIcmp || p.proto == dataplane::kIpProtoIcmpv6) {
    orig_p = p.icmp_type;
    resp_p = p.icmp_code;
  } else {
    orig_p = swap ? p.dport : p.sport;
    resp_p = swap ? p.sport : p.dport;
  }
  if (flipped) history[history_len++] = '^';
}

void ConnRecord::observe(const dataplane::ParsedPacket& p, bool from_orig, uint64_t ts_ns) {
  if (flipped) from_orig = !from_orig;
  if (orig.pkts == 0 && resp.pkts == 0) first_ns = ts_ns;
  last_ns = ts_ns;
  ConnSide& s = from_orig ? orig : resp;
  ++s.pkts;
  s.any = true;
  s.ip_bytes += p.ip_len;
  const bool upper = from_orig;
  auto letter = [&](uint16_t bit, char c) {
    if ((s.letters & bit) != 0) return;
    s.letters |= bit;
    if (history_len < sizeof(history))
      history[history_len++] = upper ? c : static_cast<char>(c + 32);
  };
  auto repeated = [&](uint32_t count, char c) {
    if (isPowerOf10(count) && history_len < sizeof(history)) {
      history[history_len++] = upper ? c : static_cast<char>(c + 32);
    }
  };
  if (p.proto == dataplane::kIpProtoTcp && !(p.is_fragment && !p.first_fragment)) {
    const uint8_t f = p.tcp_flags;
    const uint32_t len = p.l4_payload_len;
    s.payload_bytes += len;
    if ((f & kSyn) && (f & (kFin | kRst))) {
      letter(kLetQ, 'Q');
    } else if (f & kSyn) {
      if (f & kAck) {
        s.synack = true;
        letter(kLetH, 'H');
      } else {
        s.syn = true;
        letter(kLetS, 'S');
      }
    }
    if ((f & kFin) && (f & kRst)) letter(kLetI, 'I');
    ConnSide& peer = from_orig ? resp : orig;
    const bool was_closed = s.fin && !s.reset;
    if ((f & kFin) && !(f & kRst) && !s.reset && !was_closed && s.pkts > 1 && peer.reset &&
        peer.reset_after_fin) {
      // The peer's FIN then RST was a normal close after all.
      peer.reset = false;
    }
    // tcp_close_delay, tcp_reset_delay, tcp_attempt_delay
    constexpr uint64_t kZeekDelayNs = 5'000'000'000ull;
    if ((f & kSyn) && !(f & kAck) && from_orig && zeek_attempt_ns == 0) {
      zeek_attempt_ns = ts_ns + kZeekDelayNs;  // the attempt timer
    }
    if ((f & kFin) && !s.fin && zeek_removal_ns == 0 && (s.reset || peer.fin || !peer.any)) {
      zeek_removal_ns = ts_ns + kZeekDelayNs;  // the close is complete
    }
    if ((f & kRst) && !(peer.fin && !peer.reset) && zeek_removal_ns == 0) {
      zeek_removal_ns = ts_ns + kZeekDelayNs;
    }
    if (f & kFin) {
      s.fin = true;
      letter(kLetF, 'F');
    }
    if (f & kRst) {
      s.rst = true;
      letter(kLetR, 'R');
      // A RST after both sides closed leaves the side closed; otherwise it resets it.
      const bool peer_closed = peer.fin && !peer.reset;
      if (!s.reset && !(was_closed && peer_closed)) {
        s.reset = true;
        s.reset_after_fin = was_closed;
      }
    }
    if (len > 0) {
      const uint32_t seq_end = p.seq + len;
      if (s.seq_valid && seqBefore(p.seq, s.next_seq)) {
        repeated(++s.retrans, 'T');
      } else {
        letter(kLetD, 'D');
      }
      if (!s.seq_valid || seqBefore(s.next_seq, seq_end)) s.next_seq = seq_end;
      s.seq_valid = true;
    } else if ((f & kAck) && !(f & (kSyn | kFin | kRst))) {
      letter(kLetA, 'A');
    }
    if (p.window == 0 && !(f & kRst)) repeated(++s.zero_win, 'W');
  } else if (p.proto == dataplane::kIpProtoUdp) {
    s.payload_bytes += p.l4_payload_len;
    if (p.l4_payload_len > 0) letter(kLetD, 'D');
  } else if (p.l4_offset > p.l3_offset) {
    // ICMP and other protocols: the bytes after the transport header Zeek would count.
    uint32_t l3_hdr = static_cast<uint32_t>(p.l4_offset - p.l3_offset);
    uint32_t l4_hdr =
        (p.proto == dataplane::kIpProtoIcmp || p.proto == dataplane::kIpProtoIcmpv6) ? 8u : 0u;
    if (p.ip_len > l3_hdr + l4_hdr) s.payload_bytes += p.ip_len - l3_hdr - l4_hdr;
  }
}

std::string_view ConnRecord::connState() const {
  if (proto == dataplane::kIpProtoUdp) {
    if (orig.any) return resp.any ? "SF" : "S0";
    return resp.any ? "SHR" : "OTH";
  }
  if (proto != dataplane::kIpProtoTcp) return "OTH";

  const bool handshake = orig.syn && resp.synack;
  auto state = [&](const ConnSide& s, bool is_orig) {
    if (s.reset) return Ep::kReset;
    if (s.fin) return Ep::kClosed;
    if (handshake) return Ep::kEstablished;
    if (is_orig && s.syn) return Ep::kSynSent;
    if (!is_orig && s.synack) return Ep::kSynAckSent;
    return s.any ? Ep::kPartial : Ep::kInactive;
  };
  const Ep os = state(orig, true);
  const Ep rs = state(resp, false);
  const bool o_inactive = os == Ep::kInactive || os == Ep::kPartial;
  const bool r_inactive = rs == Ep::kInactive || rs == Ep::kPartial;

  if (rs == Ep::kReset) {
    // A reset answer to an attempt (or both sides resetting without any payload) is a rejection.
    if (os == Ep::kSynSent || os == Ep::kSynAckSent ||
        (os == Ep::kReset && !handshake && orig.payload_bytes == 0 && resp.payload_bytes == 0)) {
      return "REJ";
    }
    return o_inactive ? "RSTRH" : "RSTR";
  }
  if (os == Ep::kReset) {
    if (r_inactive) {
      // SYN, then RST, with no SYN-ACK, ACK or FIN from anyone in between.
      bool syn_then_rst = orig.syn && !resp.synack && !resp.any && !orig.fin &&
                          (orig.letters & kLetA) == 0 && (orig.letters & kLetQ) == 0 &&
                          (orig.letters & kLetI) == 0 && (orig.letters & kLetH) == 0;
      return syn_then_rst ? "RSTOS0" : "OTH";
    }
    return "RSTO";
  }
  if (os == Ep::kClosed && rs == Ep::kClosed) return "SF";
  if (os == Ep::kClosed) return r_inactive ? "SH" : "S2";
  if (rs == Ep::kClosed) return o_inactive ? "SHR" : "S3";
  if (os == Ep::kSynSent && rs == Ep::kInactive) return "S0";
  if (os == Ep::kEstablished && rs == Ep::kEstablished) return "S1";
  return "OTH";
}

}  // namespace statewall::sim
