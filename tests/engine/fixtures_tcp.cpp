// The fixture table (fixtures.hpp), one scenario family: TCP scenarios written by hand: handshakes,
// data, closes, resets, retransmissions, window checks, strict mode. Every expectation follows
// docs/design.md; where it leaves a detail to the TCP tracker, the tracker's published transition
// table (tcpTransitions()) is the reference.
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
// TCP scenarios written by hand.
// ---------------------------------------------------------------------------------------------

void tcpBasics() {
  {
    Fx fx("tcp4_full_lifecycle", "handshake, data both ways, C closes first, four-way close",
          mainPolicy());
    Tcp t(kExt4, 40000, kSrv4, 80);
    established(fx, t, kSrv80);
    fx.add("C FIN", t.c(kFinAck), tracked(kSrv80, TcpState::kFinWait));
    fx.add("S ACK of the FIN", t.s(kAck), tracked(kSrv80, TcpState::kCloseWait, kFlagReply));
    fx.add("S data while half-closed", t.s(kData, 50), tracked(kSrv80, TcpState::kCloseWait));
    fx.add("C ACK of the data", t.c(kAck), tracked(kSrv80, TcpState::kCloseWait));
    fx.add("S FIN", t.s(kFinAck), tracked(kSrv80, TcpState::kLastAck));
    fx.add("C ACK of the last FIN", t.c(kAck),
           tracked(kSrv80, TcpState::kTimeWait, kFlagConnClosed));
    put(fx);
  }
  {
    Fx fx("tcp4_server_closes_first", "the responder sends the first FIN", mainPolicy());
    Tcp t(kExt4, 40001, kSrv4, 80);
    established(fx, t, kSrv80);
    fx.add("S FIN", t.s(kFinAck), tracked(kSrv80, TcpState::kFinWait, kFlagReply));
    fx.add("C ACK of the FIN", t.c(kAck), tracked(kSrv80, TcpState::kCloseWait));
    fx.add("C FIN", t.c(kFinAck), tracked(kSrv80, TcpState::kLastAck));
    fx.add("S ACK of the last FIN", t.s(kAck),
           tracked(kSrv80, TcpState::kTimeWait, kFlagConnClosed));
    put(fx);
  }
  {
    Fx fx("tcp4_three_way_close", "C FIN, S FIN+ACK acknowledging it, C ACK", mainPolicy());
    Tcp t(kExt4, 40002, kSrv4, 80);
    established(fx, t, kSrv80);
    fx.add("C FIN", t.c(kFinAck), tracked(kSrv80, TcpState::kFinWait));
    fx.add("S FIN acknowledging C's FIN", t.s(kFinAck), tracked(kSrv80, TcpState::kLastAck));
    fx.add("C ACK", t.c(kAck), tracked(kSrv80, TcpState::kTimeWait, kFlagConnClosed));
    put(fx);
  }
  {
    Fx fx("tcp4_simultaneous_close", "both FINs cross on the wire, then both ACKs", mainPolicy());
    Tcp t(kExt4, 40003, kSrv4, 80);
    established(fx, t, kSrv80);
    const uint32_t c_fin = t.cs().nxt;
    fx.add("C FIN", t.c(kFinAck), tracked(kSrv80, TcpState::kFinWait));
    // S has not seen C's FIN yet: its FIN acknowledges only C's data.
    const uint32_t s_fin = t.ss().nxt;
    fx.add("S FIN, not acknowledging C's FIN", t.sAt(kFinAck, s_fin, c_fin),
           tracked(kSrv80, TcpState::kLastAck));
    t.ss().nxt = s_fin + 1;
    fx.add("C ACK of S's FIN", t.cAt(kAck, c_fin + 1, s_fin + 1),
           tracked(kSrv80, TcpState::kTimeWait));
    fx.add("S ACK of C's FIN", t.sAt(kAck, s_fin + 1, c_fin + 1),
           tracked(kSrv80, TcpState::kTimeWait));
    put(fx);
  }
  {
    Fx fx("tcp4_retransmissions", "retransmitted SYN and SYN-ACK keep the opening states",
          mainPolicy());
    Tcp t(kExt4, 40004, kSrv4, 80);
    fx.add("C SYN", t.c(kSyn), allowRule(kSrv80, TcpState::kSynSent, kFlagNewConnection));
    fx.wait(1);
    fx.add("C SYN again", t.cAt(kSyn, t.cs().isn, 0), tracked(kSrv80, TcpState::kSynSent));
    fx.add("S SYN-ACK", t.s(kSynAck), tracked(kSrv80, TcpState::kSynRecv, kFlagReply));
    fx.wait(1);
    fx.add("S SYN-ACK again", t.sAt(kSynAck, t.ss().isn, t.cs().nxt),
           tracked(kSrv80, TcpState::kSynRecv, kFlagReply));
    fx.add("C ACK", t.c(kAck), tracked(kSrv80, TcpState::kEstablished));
    fx.add("C data", t.c(kData, 300), tracked(kSrv80, TcpState::kEstablished));
    fx.add("C data retransmitted", t.cAt(kData, t.cs().nxt - 300, t.ss().nxt, 300),
           tracked(kSrv80, TcpState::kEstablished));
    put(fx);
  }
  {
    Fx fx("tcp4_simultaneous_open", "both sides send a SYN; SYN-ACKs cross", mainPolicy());
    Tcp t(kExt4, 40005, kSrv4, 80);
    fx.add("C SYN", t.c(kSyn), allowRule(kSrv80, TcpState::kSynSent, kFlagNewConnection));
    // S's own SYN is a reply of the tracked connection: it passes although srv has no outbound
    // rules.
    fx.add("S SYN", t.s(kSyn), tracked(kSrv80, TcpState::kSynSent2, kFlagReply));
    fx.add("C SYN-ACK", t.cAt(kSynAck, t.cs().isn, t.ss().nxt),
           tracked(kSrv80, TcpState::kSynRecv));
    fx.add("S SYN-ACK", t.sAt(kSynAck, t.ss().isn, t.cs().nxt),
           tracked(kSrv80, TcpState::kEstablished, kFlagReply));
    fx.add("C data", t.c(kData, 10), tracked(kSrv80, TcpState::kEstablished));
    fx.add("S data", t.s(kData, 10), tracked(kSrv80, TcpState::kEstablished));
    put(fx);
  }
  {
    Fx fx("tcp4_time_wait_reopen",
          "a new SYN on the same ports reopens a TIME_WAIT connection (a new connection: its own "
          "rules decide)",
          mainPolicy());
    Tcp t(kExt4, 40006, kSrv4, 80);
    established(fx, t, kSrv80);
    fx.add("C FIN", t.c(kFinAck), tracked(kSrv80, TcpState::kFinWait));
    fx.add("S FIN+ACK", t.s(kFinAck), tracked(kSrv80, TcpState::kLastAck));
    fx.add("C ACK", t.c(kAck), tracked(kSrv80, TcpState::kTimeWait));
    fx.wait(2);
    Tcp t2(kExt4, 40006, kSrv4, 80, {}, 90000000, 95000000);
    fx.add("C SYN with a new ISN", t2.c(kSyn),
           allowRule(kSrv80, TcpState::kSynSent, kFlagReopened));
    fx.add("S SYN-ACK", t2.s(kSynAck), tracked(kSrv80, TcpState::kSynRecv, kFlagReply));
    fx.add("C ACK", t2.c(kAck), tracked(kSrv80, TcpState::kEstablished));
    fx.add("S data", t2.s(kData, 64), tracked(kSrv80, TcpState::kEstablished));
    put(fx);
  }
  {
    Fx fx("tcp4_time_wait_reopen_by_responder_denied",
          "the former responder's SYN would open a new connection, which srv's (empty) "
          "outbound rules do not allow",
          mainPolicy());
    Tcp t(kExt4, 40007, kSrv4, 80);
    established(fx, t, kSrv80);
    fx.add("C FIN", t.c(kFinAck), tracked(kSrv80, TcpState::kFinWait));
    fx.add("S FIN+ACK", t.s(kFinAck), tracked(kSrv80, TcpState::kLastAck));
    fx.add("C ACK", t.c(kAck), tracked(kSrv80, TcpState::kTimeWait));
    fx.add("S SYN from port 80 to C's port", t.sAt(kSyn, 123456, 0), denySg(kSrvOut));
    put(fx);
  }
  {
    Fx fx("tcp4_reopen_role_swap",
          "after TIME_WAIT the former responder opens the connection again; both sides allow it",
          kPeerPolicy);
    Tcp t("10.0.5.1", 5000, "10.0.5.2", 6000);
    established(fx, t, kPeerRule);
    fx.add("C FIN", t.c(kFinAck), tracked(kPeerRule, TcpState::kFinWait));
    fx.add("S FIN+ACK", t.s(kFinAck), tracked(kPeerRule, TcpState::kLastAck));
    fx.add("C ACK", t.c(kAck), tracked(kPeerRule, TcpState::kTimeWait));
    Tcp r("10.0.5.2", 6000, "10.0.5.1", 5000, {}, 50000000, 60000000);
    fx.add("former S opens: SYN", r.c(kSyn),
           allowRule(kPeerRule, TcpState::kSynSent, kFlagReopened));
    fx.add("former C answers: SYN-ACK", r.s(kSynAck),
           tracked(kPeerRule, TcpState::kSynRecv, kFlagReply));
    fx.add("ACK", r.c(kAck), tracked(kPeerRule, TcpState::kEstablished));
    put(fx);
  }
  {
    Fx fx("tcp4_rst_from_server", "an exact RST from the responder closes; stragglers in window",
          mainPolicy());
    Tcp t(kExt4, 40010, kSrv4, 80);
    established(fx, t, kSrv80);
    fx.add("S RST at its next sequence", t.sAt(kRstAck, t.ss().nxt, t.cs().nxt),
           tracked(kSrv80, TcpState::kClose, kFlagConnClosed | kFlagReply));
    fx.add("C data after CLOSE (in flight)", t.c(kData, 100), tracked(kSrv80, TcpState::kClose));
    fx.add("S data after CLOSE", t.s(kData, 10), tracked(kSrv80, TcpState::kClose));
    put(fx);
  }
  {
    Fx fx("tcp4_rst_from_client", "an exact RST from the originator closes the connection",
          mainPolicy());
    Tcp t(kExt4, 40011, kSrv4, 80);
    established(fx, t, kSrv80);
    fx.add("C RST", t.cAt(kRst, t.cs().nxt, 0), tracked(kSrv80, TcpState::kClose, kFlagConnClosed));
    fx.add("S data in flight", t.s(kData, 100), tracked(kSrv80, TcpState::kClose));
    put(fx);
  }
  {
    Fx fx("tcp4_rst_out_of_window_from_server",
          "an RST far outside the window is INVALID and gets no help: srv has no outbound rule",
          mainPolicy());
    Tcp t(kExt4, 40012, kSrv4, 80);
    established(fx, t, kSrv80);
    fx.add("S RST 1e9 past its sequence", t.sAt(kRst, t.ss().nxt + 1000000000u, 0),
           denySg(kSrvOut, TcpState::kEstablished, kFlagTcpInvalid));
    fx.add("S data: the connection is still open", t.s(kData, 10),
           tracked(kSrv80, TcpState::kEstablished));
    put(fx);
  }
  {
    Fx fx("tcp4_rst_out_of_window_from_client",
          "an INVALID RST from the originator passes only by its own rule (srv allows port 80), "
          "and does not close the connection",
          mainPolicy());
    Tcp t(kExt4, 40013, kSrv4, 80);
    established(fx, t, kSrv80);
    fx.add("C RST 1e9 past its sequence", t.cAt(kRst, t.cs().nxt + 1000000000u, 0),
           allowRule(kSrv80, TcpState::kEstablished, kFlagTcpInvalid));
    fx.add("S data: still open", t.s(kData, 10), tracked(kSrv80, TcpState::kEstablished));
    put(fx);
  }
  {
    Fx fx("tcp4_rst_in_window_not_exact",
          "an RST inside the window but not at the expected sequence passes without closing "
          "(RFC 5961 challenge ACK)",
          mainPolicy());
    Tcp t(kExt4, 40014, kSrv4, 80);
    established(fx, t, kSrv80);
    fx.add("S RST 1000 bytes ahead", t.sAt(kRst, t.ss().nxt + 1000, 0),
           tracked(kSrv80, TcpState::kEstablished, kFlagReply));
    fx.add("C challenge ACK", t.c(kAck), tracked(kSrv80, TcpState::kEstablished));
    fx.add("S data", t.s(kData, 10), tracked(kSrv80, TcpState::kEstablished));
    put(fx);
  }
  {
    Fx fx("tcp4_rst_refuses_syn",
          "the responder refuses the SYN with RST+ACK; a new SYN on the same ports opens anew",
          mainPolicy());
    Tcp t(kExt4, 40015, kSrv4, 80);
    fx.add("C SYN", t.c(kSyn), allowRule(kSrv80, TcpState::kSynSent, kFlagNewConnection));
    fx.add("S RST+ACK of the SYN", t.sAt(kRstAck, 0, t.cs().nxt),
           tracked(kSrv80, TcpState::kClose, kFlagConnClosed | kFlagReply));
    fx.wait(1);
    Tcp t2(kExt4, 40015, kSrv4, 80, {}, 2000000, 3000000);
    // The reset came before any reply: the entry went with it (docs/semantics.md "After a
    // reset"), so this SYN opens a new connection rather than reopening one.
    fx.add("C SYN again, new ISN", t2.c(kSyn),
           allowRule(kSrv80, TcpState::kSynSent, kFlagNewConnection));
    put(fx);
  }
  {
    Fx fx("tcp4_rst_in_syn_sent_bad_ack",
          "an RST+ACK in SYN_SENT acknowledging data never sent is INVALID (blind reset)",
          mainPolicy());
    Tcp t(kExt4, 40016, kSrv4, 80);
    fx.add("C SYN", t.c(kSyn), allowRule(kSrv80, TcpState::kSynSent, kFlagNewConnection));
    fx.add("S RST+ACK with a wrong ack", t.sAt(kRstAck, 0, t.cs().nxt + 5000),
           denySg(kSrvOut, TcpState::kSynSent, kFlagTcpInvalid));
    fx.add("S SYN-ACK", t.s(kSynAck), tracked(kSrv80, TcpState::kSynRecv));
    put(fx);
  }
  {
    Fx fx("tcp4_window_violations",
          "van Rooij checks: INVALID packets pass only by their own rules (default mode)",
          mainPolicy());
    Tcp t(kExt4, 40017, kSrv4, 80);
    established(fx, t, kSrv80);
    fx.add("S data 200000 bytes beyond C's window",
           t.sAt(kData, t.ss().nxt + 200000, t.cs().nxt, 100),
           denySg(kSrvOut, TcpState::kEstablished, kFlagTcpInvalid));
    fx.add("S ACK of data C never sent", t.sAt(kAck, t.ss().nxt, t.cs().nxt + 100000),
           denySg(kSrvOut, TcpState::kEstablished, kFlagTcpInvalid));
    fx.add("C data 200000 bytes beyond S's window",
           t.cAt(kData, t.cs().nxt + 200000, t.ss().nxt, 100),
           allowRule(kSrv80, TcpState::kEstablished, kFlagTcpInvalid));
    fx.add("C data far behind (older than a window)",
           t.cAt(kData, t.cs().nxt - 500000, t.ss().nxt, 100),
           allowRule(kSrv80, TcpState::kEstablished, kFlagTcpInvalid));
    fx.add("S in-window data still tracked", t.s(kData, 100),
           tracked(kSrv80, TcpState::kEstablished));
    put(fx);
  }
  {
    Fx fx("tcp4_data_after_fin",
          "in-window data beyond the sender's own FIN is judged by the window alone, as Linux, pf "
          "and Open vSwitch do (docs/semantics.md)",
          mainPolicy());
    Tcp t(kExt4, 40018, kSrv4, 80);
    established(fx, t, kSrv80);
    fx.add("S FIN", t.s(kFinAck), tracked(kSrv80, TcpState::kFinWait));
    fx.add("S data after its FIN", t.sAt(kData, t.ss().nxt, t.cs().nxt, 100),
           tracked(kSrv80, TcpState::kFinWait, kFlagReply));
    fx.add("C FIN", t.c(kFinAck), tracked(kSrv80, TcpState::kLastAck));
    fx.add("C data after its FIN", t.cAt(kData, t.cs().nxt, t.ss().nxt, 100),
           tracked(kSrv80, TcpState::kLastAck));
    fx.add("S data after its FIN, beyond C's window",
           t.sAt(kData, t.ss().nxt + 1000000, t.cs().nxt, 100),
           denySg(kSrvOut, TcpState::kLastAck, kFlagTcpInvalid));
    put(fx);
  }
  {
    Fx fx("tcp4_bad_flags", "flag combinations no stack sends are INVALID", mainPolicy());
    Tcp t(kExt4, 40019, kSrv4, 80);
    established(fx, t, kSrv80);
    fx.add("C SYN+FIN", t.cAt(kSyn | kFin, t.cs().nxt, 0),
           allowRule(kSrv80, TcpState::kEstablished, kFlagTcpInvalid));
    fx.add("S SYN+RST", t.sAt(kSyn | kRst, t.ss().nxt, 0),
           denySg(kSrvOut, TcpState::kEstablished, kFlagTcpInvalid));
    fx.add("S FIN without ACK", t.sAt(kFin, t.ss().nxt, 0),
           denySg(kSrvOut, TcpState::kEstablished, kFlagTcpInvalid));
    fx.add("C no flags", t.cAt(0, t.cs().nxt, 0),
           allowRule(kSrv80, TcpState::kEstablished, kFlagTcpInvalid));
    fx.add("S data still fine", t.s(kData, 10), tracked(kSrv80, TcpState::kEstablished));
    put(fx);
  }
  {
    Fx fx("tcp4_scans_without_connection",
          "first packets that cannot open a connection are INVALID; they pass only where the "
          "rules allow them",
          mainPolicy());
    Tcp t(kExt4, 40020, kSrv4, 80);
    fx.add("NULL scan to port 80", t.cAt(0, 1, 0), allowRule(kSrv80, kAnyState, kFlagTcpInvalid));
    fx.add("FIN+ACK to port 80", t.cAt(kFinAck, 1, 1),
           allowRule(kSrv80, kAnyState, kFlagTcpInvalid));
    Tcp u(kExt4, 40021, kSrv4, 81);
    fx.add("Xmas scan to port 81", u.cAt(kFin | kPsh | kUrg, 1, 0),
           denySg(kSrvIn).dontCare(kFlagTcpInvalid));
    fx.add("SYN to port 81", u.c(kSyn), denySg(kSrvIn));
    put(fx);
  }
  {
    Fx fx("tcp4_scan_then_connect",
          "a scan packet that cannot open a connection leaves nothing behind: a real handshake on "
          "the same ports afterwards works normally",
          mainPolicy());
    Tcp t(kExt4, 40022, kSrv4, 80);
    fx.add("NULL scan", t.cAt(0, 1, 0), allowRule(kSrv80, kAnyState, kFlagTcpInvalid));
    fx.add("SYN+ACK probe", t.cAt(kSynAck, 5, 9), allowRule(kSrv80, kAnyState, kFlagTcpInvalid));
    fx.add("RST probe", t.cAt(kRst, 77, 0), allowRule(kSrv80, kAnyState, kFlagTcpInvalid));
    established(fx, t, kSrv80);
    put(fx);
  }
  {
    Fx fx("tcp4_mid_stream_pickup",
          "a non-SYN first packet creates a loose entry where its own rules allow it",
          mainPolicy());
    Tcp t(kExt4, 40030, kSrv4, 80);
    fx.add("C data, no handshake seen", t.c(kData, 100),
           allowRule(kSrv80, TcpState::kEstablished, kFlagMidStream | kFlagNewConnection));
    fx.add("S data", t.s(kData, 100), tracked(kSrv80, TcpState::kEstablished, kFlagReply));
    fx.add("C ACK", t.c(kAck), tracked(kSrv80, TcpState::kEstablished));
    fx.add("S FIN", t.s(kFinAck), tracked(kSrv80, TcpState::kFinWait));
    put(fx);
  }
  {
    Fx fx("tcp4_mid_stream_not_allowed",
          "no pickup where the packet's own rules deny it: srv cannot start a flow, port 81 is "
          "closed",
          mainPolicy());
    Tcp t(kExt4, 40031, kSrv4, 80);
    fx.add("S data first", t.s(kData, 100), denySg(kSrvOut));
    fx.add("C data afterwards picks up", t.c(kData, 100),
           allowRule(kSrv80, TcpState::kEstablished, kFlagMidStream));
    Tcp u(kExt4, 40032, kSrv4, 81);
    fx.add("C data to port 81", u.c(kData, 100), denySg(kSrvIn));
    fx.add("S reply from port 81", u.s(kData, 100), denySg(kSrvOut));
    put(fx);
  }
  {
    Fx fx("tcp4_port_denied", "a SYN to a port no rule opens, and the server's RST", mainPolicy());
    Tcp t(kExt4, 40033, kSrv4, 22);
    fx.add("C SYN to 22", t.c(kSyn), denySg(kSrvIn));
    fx.add("S RST+ACK", t.sAt(kRstAck, 0, t.cs().nxt), denySg(kSrvOut));
    put(fx);
  }
  {
    Fx fx("tcp4_window_scaling",
          "window scale 7 on both SYNs: segments within the scaled window are valid", mainPolicy());
    Tcp t(kExt4, 40034, kSrv4, 80);
    t.cs().wscale = 7;
    t.ss().wscale = 7;
    fx.add("C SYN, wscale 7", t.c(kSyn), allowRule(kSrv80, TcpState::kSynSent));
    fx.add("S SYN-ACK, wscale 7", t.s(kSynAck), tracked(kSrv80, TcpState::kSynRecv));
    // From now on windows are scaled: 2048 << 7 = 256 KiB.
    t.cs().win = 2048;
    t.ss().win = 2048;
    fx.add("C ACK announcing a scaled window", t.c(kAck), tracked(kSrv80, TcpState::kEstablished));
    fx.add("S ACK announcing a scaled window", t.s(kAck), tracked(kSrv80, TcpState::kEstablished));
    // 100 KB beyond the last acknowledged byte: inside 256 KiB, outside an unscaled 64 KiB.
    const uint32_t ahead = t.ss().nxt + 100000;
    fx.add("S segment 100 KB ahead (reordered)", t.sAt(kData, ahead, t.cs().nxt, 1000),
           tracked(kSrv80, TcpState::kEstablished));
    fx.add("S segment 400 KB ahead", t.sAt(kData, t.ss().nxt + 400000, t.cs().nxt, 1000),
           denySg(kSrvOut, TcpState::kEstablished, kFlagTcpInvalid));
    put(fx);
  }
  {
    Fx fx("tcp4_client_outbound", "cli opens a connection by its outbound rule; replies tracked",
          mainPolicy());
    Tcp t(kCli4, 50000, kExt4, 443);
    established(fx, t, kCliOut);
    Tcp in(kExt4, 50001, kCli4, 22);
    fx.add("unsolicited SYN to cli", in.c(kSyn), denySg(kCliIn));
    put(fx);
  }
  {
    Fx fx("tcp4_both_sides_protected",
          "cli-1 to srv-1: both sides allow it; the verdict names the receiving side's rule",
          mainPolicy());
    Tcp t(kCli4, 50002, kSrv4, 80);
    established(fx, t, kSrv80);
    Tcp back(kSrv4, 50003, kCli4, 80);
    fx.add("srv-1 SYN to cli-1: its own outbound rules deny first", back.c(kSyn), denySg(kSrvOut));
    put(fx);
  }
  {
    Fx fx("tcp6_lifecycle", "IPv6 with window scaling, SACK-permitted and timestamps",
          mainPolicy());
    Tcp t(kExt6, 41000, kSrv6, 80);
    t.cs().wscale = 8;
    t.ss().wscale = 6;
    established(fx, t, kSrv80);
    fx.add("C FIN", t.c(kFinAck), tracked(kSrv80, TcpState::kFinWait));
    fx.add("S FIN+ACK", t.s(kFinAck), tracked(kSrv80, TcpState::kLastAck));
    fx.add("C ACK", t.c(kAck), tracked(kSrv80, TcpState::kTimeWait, kFlagConnClosed));
    Tcp u(kExt6, 41001, kSrv6, 25);
    fx.add("SYN to a closed v6 port", u.c(kSyn), denySg(kSrvIn));
    fx.add("S v6 data with no connection", u.s(kData, 10), denySg(kSrvOut));
    put(fx);
  }
  {
    Fx fx("tcp4_established_aws_idle", "AWS profile: an established connection idles 5 days",
          mainPolicy());
    Tcp t(kExt4, 40040, kSrv4, 80);
    established(fx, t, kSrv80);
    fx.wait(431000);
    fx.add("S data after 431000 s idle", t.s(kData, 10), tracked(kSrv80, TcpState::kEstablished));
    fx.wait(432001);
    fx.add("S data after 432001 s idle", t.s(kData, 10), denySg(kSrvOut));
    put(fx);
  }
}

