// The fixture table (fixtures.hpp), one scenario family: TCP cases the kernel differential test
// found. Every expectation follows docs/design.md; where it leaves a detail to the TCP tracker, the
// tracker's published transition table (tcpTransitions()) is the reference.
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "engine/fixture_dsl.hpp"
#include "statewall/dataplane/packet_builder.hpp"
#include "statewall/rules/loader.hpp"

namespace statewall::fixtures::dsl {

// ---------------------------------------------------------------------------------------------
// TCP cases the kernel differential test found (tests/kernel/FINDINGS.md, by number).
// ---------------------------------------------------------------------------------------------

void tcpKernelFindings() {
  // Finding 6: handshake packets sent again, byte for byte, with each combination of the
  // window-scale option on the two SYNs. Linux, pf and Open vSwitch accept every one.
  const struct {
    const char* name;
    std::optional<uint8_t> c_ws, s_ws;
  } kScales[] = {{"both", 6, 2}, {"client_only", 6, {}}, {"server_only", {}, 2}, {"none", {}, {}}};
  uint16_t port = 49100;
  for (const auto& sc : kScales) {
    Fx fx(std::string("tcp4_handshake_retransmitted_wscale_") + sc.name,
          "SYN-ACK, SYN and final ACK sent twice (window scale on " + std::string(sc.name) +
              "): each retransmission passes tracked (FINDINGS.md 6)",
          mainPolicy());
    Tcp t(kExt4, port++, kSrv4, 80);
    t.cs().wscale = sc.c_ws;
    t.ss().wscale = sc.s_ws;
    fx.add("C SYN", t.c(kSyn), allowRule(kSrv80, TcpState::kSynSent, kFlagNewConnection));
    const Bytes syn_ack = t.s(kSynAck);
    fx.add("S SYN-ACK", syn_ack, tracked(kSrv80, TcpState::kSynRecv, kFlagReply));
    fx.add("S SYN-ACK again, byte for byte", syn_ack,
           tracked(kSrv80, TcpState::kSynRecv, kFlagReply));
    fx.add("C SYN again (the SYN-ACK was lost)", t.cAt(kSyn, t.cs().isn, 0),
           tracked(kSrv80, TcpState::kSynRecv));
    fx.add("S SYN-ACK a third time", syn_ack, tracked(kSrv80, TcpState::kSynRecv, kFlagReply));
    const Bytes ack = t.c(kAck);
    fx.add("C ACK", ack, tracked(kSrv80, TcpState::kEstablished));
    fx.add("C ACK again (duplicate)", ack, tracked(kSrv80, TcpState::kEstablished));
    fx.add("S SYN-ACK after the handshake (its ACK was lost)", syn_ack,
           tracked(kSrv80, TcpState::kEstablished, kFlagReply));
    fx.add("S data", t.s(kData, 100), tracked(kSrv80, TcpState::kEstablished, kFlagReply));
    fx.add("C data", t.c(kData, 100), tracked(kSrv80, TcpState::kEstablished));
    put(fx);
  }

  // Finding 6 as it really was: a SYN-ACK of the tuple's reuse (a new ISN) whose SYN was never
  // seen. Linux ignores (passes) any SYN-ACK in SYN_RECV; pf and Open vSwitch check it against the
  // window, and so does statewall: deliberate (docs/semantics.md "After a reset, and SYN /
  // SYN-ACK on an open connection").
  {
    Fx fx("tcp4_synack_new_isn_for_unseen_syn",
          "a SYN-ACK with a new ISN acknowledging a SYN never seen is INVALID (FINDINGS.md 6)",
          mainPolicy());
    Tcp t(kExt4, port++, kSrv4, 80);
    t.cs().wscale = 1;
    t.ss().wscale = 6;
    fx.add("C SYN", t.c(kSyn), allowRule(kSrv80, TcpState::kSynSent, kFlagNewConnection));
    fx.add("S SYN-ACK", t.s(kSynAck), tracked(kSrv80, TcpState::kSynRecv, kFlagReply));
    fx.add("S SYN-ACK, ISN 300000 on, acknowledging a SYN 100001 on",
           t.sAt(kSynAck, t.ss().isn + 300000, t.cs().isn + 100002),
           denySg(kSrvOut, TcpState::kSynRecv, kFlagTcpInvalid));
    fx.add("C ACK", t.c(kAck), tracked(kSrv80, TcpState::kEstablished));
    put(fx);
  }

  // Finding 4: a reset before any reply. Linux deletes the entry at once; the next packet of the
  // tuple is a first packet, judged by its own rules.
  {
    Fx fx("tcp4_rst_before_reply_refused",
          "the responder refuses the SYN: the entry goes; later packets are first packets "
          "(FINDINGS.md 4, 1)",
          mainPolicy());
    Tcp t(kExt4, port++, kSrv4, 80);
    fx.add("C SYN", t.c(kSyn), allowRule(kSrv80, TcpState::kSynSent, kFlagNewConnection));
    fx.add("S RST+ACK of the SYN", t.sAt(kRstAck, t.ss().nxt, t.cs().nxt),
           tracked(kSrv80, TcpState::kClose, kFlagConnClosed | kFlagReply));
    fx.add("S ACK: no connection, srv has no outbound rule", t.sAt(kAck, t.ss().nxt, t.cs().nxt),
           denySg(kSrvOut));
    fx.add("S SYN-ACK: no connection", t.sAt(kSynAck, t.ss().isn, t.cs().nxt), denySg(kSrvOut));
    fx.add("C data: a first packet, picked up by srv's inbound rule", t.c(kData, 50),
           allowRule(kSrv80, TcpState::kEstablished, kFlagMidStream | kFlagNewConnection));
    put(fx);
  }
  {
    Fx fx("tcp4_rst_before_reply_from_originator",
          "the originator aborts before any reply: the entry goes; its next SYN opens anew "
          "(FINDINGS.md 4)",
          mainPolicy());
    Tcp t(kExt4, port++, kSrv4, 80);
    fx.add("C SYN", t.c(kSyn), allowRule(kSrv80, TcpState::kSynSent, kFlagNewConnection));
    fx.add("C RST", t.cAt(kRst, t.cs().nxt, 0), tracked(kSrv80, TcpState::kClose, kFlagConnClosed));
    fx.add("S SYN-ACK: no connection", t.s(kSynAck), denySg(kSrvOut));
    fx.add("C SYN again: a new connection, not a reopening", t.cAt(kSyn, t.cs().isn, 0),
           allowRule(kSrv80, TcpState::kSynSent, kFlagNewConnection));
    fx.add("S SYN-ACK", t.sAt(kSynAck, t.ss().isn, t.cs().nxt),
           tracked(kSrv80, TcpState::kSynRecv, kFlagReply));
    put(fx);
  }
  {
    Fx fx("tcp4_rst_before_reply_pickup",
          "a connection picked up mid-stream and reset before any reply: the entry goes "
          "(FINDINGS.md 4)",
          mainPolicy());
    Tcp t(kExt4, port++, kSrv4, 80);
    fx.add("C ACK mid-stream", t.c(kData, 100),
           allowRule(kSrv80, TcpState::kEstablished, kFlagMidStream | kFlagNewConnection));
    fx.add("C RST", t.cAt(kRst, t.cs().nxt, 0), tracked(kSrv80, TcpState::kClose, kFlagConnClosed));
    fx.add("S data: no connection", t.s(kData, 10), denySg(kSrvOut));
    put(fx);
  }
  {
    Fx fx("tcp4_rst_after_reply_keeps_entry",
          "a reset after the responder answered closes the connection but keeps the entry: "
          "stragglers and a late SYN-ACK in the window pass (FINDINGS.md 4, 1)",
          mainPolicy());
    Tcp t(kExt4, port++, kSrv4, 80);
    fx.add("C SYN", t.c(kSyn), allowRule(kSrv80, TcpState::kSynSent, kFlagNewConnection));
    fx.add("S SYN-ACK", t.s(kSynAck), tracked(kSrv80, TcpState::kSynRecv, kFlagReply));
    fx.add("C RST", t.cAt(kRst, t.cs().nxt, 0), tracked(kSrv80, TcpState::kClose, kFlagConnClosed));
    fx.add("S ACK in flight", t.s(kAck), tracked(kSrv80, TcpState::kClose, kFlagReply));
    // Linux ignores (passes) a SYN-ACK on a closed connection; pf and Open vSwitch pass one in
    // the window.
    fx.add("S SYN-ACK again, late", t.sAt(kSynAck, t.ss().isn, t.cs().isn + 1),
           tracked(kSrv80, TcpState::kClose, kFlagReply));
    fx.add("S SYN-ACK 2^30 outside the window: INVALID",
           t.sAt(kSynAck, t.ss().isn + 0x40000000u, t.cs().isn + 1),
           denySg(kSrvOut, TcpState::kClose, kFlagTcpInvalid));
    put(fx);
  }

  // Found by the kernel differential test (seeds 201-400, seed 206): with a responder ISN in the
  // upper half of the sequence space, the originator's first ACK did not set its maxack, so a
  // reset at the sequence the originator had acknowledged was INVALID ("below" it).
  {
    Fx fx("tcp4_rst_at_acknowledged_sequence_high_isn",
          "responder ISN 0xf0000000: a reset at the sequence the client acknowledged closes",
          mainPolicy());
    Tcp t(kExt4, port++, kSrv4, 80, {}, 1000000, 0xf0000000u);
    handshake(fx, t, kSrv80);
    const uint32_t acked = t.ss().nxt;
    fx.add("S data, not acknowledged yet", t.s(kData, 1000),
           tracked(kSrv80, TcpState::kEstablished, kFlagReply));
    fx.add("S RST+ACK at the sequence C acknowledged", t.sAt(kRstAck, acked, t.cs().nxt),
           tracked(kSrv80, TcpState::kClose, kFlagConnClosed | kFlagReply));
    put(fx);
  }

  // Finding 10: the responder's RST in SYN_SENT. Without an ACK any sequence number is taken;
  // with one, the ACK must be inside the SYN's window (bounds III and IV).
  {
    Fx fx("tcp4_bare_rst_refuses_syn",
          "a bare RST (no ACK) answering the SYN closes the attempt, whatever its sequence "
          "(FINDINGS.md 10)",
          mainPolicy());
    Tcp t(kExt4, port++, kSrv4, 80);
    fx.add("C SYN", t.c(kSyn), allowRule(kSrv80, TcpState::kSynSent, kFlagNewConnection));
    fx.add("S RST without ACK, any sequence", t.sAt(kRst, 0x9abcdef0u, 0),
           tracked(kSrv80, TcpState::kClose, kFlagConnClosed | kFlagReply));
    fx.add("C SYN again: a new connection", t.cAt(kSyn, t.cs().isn, 0),
           allowRule(kSrv80, TcpState::kSynSent, kFlagNewConnection));
    fx.add("S RST+ACK acknowledging one short of the SYN (inside its window)",
           t.sAt(kRstAck, 0x12345678u, t.cs().isn),
           tracked(kSrv80, TcpState::kClose, kFlagConnClosed | kFlagReply));
    fx.add("C SYN again", t.cAt(kSyn, t.cs().isn, 0),
           allowRule(kSrv80, TcpState::kSynSent, kFlagNewConnection));
    fx.add("S RST+ACK acknowledging data never sent: INVALID", t.sAt(kRstAck, 0, t.cs().nxt + 1),
           denySg(kSrvOut, TcpState::kSynSent, kFlagTcpInvalid));
    fx.add("S SYN-ACK", t.s(kSynAck), tracked(kSrv80, TcpState::kSynRecv, kFlagReply));
    put(fx);
  }

  // Finding 9: once a connection is over (reset, or closed by FINs) or a FIN is acknowledged,
  // any reset passes and closes (Linux, pf and Open vSwitch); before that, one outside the
  // window stays INVALID.
  {
    Fx fx("tcp4_rst_after_close_any_sequence",
          "a second RST 2^30 outside the window after a reset closed the connection passes "
          "(FINDINGS.md 9)",
          mainPolicy());
    Tcp t(kExt4, port++, kSrv4, 80);
    fx.add("C SYN", t.c(kSyn), allowRule(kSrv80, TcpState::kSynSent, kFlagNewConnection));
    fx.add("S SYN-ACK", t.s(kSynAck), tracked(kSrv80, TcpState::kSynRecv, kFlagReply));
    fx.add("S RST", t.sAt(kRst, t.ss().nxt, 0),
           tracked(kSrv80, TcpState::kClose, kFlagConnClosed | kFlagReply));
    fx.add("S RST+ACK 2^30 away", t.sAt(kRstAck, t.ss().nxt + 0x40000000u, t.cs().nxt + 1335),
           tracked(kSrv80, TcpState::kClose, kFlagReply));
    put(fx);
  }
  {
    Fx fx("tcp4_rst_after_fin_close_any_sequence",
          "after FINs both ways (TIME_WAIT) an RST far outside the window passes and closes "
          "(FINDINGS.md 9)",
          mainPolicy());
    Tcp t(kExt4, port++, kSrv4, 80);
    established(fx, t, kSrv80);
    fx.add("C FIN", t.c(kFinAck), tracked(kSrv80, TcpState::kFinWait));
    fx.add("S FIN+ACK", t.s(kFinAck), tracked(kSrv80, TcpState::kLastAck));
    fx.add("C ACK", t.c(kAck), tracked(kSrv80, TcpState::kTimeWait));
    fx.add("S RST 2^30 away", t.sAt(kRst, t.ss().nxt + 0x40000000u, 0),
           tracked(kSrv80, TcpState::kClose, kFlagConnClosed | kFlagReply));
    put(fx);
  }
  {
    Fx fx("tcp4_rst_half_closed_any_sequence",
          "once a FIN is acknowledged (CLOSE_WAIT) an RST far outside the window passes and "
          "closes; while the FIN is unacknowledged (FIN_WAIT) it is INVALID (FINDINGS.md 9)",
          mainPolicy());
    Tcp t(kExt4, port++, kSrv4, 80);
    established(fx, t, kSrv80);
    fx.add("C FIN", t.c(kFinAck), tracked(kSrv80, TcpState::kFinWait));
    fx.add("S RST 2^30 away while the FIN is unacknowledged",
           t.sAt(kRst, t.ss().nxt + 0x40000000u, 0),
           denySg(kSrvOut, TcpState::kFinWait, kFlagTcpInvalid));
    fx.add("S ACK of the FIN", t.s(kAck), tracked(kSrv80, TcpState::kCloseWait, kFlagReply));
    fx.add("S RST 2^30 away", t.sAt(kRst, t.ss().nxt + 0x40000000u, 0),
           tracked(kSrv80, TcpState::kClose, kFlagConnClosed | kFlagReply));
    put(fx);
  }
}

}  // namespace statewall::fixtures::dsl