// Strict mode: INVALID packets are denied even where rules allow them.
void strictMode() {
  const std::string strict = mainPolicy("strict: true\n");
  {
    Fx fx("strict_window_violation", "strict: out-of-window data is deny-invalid", strict);
    Tcp t(kExt4, 42000, kSrv4, 80);
    established(fx, t, kSrv80);
    fx.add("C data far beyond the window", t.cAt(kData, t.cs().nxt + 300000, t.ss().nxt, 100),
           denyInvalid(TcpState::kEstablished));
    fx.add("C RST out of window", t.cAt(kRst, t.cs().nxt + 1000000000u, 0),
           denyInvalid(TcpState::kEstablished));
    fx.add("C in-window data", t.c(kData, 100), tracked(kSrv80, TcpState::kEstablished));
    fx.add("S in-window data", t.s(kData, 100), tracked(kSrv80, TcpState::kEstablished));
    put(fx);
  }
  {
    Fx fx("strict_bad_flags", "strict: bad flag combinations are deny-invalid", strict);
    Tcp t(kExt4, 42001, kSrv4, 80);
    established(fx, t, kSrv80);
    fx.add("C SYN+FIN", t.cAt(kSyn | kFin, t.cs().nxt, 0), denyInvalid(TcpState::kEstablished));
    fx.add("C FIN without ACK", t.cAt(kFin, t.cs().nxt, 0), denyInvalid(TcpState::kEstablished));
    fx.add("C close, properly", t.c(kFinAck), tracked(kSrv80, TcpState::kFinWait));
    put(fx);
  }
  {
    Fx fx("strict_first_packet_invalid",
          "strict: a first packet that cannot open a connection is deny-invalid", strict);
    Tcp t(kExt4, 42002, kSrv4, 80);
    fx.add("NULL scan to port 80", t.cAt(0, 1, 0), denyInvalid());
    fx.add("SYN+FIN to port 80", t.cAt(kSyn | kFin, 1, 0), denyInvalid());
    fx.add("a proper SYN", t.c(kSyn), allowRule(kSrv80, TcpState::kSynSent, kFlagNewConnection));
    put(fx);
  }
}

}  // namespace statewall::fixtures::dsl
