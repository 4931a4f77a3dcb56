// The fixture table. Every expectation below follows docs/design.md; where docs/design.md leaves a
// detail to the TCP tracker (which transition a segment takes), the tracker's published transition
// table (tcpTransitions()) is the reference. Comments name the rule of docs/design.md a fixture
// exercises.
#include "fixtures.hpp"

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <set>
#include <utility>

#include "engine/fixture_dsl.hpp"
#include "statewall/dataplane/packet_builder.hpp"
#include "statewall/rules/loader.hpp"

namespace statewall::fixtures {
namespace dsl {

namespace {
std::vector<Fixture>* g_table = nullptr;
}  // namespace

void put(Fx& fx) {
  g_table->push_back(fx.take());
}

}  // namespace dsl

namespace {

using namespace dsl;

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

// ---------------------------------------------------------------------------------------------
// UDP, ICMP, other protocols.
// ---------------------------------------------------------------------------------------------

void udpIcmpOther() {
  const std::string p = mainPolicy();
  {
    Fx fx("udp4_request_response", "a request opens, the response is tracked", p);
    fx.add("request", udp(kExt4, 5353, kSrv4, 53),
           allowRule(kSrv53, kAnyState, kFlagNewConnection));
    fx.add("response", udp(kSrv4, 53, kExt4, 5353), tracked(kSrv53, kAnyState, kFlagReply));
    fx.wait(5);
    fx.add("second request", udp(kExt4, 5353, kSrv4, 53), tracked(kSrv53));
    fx.add("response from another port", udp(kSrv4, 54, kExt4, 5353), denySg(kSrvOut));
    fx.add("request to a closed port", udp(kExt4, 5353, kSrv4, 54), denySg(kSrvIn));
    put(fx);
  }
  {
    Fx fx("udp4_timeout",
          "one request and one response: the UDP timeout (AWS 30 s) applies, not the stream one",
          p);
    fx.add("request A", udp(kExt4, 5354, kSrv4, 53), allowRule(kSrv53));
    fx.add("response A", udp(kSrv4, 53, kExt4, 5354), tracked(kSrv53));
    fx.add("request B", udp(kExt4, 5357, kSrv4, 53), allowRule(kSrv53));
    fx.add("response B", udp(kSrv4, 53, kExt4, 5357), tracked(kSrv53));
    fx.wait(29);
    fx.add("late response A after 29 s", udp(kSrv4, 53, kExt4, 5354), tracked(kSrv53));
    fx.wait(2);
    fx.add("response B after 31 s idle", udp(kSrv4, 53, kExt4, 5357), denySg(kSrvOut));
    put(fx);
  }
  {
    Fx fx("udp4_one_way_then_new", "a request nobody answers expires; the next opens anew", p);
    fx.add("request", udp(kExt4, 5355, kSrv4, 53),
           allowRule(kSrv53, kAnyState, kFlagNewConnection));
    fx.wait(31);
    fx.add("request after 31 s", udp(kExt4, 5355, kSrv4, 53),
           allowRule(kSrv53, kAnyState, kFlagNewConnection));
    fx.add("response", udp(kSrv4, 53, kExt4, 5355), tracked(kSrv53));
    put(fx);
  }
  {
    Fx fx("udp4_stream", "several exchanges make a stream: the 180 s UDP stream timeout", p);
    fx.add("request 1", udp(kExt4, 5356, kSrv4, 53), allowRule(kSrv53));
    for (int i = 0; i < 3; ++i) {
      fx.add("response", udp(kSrv4, 53, kExt4, 5356), tracked(kSrv53));
      fx.wait(1);
      fx.add("request", udp(kExt4, 5356, kSrv4, 53), tracked(kSrv53));
    }
    fx.add("response", udp(kSrv4, 53, kExt4, 5356), tracked(kSrv53));
    fx.wait(170);
    fx.add("response after 170 s idle", udp(kSrv4, 53, kExt4, 5356), tracked(kSrv53));
    fx.wait(181);
    fx.add("response after 181 s idle", udp(kSrv4, 53, kExt4, 5356), denySg(kSrvOut));
    put(fx);
  }
  {
    Fx fx("udp6_request_response", "UDP over IPv6", p);
    fx.add("request", udp(kExt6, 6000, kSrv6, 53),
           allowRule(kSrv53, kAnyState, kFlagNewConnection));
    fx.add("response", udp(kSrv6, 53, kExt6, 6000), tracked(kSrv53, kAnyState, kFlagReply));
    fx.add("request to port 54", udp(kExt6, 6000, kSrv6, 54), denySg(kSrvIn));
    fx.wait(31);
    fx.add("response after 31 s", udp(kSrv6, 53, kExt6, 6000), denySg(kSrvOut));
    put(fx);
  }
  {
    Fx fx("icmp4_echo", "echo request/reply tracked by identifier", p);
    fx.add("echo request", echo(kExt4, kSrv4, 0x1234, false),
           allowRule(kSrvPing, kAnyState, kFlagNewConnection));
    fx.add("echo reply", echo(kSrv4, kExt4, 0x1234, true),
           tracked(kSrvPing, kAnyState, kFlagReply));
    fx.add("echo reply with another id", echo(kSrv4, kExt4, 0x9999, true), denySg(kSrvOut));
    fx.add("echo request with another id", echo(kExt4, kSrv4, 0x4321, false, 1),
           allowRule(kSrvPing));
    fx.add("its reply", echo(kSrv4, kExt4, 0x4321, true), tracked(kSrvPing));
    fx.add("srv pings out", echo(kSrv4, kExt4, 0x5555, false), denySg(kSrvOut));
    fx.add("unsolicited echo reply to srv", echo(kExt4, kSrv4, 0x6666, true), denySg(kSrvIn));
    put(fx);
  }
  {
    Fx fx("icmp4_echo_timeout", "ICMP idle timeout 30 s", p);
    fx.add("echo request", echo(kExt4, kSrv4, 0x0101, false), allowRule(kSrvPing));
    fx.wait(29);
    fx.add("reply after 29 s", echo(kSrv4, kExt4, 0x0101, true), tracked(kSrvPing));
    fx.wait(31);
    fx.add("reply after 31 s idle", echo(kSrv4, kExt4, 0x0101, true), denySg(kSrvOut));
    put(fx);
  }
  {
    Fx fx("icmp6_echo", "ICMPv6 echo request/reply", p);
    fx.add("echo request", echo(kExt6, kSrv6, 0x0042, false),
           allowRule(kSrvPing6, kAnyState, kFlagNewConnection));
    fx.add("echo reply", echo(kSrv6, kExt6, 0x0042, true),
           tracked(kSrvPing6, kAnyState, kFlagReply));
    fx.add("echo reply, wrong id", echo(kSrv6, kExt6, 0x0043, true), denySg(kSrvOut));
    put(fx);
  }
  {
    Fx fx("other_proto_gre", "protocol 47 by address pair: a reply within 600 s passes", p);
    fx.add("GRE in", other(kExt4, kSrv4, 47), allowRule(kSrvGre, kAnyState, kFlagNewConnection));
    fx.wait(599);
    fx.add("GRE reply after 599 s", other(kSrv4, kExt4, 47),
           tracked(kSrvGre, kAnyState, kFlagReply));
    fx.wait(601);
    fx.add("GRE reply after 601 s idle", other(kSrv4, kExt4, 47), denySg(kSrvOut));
    fx.add("GRE to srv from another host", other(kExt4b, kSrv4, 47), allowRule(kSrvGre));
    fx.add("GRE from srv to a third host", other(kSrv4, "198.51.100.9", 47), denySg(kSrvOut));
    put(fx);
  }
  {
    Fx fx("other_proto_sctp6", "protocol 132 over IPv6", p);
    fx.add("SCTP in", other(kExt6, kSrv6, 132), allowRule(kSrvSctp, kAnyState, kFlagNewConnection));
    fx.wait(300);
    fx.add("SCTP reply", other(kSrv6, kExt6, 132), tracked(kSrvSctp, kAnyState, kFlagReply));
    fx.add("SCTP over IPv4 (rule is ::/0 only)", other(kExt4, kSrv4, 132), denySg(kSrvIn));
    fx.add("protocol 50 (ESP) to srv", other(kExt4, kSrv4, 50), denySg(kSrvIn));
    put(fx);
  }
}

// ICMP errors quoting a tracked connection are RELATED.
void icmpErrors() {
  const std::string p = mainPolicy();
  {
    Fx fx("icmp4_error_tcp_related",
          "time exceeded and frag-needed quoting a tracked TCP connection", p);
    Tcp t(kExt4, 43000, kSrv4, 80);
    established(fx, t, kSrv80);
    fx.add(
        "router -> srv: time exceeded about srv's reply",
        icmpError(kRouter4, kSrv4, kIcmpTimeExceeded, 0, t.sIp(kData, t.ss().nxt, t.cs().nxt, 100)),
        related(kSrv80));
    fx.add("srv -> C: frag needed about C's data",
           icmpError(kSrv4, kExt4, kIcmpDestUnreachable, 4,
                     t.cIp(kData, t.cs().nxt, t.ss().nxt, 1400), 1400),
           related(kSrv80));
    fx.add("router -> srv: quote truncated to IP + 8 bytes",
           icmpError(kRouter4, kSrv4, kIcmpDestUnreachable, 1,
                     t.sIp(kData, t.ss().nxt, t.cs().nxt, 100), 0, 28),
           related(kSrv80));
    Tcp other_conn(kExt4, 43999, kSrv4, 80);
    fx.add("router -> srv: error about a connection never seen",
           icmpError(kRouter4, kSrv4, kIcmpTimeExceeded, 0, other_conn.sIp(kData, 1, 1, 100)),
           denySg(kSrvIn));
    fx.add("srv -> C: error about a connection never seen",
           icmpError(kSrv4, kExt4, kIcmpDestUnreachable, 3, other_conn.cIp(kData, 1, 1, 100)),
           denySg(kSrvOut));
    put(fx);
  }
  {
    Fx fx("icmp4_error_udp_related", "port unreachable about a tracked UDP flow", p);
    fx.add("request", udp(kExt4, 7000, kSrv4, 53), allowRule(kSrv53));
    fx.add("srv -> C: port unreachable",
           icmpError(kSrv4, kExt4, kIcmpDestUnreachable, 3,
                     buildUdp({.src = ipAddr(kExt4),
                               .dst = ipAddr(kSrv4),
                               .sport = 7000,
                               .dport = 53,
                               .payload_len = 32},
                              rawIp())),
           related(kSrv53));
    fx.add("srv -> C: port unreachable about port 7001",
           icmpError(kSrv4, kExt4, kIcmpDestUnreachable, 3,
                     buildUdp({.src = ipAddr(kExt4),
                               .dst = ipAddr(kSrv4),
                               .sport = 7001,
                               .dport = 53,
                               .payload_len = 32},
                              rawIp())),
           denySg(kSrvOut));
    put(fx);
  }
  {
    Fx fx("icmp4_error_echo_related", "time exceeded about a tracked echo request", p);
    fx.add("cli pings out", echo(kCli4, kExt4, 0x7777, false),
           allowRule(kCliOut, kAnyState, kFlagNewConnection));
    fx.add("router -> cli: time exceeded",
           icmpError(
               kRouter4, kCli4, kIcmpTimeExceeded, 0,
               buildIcmpEcho({.src = ipAddr(kCli4), .dst = ipAddr(kExt4), .id = 0x7777}, rawIp())),
           related(kCliOut));
    fx.add("router -> cli: time exceeded about another id",
           icmpError(
               kRouter4, kCli4, kIcmpTimeExceeded, 0,
               buildIcmpEcho({.src = ipAddr(kCli4), .dst = ipAddr(kExt4), .id = 0x7778}, rawIp())),
           denySg(kCliIn));
    put(fx);
  }
  {
    Fx fx("icmp6_error_tcp_related", "packet too big about a tracked IPv6 TCP connection", p);
    Tcp t(kExt6, 43001, kSrv6, 80);
    established(fx, t, kSrv80);
    fx.add("router -> srv: packet too big",
           icmpError(kRouter6, kSrv6, kIcmpv6PacketTooBig, 0,
                     t.sIp(kData, t.ss().nxt, t.cs().nxt, 1400), 1280),
           related(kSrv80));
    fx.add("router -> srv: time exceeded",
           icmpError(kRouter6, kSrv6, kIcmpv6TimeExceeded, 0,
                     t.sIp(kData, t.ss().nxt, t.cs().nxt, 100)),
           related(kSrv80));
    Tcp never(kExt6, 43002, kSrv6, 80);
    fx.add("router -> srv: packet too big about a connection never seen",
           icmpError(kRouter6, kSrv6, kIcmpv6PacketTooBig, 0, never.sIp(kData, 1, 1, 1400), 1280),
           denySg(kSrvIn));
    put(fx);
  }
  {
    Fx fx("icmp6_error_udp_related", "ICMPv6 port unreachable about a tracked UDP flow", p);
    fx.add("request", udp(kExt6, 7002, kSrv6, 53), allowRule(kSrv53));
    fx.add("srv -> C: port unreachable",
           icmpError(kSrv6, kExt6, kIcmpv6DestUnreachable, 4,
                     buildUdp({.src = ipAddr(kExt6),
                               .dst = ipAddr(kSrv6),
                               .sport = 7002,
                               .dport = 53,
                               .payload_len = 32},
                              rawIp())),
           related(kSrv53));
    put(fx);
  }
  {
    Fx fx("icmp6_error_echo_related", "ICMPv6 time exceeded about a tracked echo request", p);
    fx.add("cli pings out", echo(kCli6, kExt6, 0x0808, false), allowRule(kCliOut));
    fx.add("router -> cli: time exceeded",
           icmpError(
               kRouter6, kCli6, kIcmpv6TimeExceeded, 0,
               buildIcmpEcho({.src = ipAddr(kCli6), .dst = ipAddr(kExt6), .id = 0x0808}, rawIp())),
           related(kCliOut));
    fx.add("echo reply", echo(kExt6, kCli6, 0x0808, true), tracked(kCliOut));
    put(fx);
  }
}

// ---------------------------------------------------------------------------------------------
// Fragments, control traffic, link layers, malformed packets.
// ---------------------------------------------------------------------------------------------

void fragments() {
  const std::string p = mainPolicy();
  {
    Fx fx("frag4_udp_allowed", "the first fragment is judged, later ones follow it", p);
    auto frags =
        fragment(udp(kExt4, 8000, kSrv4, 53, 3000, {.ip_id = 0x1111}), 1500, {.ip_id = 0x1111});
    fx.add("first fragment", frags[0], allowRule(kSrv53, kAnyState, kFlagNewConnection));
    for (size_t i = 1; i < frags.size(); ++i) {
      fx.add("later fragment", frags[i], allowRule(kSrv53, kAnyState, kFlagFragment));
    }
    fx.add("response", udp(kSrv4, 53, kExt4, 8000), tracked(kSrv53));
    put(fx);
  }
  {
    Fx fx("frag4_udp_denied", "later fragments of a denied datagram are denied", p);
    auto frags =
        fragment(udp(kExt4, 8001, kSrv4, 99, 3000, {.ip_id = 0x2222}), 1500, {.ip_id = 0x2222});
    fx.add("first fragment", frags[0], denySg(kSrvIn));
    for (size_t i = 1; i < frags.size(); ++i) {
      fx.add("later fragment", frags[i], denySg(kSrvIn, kAnyState, kFlagFragment));
    }
    put(fx);
  }
  {
    Fx fx("frag4_without_first", "a fragment whose first fragment was never seen is denied", p);
    auto frags =
        fragment(udp(kExt4, 8002, kSrv4, 53, 3000, {.ip_id = 0x3333}), 1500, {.ip_id = 0x3333});
    fx.add("middle fragment alone", frags[1], orphanFragment());
    fx.add("last fragment alone", frags[2], orphanFragment());
    put(fx);
  }
  {
    Fx fx("frag4_out_of_order", "a later fragment before its first is denied; after, it follows",
          p);
    auto frags =
        fragment(udp(kExt4, 8003, kSrv4, 53, 3000, {.ip_id = 0x4444}), 1500, {.ip_id = 0x4444});
    fx.add("last fragment first", frags[2], orphanFragment());
    fx.add("first fragment", frags[0], allowRule(kSrv53));
    fx.add("middle fragment", frags[1], allowRule(kSrv53, kAnyState, kFlagFragment));
    put(fx);
  }
  {
    Fx fx("frag4_tcp_tracked", "fragments of a tracked TCP segment", p);
    Tcp t(kExt4, 43100, kSrv4, 80);
    established(fx, t, kSrv80);
    auto frags = fragment(t.s(kData, 2500), 1200, {.ip_id = 0x5555});
    fx.add("S data, first fragment", frags[0], tracked(kSrv80, TcpState::kEstablished));
    for (size_t i = 1; i < frags.size(); ++i) {
      fx.add("S data, later fragment", frags[i], tracked(kSrv80, kAnyState, kFlagFragment));
    }
    // No ACK of the whole segment follows: without reassembly the tracker only saw the first
    // fragment's bytes, and docs/design.md does not say how later fragments count for the window.
    put(fx);
  }
  {
    Fx fx("frag4_icmp_echo", "a fragmented echo request", p);
    auto frags = fragment(echo(kExt4, kSrv4, 0x0909, false, 1, 2000, {.ip_id = 0x6666}), 1000,
                          {.ip_id = 0x6666});
    fx.add("first fragment", frags[0], allowRule(kSrvPing));
    for (size_t i = 1; i < frags.size(); ++i) {
      fx.add("later fragment", frags[i], allowRule(kSrvPing, kAnyState, kFlagFragment));
    }
    put(fx);
  }
  {
    Fx fx("frag6_udp", "IPv6 fragments: first judged, later follow, orphan denied", p);
    auto frags = fragment(udp(kExt6, 8100, kSrv6, 53, 3000), 1280, {}, 0xabc1);
    fx.add("first fragment", frags[0], allowRule(kSrv53, kAnyState, kFlagNewConnection));
    for (size_t i = 1; i < frags.size(); ++i) {
      fx.add("later fragment", frags[i], allowRule(kSrv53, kAnyState, kFlagFragment));
    }
    auto denied = fragment(udp(kExt6, 8101, kSrv6, 99, 3000), 1280, {}, 0xabc2);
    fx.add("first fragment, closed port", denied[0], denySg(kSrvIn));
    fx.add("later fragment, closed port", denied[1], denySg(kSrvIn, kAnyState, kFlagFragment));
    auto orphan = fragment(udp(kExt6, 8102, kSrv6, 53, 3000), 1280, {}, 0xabc3);
    fx.add("later fragment without its first", orphan[1], orphanFragment());
    put(fx);
  }
}

void controlAndLinks() {
  {
    Fx fx("control_arp_nd", "ARP and valid IPv6 neighbour discovery are exempt", mainPolicy());
    fx.add("ARP request", buildArp({.sender_ip = ipAddr(kSrv4), .target_ip = ipAddr("10.0.1.1")}),
           exemptControl(rules::Exemption::kArp));
    fx.add("ARP reply",
           buildArp({.op = 2, .sender_ip = ipAddr("10.0.1.1"), .target_ip = ipAddr(kSrv4)}),
           exemptControl(rules::Exemption::kArp));
    fx.add("neighbour solicitation", buildNd({}),
           exemptControl(rules::Exemption::kNeighbourDiscovery));
    fx.add("neighbour advertisement",
           buildNd({.type = kIcmpv6NeighborAdvert,
                    .src = ipAddr(kSrv6),
                    .dst = ipAddr("fe80::1"),
                    .target = ipAddr(kSrv6)}),
           exemptControl(rules::Exemption::kNeighbourDiscovery));
    fx.add(
        "router advertisement",
        buildNd({.type = kIcmpv6RouterAdvert, .src = ipAddr("fe80::1"), .dst = ipAddr("ff02::1")}),
        exemptControl(rules::Exemption::kNeighbourDiscovery));
    put(fx);
  }
  {
    Fx fx("control_with_unprotected_deny", "ARP and ND pass even with `unprotected: deny`",
          mainPolicy("unprotected: deny\n"));
    fx.add("ARP request", buildArp({}), exemptControl(rules::Exemption::kArp));
    fx.add("neighbour solicitation", buildNd({}),
           exemptControl(rules::Exemption::kNeighbourDiscovery));
    put(fx);
  }
  {
    Fx fx("unprotected_allow", "neither address protected: the policy passes it (default)",
          mainPolicy());
    Tcp t("192.0.2.1", 1234, "192.0.2.2", 80);
    fx.add("TCP SYN", t.c(kSyn), unprotected());
    fx.add("UDP", udp("192.0.2.3", 1000, "192.0.2.4", 2000), unprotected());
    fx.add("IPv6 UDP", udp("2001:db8:aa::1", 1000, "2001:db8:aa::2", 2000), unprotected());
    fx.add("ICMP echo", echo("192.0.2.5", "192.0.2.6", 1, false), unprotected());
    put(fx);
  }
  {
    Fx fx("unprotected_deny", "`unprotected: deny`: deny-sg without an interface",
          mainPolicy("unprotected: deny\n"));
    Tcp t("192.0.2.1", 1234, "192.0.2.2", 80);
    fx.add("TCP SYN between unprotected hosts", t.c(kSyn), denySg("none"));
    fx.add("IPv6 UDP between unprotected hosts", udp("2001:db8:aa::1", 1, "2001:db8:aa::2", 2),
           denySg("none"));
    Tcp s(kExt4, 44000, kSrv4, 80);
    fx.add("protected traffic is unaffected", s.c(kSyn), allowRule(kSrv80, TcpState::kSynSent));
    put(fx);
  }
  {
    Fx fx("vlan_8021q", "802.1Q-tagged frames", mainPolicy());
    Tcp t(kExt4, 44100, kSrv4, 80, {.vlans = {VlanTag{.vid = 100}}});
    established(fx, t, kSrv80);
    fx.add("tagged UDP request", udp(kExt4, 9000, kSrv4, 53, 32, {.vlans = {VlanTag{.vid = 100}}}),
           allowRule(kSrv53));
    put(fx);
  }
  {
    Fx fx("vlan_qinq", "802.1ad outer and 802.1Q inner tags", mainPolicy());
    const FrameOptions qinq{
        .vlans = {VlanTag{.vid = 10, .tpid = kEtherTypeQinQ}, VlanTag{.vid = 200}}};
    Tcp t(kExt6, 44101, kSrv6, 80, qinq);
    handshake(fx, t, kSrv80);
    fx.add("S data", t.s(kData, 10), tracked(kSrv80, TcpState::kEstablished));
    put(fx);
  }
  {
    Fx fx("link_raw_ip", "raw IP frames (no link header)", mainPolicy());
    fx.link(LinkType::kRawIp);
    Tcp t(kExt4, 44102, kSrv4, 80, rawIp());
    handshake(fx, t, kSrv80);
    fx.add("UDP v6 request", udp(kExt6, 9001, kSrv6, 53, 32, rawIp()), allowRule(kSrv53));
    fx.add("UDP v6 response", udp(kSrv6, 53, kExt6, 9001, 32, rawIp()), tracked(kSrv53));
    put(fx);
  }
  {
    Fx fx("link_linux_sll", "Linux cooked capture frames", mainPolicy());
    fx.link(LinkType::kLinuxSll);
    const FrameOptions sll{.link = LinkType::kLinuxSll};
    Tcp t(kExt4, 44103, kSrv4, 80, sll);
    handshake(fx, t, kSrv80);
    fx.add("S data", t.s(kData, 10), tracked(kSrv80, TcpState::kEstablished));
    put(fx);
  }
}

void malformedPackets() {
  const std::string p = mainPolicy();
  Fx fx("malformed", "frames that cannot be parsed are deny-malformed naming the layer", p);
  {
    Bytes b = udp(kExt4, 1, kSrv4, 53);
    b.resize(b.size() - 10);
    fx.add("IPv4 total length beyond the captured bytes", b, malformed("ipv4"));
  }
  {
    Bytes b = udp(kExt4, 1, kSrv4, 53);
    b[14] = 0x44;
    fx.add("IPv4 IHL 4", b, malformed("ipv4"));
  }
  {
    const Bytes l4(12, 0);
    fx.add(
        "TCP header of 12 bytes",
        addLinkHeader(buildIpPacket(ipAddr(kExt4), ipAddr(kSrv4), kIpProtoTcp, l4), kEtherTypeIpv4),
        malformed("tcp"));
  }
  {
    Tcp t(kExt4, 45000, kSrv4, 80);
    Bytes b = t.c(kSyn);
    b[14 + 20 + 12] = 0x40;  // data offset 4
    fx.add("TCP data offset 4", b, malformed("tcp"));
  }
  {
    FrameOptions o;
    for (int i = 0; i < kMaxIpv6ExtHeaders + 1; ++i)
      o.ipv6_ext.push_back({.type = kIpv6DestOpts});
    fx.add("IPv6 chain of 9 extension headers", udp(kExt6, 1, kSrv6, 53, 8, o),
           malformed("ipv6-ext"));
  }
  {
    Bytes b = udp(kExt4, 1, kSrv4, 53);
    b[14 + 20 + 4] = 0;
    b[14 + 20 + 5] = 4;  // UDP length 4
    fx.add("UDP length below 8", b, malformed("udp"));
  }
  fx.add("Ethernet frame of 10 bytes", Bytes(10, 0), malformed("link"));
  fx.add("non-IP EtherType 0x88b5", buildEthertype(0x88b5, Bytes(46, 0xab)),
         malformed(std::nullopt));
  fx.add("ICMP error quoting 10 bytes",
         icmpError(kRouter4, kSrv4, kIcmpDestUnreachable, 1,
                   buildUdp({.src = ipAddr(kSrv4), .dst = ipAddr(kExt4)}, rawIp()), 0, 10),
         malformed("icmp-quoted"));
  put(fx);

  Fx fx2("malformed_in_tracked_flow",
         "a malformed copy of a tracked packet is denied; the connection is not disturbed", p);
  Tcp t(kExt4, 45001, kSrv4, 80);
  established(fx2, t, kSrv80);
  Bytes cut = t.sAt(kData, t.ss().nxt, t.cs().nxt, 100);
  cut.resize(14 + 20 + 10);
  fx2.add("S data cut inside the TCP header", cut, malformed("ipv4"));
  fx2.add("S data", t.s(kData, 100), tracked(kSrv80, TcpState::kEstablished));
  put(fx2);
}

// ---------------------------------------------------------------------------------------------
// Untracked flows, tiers, ACLs.
// ---------------------------------------------------------------------------------------------

void untrackedFlows() {
  {
    Fx fx("untracked_tcp",
          "inbound from 0.0.0.0/0 plus allow-all outbound: untracked both ways (AWS)", awsPolicy());
    Tcp t(kExt4, 46000, kBastion4, 22);
    fx.add("C SYN", t.c(kSyn), untracked(kBastionSsh));
    fx.add("S SYN-ACK, by the outbound rule", t.s(kSynAck), untracked(kBastionOut));
    fx.add("C ACK", t.c(kAck), untracked(kBastionSsh));
    fx.add("C data", t.c(kData, 100), untracked(kBastionSsh));
    fx.add("S data", t.s(kData, 100), untracked(kBastionOut));
    put(fx);
  }
  {
    Fx fx("untracked_cut_by_policy_swap",
          "removing the inbound rule stops an untracked flow at once", awsPolicy());
    Tcp t(kExt4, 46001, kBastion4, 22);
    fx.add("C SYN", t.c(kSyn), untracked(kBastionSsh));
    fx.add("S SYN-ACK", t.s(kSynAck), untracked(kBastionOut));
    fx.add("C ACK", t.c(kAck), untracked(kBastionSsh));
    fx.swap(awsPolicy(false));
    fx.add("C data after the rule is removed", t.c(kData, 100), denySg("bastion-1 inbound"));
    fx.add("C data again", t.c(kData, 100), denySg("bastion-1 inbound"));
    put(fx);
  }
  {
    Fx fx("untracked_becomes_tracked",
          "outbound rules shrink: the flow is no longer untracked; its next packet is picked up "
          "mid-stream by its own rule",
          awsPolicy());
    Tcp t(kExt4, 46002, kBastion4, 22);
    fx.add("C SYN", t.c(kSyn), untracked(kBastionSsh));
    fx.add("S SYN-ACK", t.s(kSynAck), untracked(kBastionOut));
    fx.add("C ACK", t.c(kAck), untracked(kBastionSsh));
    fx.swap(awsPolicy(true, false));
    fx.add("C data", t.c(kData, 100),
           allowRule(kBastionSsh, TcpState::kEstablished, kFlagMidStream));
    fx.add("S data: tracked now", t.s(kData, 100), trackedAnyRule(TcpState::kEstablished));
    put(fx);
  }
  {
    Fx fx("untracked_udp6", "UDP from ::/0 is untracked too", awsPolicy());
    fx.add("request", udp(kExt6, 4500, kBastion6, 500), untracked(kBastionIke));
    fx.add("response", udp(kBastion6, 500, kExt6, 4500), untracked(kBastionOut));
    put(fx);
  }
  {
    Fx fx("untracked_not_for_narrow_or_icmp",
          "a rule from a narrower CIDR is tracked; ICMP is always tracked", awsPolicy());
    Tcp t(kExt4, 46003, kBastion4, 2222);
    handshake(fx, t, kBastion2222);
    fx.add("echo request", echo(kExt4, kBastion4, 0x0a0a, false),
           allowRule(kBastionPing, kAnyState, kFlagNewConnection));
    fx.add("echo reply", echo(kBastion4, kExt4, 0x0a0a, true), tracked(kBastionPing));
    put(fx);
  }
  {
    Fx fx("untracked_needs_no_entry",
          "with the table full, an untracked flow still passes: it needs no entry", awsPolicy());
    fx.capacity(2);
    Tcp a(kExt4, 46010, kBastion4, 2222);
    Tcp b(kExt4, 46011, kBastion4, 2222);
    Tcp c(kExt4, 46012, kBastion4, 2222);
    fx.add("tracked SYN 1", a.c(kSyn), allowRule(kBastion2222, TcpState::kSynSent));
    fx.add("tracked SYN 2", b.c(kSyn), allowRule(kBastion2222, TcpState::kSynSent));
    // Replied: a full table may not evict them (early drop takes only unreplied entries).
    fx.add("SYN-ACK 1", a.s(kSynAck), tracked(kBastion2222, TcpState::kSynRecv));
    fx.add("SYN-ACK 2", b.s(kSynAck), tracked(kBastion2222, TcpState::kSynRecv));
    fx.add("tracked SYN 3: table full", c.c(kSyn), denyFull());
    Tcp u(kExt4, 46013, kBastion4, 22);
    fx.add("untracked SYN", u.c(kSyn), untracked(kBastionSsh));
    fx.add("untracked SYN-ACK", u.s(kSynAck), untracked(kBastionOut));
    put(fx);
  }
}

void tiers() {
  const std::string app_web = "app inbound tcp 8080 from sg:web";
  const std::string db_app = "db inbound tcp 5432 from sg:app";
  const std::string db_self = "db inbound all from sg:db";
  const std::string web_443 = "web inbound tcp 443 from 0.0.0.0/0, ::/0";
  {
    Fx fx("tiers_web_app_db", "web -> app -> db, each allowed by group references on both sides",
          kTierPolicy);
    Tcp in(kExt4, 47000, "10.0.1.10", 443);
    established(fx, in, web_443);
    Tcp wa("10.0.1.10", 47001, "10.0.2.10", 8080);
    established(fx, wa, app_web);
    Tcp ad("10.0.2.10", 47002, "10.0.3.10", 5432);
    established(fx, ad, db_app);
    put(fx);
  }
  {
    Fx fx("tiers_receiver_denies",
          "web's outbound rule allows 5432 to the db subnet, but db only accepts it from app",
          kTierPolicy);
    Tcp t("10.0.1.10", 47010, "10.0.3.10", 5432);
    fx.add("web -> db SYN", t.c(kSyn), denySg("db-1 inbound"));
    Tcp u("10.0.2.10", 47011, "10.0.3.10", 22);
    fx.add("app -> db port 22: app's outbound denies first", u.c(kSyn), denySg("app-1 outbound"));
    Tcp v("10.0.3.10", 47012, "10.0.2.10", 8080);
    fx.add("db -> app: db's outbound denies", v.c(kSyn), denySg("db-1 outbound"));
    Tcp w(kExt4, 47013, "10.0.2.10", 8080);
    fx.add("internet -> app", w.c(kSyn), denySg("app-1 inbound"));
    put(fx);
  }
  {
    Fx fx("tiers_self_reference", "db to db through the self-referencing rule", kTierPolicy);
    Tcp t("10.0.3.10", 47020, "10.0.3.11", 5433);
    established(fx, t, db_self);
    fx.add("UDP db-2 -> db-1", udp("10.0.3.11", 9999, "10.0.3.10", 9999), allowRule(db_self));
    fx.add("its reply", udp("10.0.3.10", 9999, "10.0.3.11", 9999), tracked(db_self));
    fx.add("echo db-1 -> db-2", echo("10.0.3.10", "10.0.3.11", 3, false), allowRule(db_self));
    put(fx);
  }
  {
    Fx fx("tiers_ipv6_web", "IPv6 to the web tier; app and db have no IPv6 rule", kTierPolicy);
    Tcp t(kExt6, 47030, "2001:db8:1::10", 443);
    established(fx, t, web_443);
    Tcp u(kExt6, 47031, "2001:db8:1::10", 80);
    fx.add("port 80 over IPv6", u.c(kSyn), denySg("web-1 inbound"));
    put(fx);
  }
}

void acls() {
  {
    Fx fx("acl_allows_both_ways", "inbound and outbound ACL rules both allow the flow",
          aclPolicy());
    Tcp t(kExt4, 48000, kSrv4, 80);
    established(fx, t, kAclSrv80);
    put(fx);
  }
  {
    Fx fx("acl_numbered_deny", "a numbered deny beats the security group (ACL before SG inbound)",
          aclPolicy());
    Tcp t("203.0.113.5", 48001, kSrv4, 80);
    fx.add("SYN from the blocked network", t.c(kSyn), denyAcl("pub-acl 90"));
    put(fx);
  }
  {
    Fx fx("acl_default_deny", "no ACL rule matches: the '*' entry denies (before the SG)",
          aclPolicy());
    Tcp t(kExt4, 48002, kSrv4, 22);
    fx.add("SYN to port 22", t.c(kSyn), denyAcl("pub-acl *"));
    fx.add("UDP to port 53", udp(kExt4, 1, kSrv4, 53), denyAcl("pub-acl *"));
    put(fx);
  }
  {
    Fx fx("acl_ephemeral_port_trap",
          "the SG tracks the reply, but the stateless outbound ACL has no rule for the client's "
          "ephemeral port",
          aclPolicy());
    Tcp t("192.0.2.77", 48003, kSrv4, 80);
    fx.add("C SYN", t.c(kSyn), allowRule(kAclSrv80, TcpState::kSynSent));
    fx.add("S SYN-ACK to port 48003", t.s(kSynAck), denyAcl("pub-acl *"));
    put(fx);
  }
  {
    Fx fx("acl_outbound_numbered_deny",
          "srv's SG allows NTP out, the outbound ACL's rule 200 denies UDP (SG, then ACL)",
          aclPolicy());
    fx.add("NTP request", udp(kSrv4, 123, kExt4, 123), denyAcl("pub-acl 200"));
    put(fx);
  }
  {
    Fx fx("acl_not_inside_subnet",
          "srv-1 to srv-2 in the same subnet: the ACL (which allows neither) does not apply",
          aclPolicy());
    Tcp t(kSrv4, 48004, "10.0.1.11", 8000);
    established(fx, t, kAclSrv8000);
    put(fx);
  }
  {
    Fx fx("acl_sees_tracked_packets",
          "ACLs are stateless: after the ephemeral rule is removed, the tracked replies stop",
          aclPolicy());
    Tcp t(kExt4, 48005, kSrv4, 80);
    established(fx, t, kAclSrv80);
    fx.swap(aclPolicy(false));
    fx.add("C data", t.c(kData, 100), trackedAnyRule(TcpState::kEstablished));
    fx.add("S data", t.s(kData, 100), denyAcl("pub-acl *"));
    put(fx);
  }
  {
    Fx fx("acl_ipv6", "IPv6 through the subnet's ACL", aclPolicy());
    Tcp t(kExt6, 48006, kSrv6, 80);
    established(fx, t, kAclSrv80);
    Tcp u(kExt6, 48007, kSrv6, 443);
    fx.add("SYN to 443", u.c(kSyn), denyAcl("pub-acl *"));
    put(fx);
  }
}

// ---------------------------------------------------------------------------------------------
// Timeouts, table capacity, policy swaps.
// ---------------------------------------------------------------------------------------------

void timeouts() {
  // Linux profile with short overrides, one per state (seconds).
  const std::string p = mainPolicy(
      "timeouts: {profile: linux, tcp_syn_sent: 5, tcp_syn_recv: 6, tcp_established: 50, "
      "tcp_fin_wait: 7, tcp_close_wait: 8, tcp_last_ack: 9, tcp_time_wait: 10, tcp_close: 3, "
      "udp: 11, udp_stream: 40, icmp: 4, other: 20}\n");

  // Two connections brought to a state at the same time; the responder's probe passes just
  // before the state's timeout on the first and is denied just after it on the second.
  struct Case {
    const char* name;
    const char* state_name;
    double timeout;
    TcpState state;
    std::function<void(Fx&, Tcp&)> setup;
    std::function<Bytes(Tcp&)> probe;
    TcpState after_probe;
  };
  const std::vector<Case> cases = {
      {"timeout_tcp_syn_sent", "SYN_SENT", 5, TcpState::kSynSent,
       [](Fx& fx, Tcp& t) { fx.add("C SYN", t.c(kSyn), allowRule(kSrv80, TcpState::kSynSent)); },
       [](Tcp& t) { return t.s(kSynAck); }, TcpState::kSynRecv},
      {"timeout_tcp_syn_recv", "SYN_RECV", 6, TcpState::kSynRecv,
       [](Fx& fx, Tcp& t) {
         fx.add("C SYN", t.c(kSyn), allowRule(kSrv80, TcpState::kSynSent));
         fx.add("S SYN-ACK", t.s(kSynAck), tracked(kSrv80, TcpState::kSynRecv));
       },
       [](Tcp& t) { return t.sAt(kSynAck, t.ss().isn, t.cs().nxt); }, TcpState::kSynRecv},
      {"timeout_tcp_established", "ESTABLISHED", 50, TcpState::kEstablished,
       [](Fx& fx, Tcp& t) { handshake(fx, t, kSrv80); }, [](Tcp& t) { return t.s(kData, 10); },
       TcpState::kEstablished},
      {"timeout_tcp_fin_wait", "FIN_WAIT", 7, TcpState::kFinWait,
       [](Fx& fx, Tcp& t) {
         handshake(fx, t, kSrv80);
         fx.add("C FIN", t.c(kFinAck), tracked(kSrv80, TcpState::kFinWait));
       },
       [](Tcp& t) { return t.s(kAck); }, TcpState::kCloseWait},
      {"timeout_tcp_close_wait", "CLOSE_WAIT", 8, TcpState::kCloseWait,
       [](Fx& fx, Tcp& t) {
         handshake(fx, t, kSrv80);
         fx.add("C FIN", t.c(kFinAck), tracked(kSrv80, TcpState::kFinWait));
         fx.add("S ACK", t.s(kAck), tracked(kSrv80, TcpState::kCloseWait));
       },
       [](Tcp& t) { return t.s(kData, 10); }, TcpState::kCloseWait},
      {"timeout_tcp_last_ack", "LAST_ACK", 9, TcpState::kLastAck,
       [](Fx& fx, Tcp& t) {
         handshake(fx, t, kSrv80);
         fx.add("C FIN", t.c(kFinAck), tracked(kSrv80, TcpState::kFinWait));
         fx.add("S ACK", t.s(kAck), tracked(kSrv80, TcpState::kCloseWait));
         fx.add("S FIN", t.s(kFinAck), tracked(kSrv80, TcpState::kLastAck));
       },
       [](Tcp& t) { return t.sAt(kFinAck, t.ss().fin, t.cs().nxt); }, TcpState::kLastAck},
      {"timeout_tcp_time_wait", "TIME_WAIT", 10, TcpState::kTimeWait,
       [](Fx& fx, Tcp& t) {
         handshake(fx, t, kSrv80);
         fx.add("C FIN", t.c(kFinAck), tracked(kSrv80, TcpState::kFinWait));
         fx.add("S FIN+ACK", t.s(kFinAck), tracked(kSrv80, TcpState::kLastAck));
         fx.add("C ACK", t.c(kAck), tracked(kSrv80, TcpState::kTimeWait));
       },
       [](Tcp& t) { return t.sAt(kFinAck, t.ss().fin, t.cs().nxt); }, TcpState::kTimeWait},
      {"timeout_tcp_close", "CLOSE", 3, TcpState::kClose,
       [](Fx& fx, Tcp& t) {
         handshake(fx, t, kSrv80);
         fx.add("C RST", t.cAt(kRst, t.cs().nxt, 0), tracked(kSrv80, TcpState::kClose));
       },
       [](Tcp& t) { return t.s(kData, 10); }, TcpState::kClose},
  };
  uint16_t port = 30000;
  for (const Case& c : cases) {
    Fx fx(c.name,
          std::string("idle timeout of ") + c.state_name + " overridden to " +
              std::to_string(static_cast<int>(c.timeout)) + " s",
          p);
    Tcp a(kExt4, port++, kSrv4, 80);
    Tcp b(kExt4, port++, kSrv4, 80);
    c.setup(fx, a);
    c.setup(fx, b);
    fx.wait(c.timeout - 0.5);
    fx.add("S probe on conn 1 just before the timeout", c.probe(a), tracked(kSrv80, c.after_probe));
    fx.wait(1);
    fx.add("S probe on conn 2 just after the timeout", c.probe(b), denySg(kSrvOut));
    put(fx);
  }
  {
    Fx fx("timeout_udp_icmp_other", "UDP, UDP stream, ICMP and other-protocol overrides", p);
    fx.add("UDP request A", udp(kExt4, 31000, kSrv4, 53), allowRule(kSrv53));
    fx.add("UDP request B", udp(kExt4, 31001, kSrv4, 53), allowRule(kSrv53));
    fx.add("echo request A", echo(kExt4, kSrv4, 0x31, false), allowRule(kSrvPing));
    fx.add("echo request B", echo(kExt4, kSrv4, 0x32, false), allowRule(kSrvPing));
    fx.add("GRE A", other(kExt4, kSrv4, 47), allowRule(kSrvGre));
    fx.add("GRE B", other(kExt4b, kSrv4, 47), allowRule(kSrvGre));
    fx.wait(3.5);
    fx.add("echo reply A at 3.5 s (icmp 4 s)", echo(kSrv4, kExt4, 0x31, true), tracked(kSrvPing));
    fx.wait(1);
    fx.add("echo reply B at 4.5 s", echo(kSrv4, kExt4, 0x32, true), denySg(kSrvOut));
    fx.wait(6);  // 10.5 s
    fx.add("UDP response A at 10.5 s (udp 11 s)", udp(kSrv4, 53, kExt4, 31000), tracked(kSrv53));
    fx.wait(1);  // 11.5 s
    fx.add("UDP response B at 11.5 s", udp(kSrv4, 53, kExt4, 31001), denySg(kSrvOut));
    fx.wait(8);  // 19.5 s
    fx.add("GRE reply A at 19.5 s (other 20 s)", other(kSrv4, kExt4, 47), tracked(kSrvGre));
    fx.wait(1);  // 20.5 s
    fx.add("GRE reply B at 20.5 s", other(kSrv4, kExt4b, 47), denySg(kSrvOut));
    put(fx);
  }
  {
    Fx fx("timeout_udp_stream_override", "a UDP stream lives udp_stream (40 s) when idle", p);
    fx.add("request", udp(kExt4, 31002, kSrv4, 53), allowRule(kSrv53));
    for (int i = 0; i < 3; ++i) {
      fx.add("response", udp(kSrv4, 53, kExt4, 31002), tracked(kSrv53));
      fx.add("request", udp(kExt4, 31002, kSrv4, 53), tracked(kSrv53));
    }
    fx.add("response", udp(kSrv4, 53, kExt4, 31002), tracked(kSrv53));
    fx.wait(39);
    fx.add("response after 39 s", udp(kSrv4, 53, kExt4, 31002), tracked(kSrv53));
    fx.wait(41);
    fx.add("response after 41 s idle", udp(kSrv4, 53, kExt4, 31002), denySg(kSrvOut));
    put(fx);
  }
}

void tableFull() {
  // Early drop (docs/design.md, connection tracking): a full table evicts an unreplied entry near
  // the new key, the oldest it finds; established and replied connections are never evicted.
  {
    Fx fx("table_full_evicts_unreplied",
          "a table of 2 full of unanswered SYNs: a new connection evicts the oldest unreplied one",
          mainPolicy());
    fx.capacity(2);
    Tcp a(kExt4, 32000, kSrv4, 80);
    Tcp b(kExt4, 32001, kSrv4, 80);
    Tcp c(kExt4, 32002, kSrv4, 80);
    fx.add("SYN A", a.c(kSyn), allowRule(kSrv80, TcpState::kSynSent, kFlagNewConnection));
    fx.wait(1);
    fx.add("SYN B", b.c(kSyn), allowRule(kSrv80, TcpState::kSynSent, kFlagNewConnection));
    fx.add("SYN C: evicts A, the oldest unreplied", c.c(kSyn),
           allowRule(kSrv80, TcpState::kSynSent, kFlagNewConnection));
    fx.add("SYN-ACK for A: A is gone", a.s(kSynAck), denySg(kSrvOut));
    fx.add("S SYN-ACK B", b.s(kSynAck), tracked(kSrv80, TcpState::kSynRecv, kFlagReply));
    fx.wait(1);
    // B has a reply now: C (SYN_SENT) is the only one that may go.
    fx.add("UDP request D: evicts C", udp(kExt4, 32003, kSrv4, 53),
           allowRule(kSrv53, kAnyState, kFlagNewConnection));
    fx.add("SYN-ACK for C: C is gone", c.s(kSynAck), denySg(kSrvOut));
    fx.add("UDP response D", udp(kSrv4, 53, kExt4, 32003), tracked(kSrv53, kAnyState, kFlagReply));
    Tcp e(kExt4, 32004, kSrv4, 80);
    fx.add("SYN E: B and D have replies, no room", e.c(kSyn), denyFull());
    fx.add("echo request: no room", echo(kExt4, kSrv4, 1, false), denyFull());
    fx.add("C ACK B", b.c(kAck), tracked(kSrv80, TcpState::kEstablished));
    fx.add("UDP request D again", udp(kExt4, 32003, kSrv4, 53), tracked(kSrv53));
    put(fx);
  }
  {
    Fx fx("table_full_echo_evicted",
          "an unanswered echo request is unreplied too: a new SYN evicts it", mainPolicy());
    fx.capacity(2);
    Tcp a(kExt4, 32010, kSrv4, 80);
    established(fx, a, kSrv80);
    fx.add("echo request", echo(kExt4, kSrv4, 7, false),
           allowRule(kSrvPing, kAnyState, kFlagNewConnection));
    Tcp b(kExt4, 32011, kSrv4, 80);
    fx.add("SYN B: evicts the echo", b.c(kSyn),
           allowRule(kSrv80, TcpState::kSynSent, kFlagNewConnection));
    fx.add("echo reply: its request was evicted", echo(kSrv4, kExt4, 7, true), denySg(kSrvOut));
    fx.add("S data A", a.s(kData, 10), tracked(kSrv80, TcpState::kEstablished, kFlagReply));
    put(fx);
  }
  {
    Fx fx("table_full",
          "a table of 2 full of established or replied connections: a third is denied; they keep "
          "going",
          mainPolicy());
    fx.capacity(2);
    Tcp a(kExt4, 32020, kSrv4, 80);
    established(fx, a, kSrv80);
    fx.add("UDP request B", udp(kExt4, 32021, kSrv4, 53),
           allowRule(kSrv53, kAnyState, kFlagNewConnection));
    fx.add("UDP response B", udp(kSrv4, 53, kExt4, 32021), tracked(kSrv53, kAnyState, kFlagReply));
    Tcp c(kExt4, 32022, kSrv4, 80);
    fx.add("SYN C: no room", c.c(kSyn), denyFull());
    fx.add("echo request: no room", echo(kExt4, kSrv4, 1, false), denyFull());
    fx.add("UDP request: no room", udp(kExt4, 1, kSrv4, 53), denyFull());
    fx.add("ARP needs no entry", buildArp({}), exemptControl(rules::Exemption::kArp));
    fx.add("SYN C again: still no room", c.cAt(kSyn, c.cs().isn, 0), denyFull());
    fx.add("S data A", a.s(kData, 10), tracked(kSrv80, TcpState::kEstablished));
    fx.add("C ACK A", a.c(kAck), tracked(kSrv80, TcpState::kEstablished));
    // B (UDP, replied: 30 s) times out: its entry makes room (swept, or reaped by the SYN).
    fx.wait(31);
    fx.add("S data A after 31 s", a.s(kData, 10), tracked(kSrv80, TcpState::kEstablished));
    fx.add("SYN C after B expired", c.cAt(kSyn, c.cs().isn, 0),
           allowRule(kSrv80, TcpState::kSynSent, kFlagNewConnection));
    fx.add("UDP response for B: B is gone", udp(kSrv4, 53, kExt4, 32021), denySg(kSrvOut));
    put(fx);
  }
}

void policySwaps() {
  {
    Fx fx("swap_tracked_survives",
          "removing port 80 keeps its tracked connection; new connections follow the new policy",
          mainPolicy());
    Tcp t(kExt4, 33000, kSrv4, 80);
    established(fx, t, kSrv80);
    Tcp n(kExt4, 33001, kSrv4, 8080);
    fx.add("SYN to 8080 before the swap", n.c(kSyn), denySg(kSrvIn));
    fx.swap(
        mainPolicy("", "      - {proto: tcp, ports: 8080, from: [0.0.0.0/0, \"::/0\"]}\n", false));
    fx.add("C data on the old connection", t.c(kData, 100), trackedAnyRule(TcpState::kEstablished));
    fx.add("S data on the old connection", t.s(kData, 100), trackedAnyRule(TcpState::kEstablished));
    Tcp m(kExt4, 33002, kSrv4, 80);
    fx.add("new SYN to 80", m.c(kSyn), denySg(kSrvIn));
    Tcp k(kExt4, 33003, kSrv4, 8080);
    fx.add("new SYN to 8080", k.c(kSyn), allowRule(kSrv8080, TcpState::kSynSent));
    fx.add("its SYN-ACK", k.s(kSynAck), tracked(kSrv8080, TcpState::kSynRecv));
    fx.add("old connection closes", t.c(kFinAck), trackedAnyRule(TcpState::kFinWait));
    put(fx);
  }
  {
    Fx fx("swap_unprotected_setting", "`unprotected` flips from deny to allow",
          mainPolicy("unprotected: deny\n"));
    fx.add("UDP between unprotected hosts", udp("192.0.2.1", 1, "192.0.2.2", 2), denySg("none"));
    fx.swap(mainPolicy("unprotected: allow\n"));
    fx.add("the same after the swap", udp("192.0.2.1", 1, "192.0.2.2", 2), unprotected());
    put(fx);
  }
  {
    Fx fx("swap_strict_mode", "turning on strict mode applies to tracked connections at once",
          mainPolicy());
    Tcp t(kExt4, 33010, kSrv4, 80);
    established(fx, t, kSrv80);
    fx.add("C data out of window, loose", t.cAt(kData, t.cs().nxt + 300000, t.ss().nxt, 10),
           allowRule(kSrv80, TcpState::kEstablished, kFlagTcpInvalid));
    fx.swap(mainPolicy("strict: true\n"));
    fx.add("C data out of window, strict", t.cAt(kData, t.cs().nxt + 300000, t.ss().nxt, 10),
           denyInvalid(TcpState::kEstablished));
    fx.add("C data in window", t.c(kData, 10), trackedAnyRule(TcpState::kEstablished));
    put(fx);
  }
}

// ---------------------------------------------------------------------------------------------
// One fixture per row of the TCP transition table (tcpTransitions()): a connection between an
// internet client C and srv:80 is brought to the row's state, then one segment of the row's
// direction and event is sent. Rows that reopen from the responder's side run under kPeerPolicy
// (srv may not open connections).
// ---------------------------------------------------------------------------------------------

enum class Setup {
  kNone,
  kSynSent,
  kSynSent2,
  kSynRecv,       // C SYN, S SYN-ACK: S acknowledged C's SYN, C has not acknowledged S's
  kSynRecvSimul,  // C SYN, S SYN, C SYN-ACK: C acknowledged S's SYN, S has not
  kEstablished,
  kFinWaitC,  // C sent the FIN
  kFinWaitS,
  kCloseWaitC,  // C's FIN acknowledged, S open
  kCloseWaitS,
  kLastAckC,  // C closed first; S's FIN is pending
  kLastAckS,  // S closed first; C's FIN is pending
  kTimeWait,
  kClose,
};

void runSetup(Setup s, Fx& fx, Tcp& t, const std::string& r) {
  using S = Setup;
  auto syn = [&] { fx.add("setup: C SYN", t.c(kSyn), allowRule(r, TcpState::kSynSent)); };
  auto est = [&] {
    handshake(fx, t, r);
    fx.add("setup: C data", t.c(kData, 100), tracked(r, TcpState::kEstablished));
    fx.add("setup: S data", t.s(kData, 200), tracked(r, TcpState::kEstablished));
  };
  switch (s) {
    case S::kNone:
      return;
    case S::kSynSent:
      syn();
      return;
    case S::kSynSent2:
      syn();
      fx.add("setup: S SYN", t.s(kSyn), tracked(r, TcpState::kSynSent2));
      return;
    case S::kSynRecv:
      syn();
      fx.add("setup: S SYN-ACK", t.s(kSynAck), tracked(r, TcpState::kSynRecv));
      return;
    case S::kSynRecvSimul:
      syn();
      fx.add("setup: S SYN", t.s(kSyn), tracked(r, TcpState::kSynSent2));
      fx.add("setup: C SYN-ACK", t.cAt(kSynAck, t.cs().isn, t.ss().nxt),
             tracked(r, TcpState::kSynRecv));
      return;
    case S::kEstablished:
      est();
      return;
    case S::kFinWaitC:
    case S::kCloseWaitC:
    case S::kLastAckC:
    case S::kTimeWait:
      est();
      fx.add("setup: C FIN", t.c(kFinAck), tracked(r, TcpState::kFinWait));
      if (s == S::kFinWaitC) return;
      fx.add("setup: S ACK", t.s(kAck), tracked(r, TcpState::kCloseWait));
      if (s == S::kCloseWaitC) return;
      fx.add("setup: S FIN", t.s(kFinAck), tracked(r, TcpState::kLastAck));
      if (s == S::kLastAckC) return;
      fx.add("setup: C ACK", t.c(kAck), tracked(r, TcpState::kTimeWait));
      return;
    case S::kFinWaitS:
    case S::kCloseWaitS:
    case S::kLastAckS:
      est();
      fx.add("setup: S FIN", t.s(kFinAck), tracked(r, TcpState::kFinWait));
      if (s == S::kFinWaitS) return;
      fx.add("setup: C ACK", t.c(kAck), tracked(r, TcpState::kCloseWait));
      if (s == S::kCloseWaitS) return;
      fx.add("setup: C FIN", t.c(kFinAck), tracked(r, TcpState::kLastAck));
      return;
    case S::kClose:
      est();
      fx.add("setup: C RST", t.cAt(kRst, t.cs().nxt, 0), tracked(r, TcpState::kClose));
      return;
  }
}

struct RowCase {
  Setup setup;
  std::function<Bytes(Tcp&)> packet;
  const char* what;
};

// The scenario for one row, or nullopt when the table has a row this function does not know
// (the table check test reports it).
std::optional<RowCase> rowCase(const TcpTransition& row) {
  using S = Setup;
  const bool o = row.dir == TcpDir::kOriginal;
  const TcpState st = row.from;
  const TcpEvent ev = row.event;
  const TcpGuard g = row.guard;
  // Segments of the sender X to the peer Y; "nxt" acknowledges all Y sent.
  auto xAt = [o](Tcp& t, uint8_t f, uint32_t seq, uint32_t ack, size_t len = 0) {
    return o ? t.cAt(f, seq, ack, len) : t.sAt(f, seq, ack, len);
  };
  auto x = [o](Tcp& t, uint8_t f, size_t len = 0) { return o ? t.c(f, len) : t.s(f, len); };
  auto me = [o](Tcp& t) -> Tcp::Side& { return o ? t.cs() : t.ss(); };
  auto peer = [o](Tcp& t) -> Tcp::Side& { return o ? t.ss() : t.cs(); };

  // Retransmission of X's SYN; X's (late) SYN-ACK acknowledging Y's SYN.
  auto synAgain = [=](Tcp& t) { return xAt(t, kSyn, me(t).isn, 0); };
  auto synAckLate = [=](Tcp& t) { return xAt(t, kSynAck, me(t).isn, peer(t).isn + 1); };
  auto reopen = [=](Tcp& t) { return xAt(t, kSyn, me(t).isn + 30000000u, 0); };
  auto finNew = [=](Tcp& t) { return x(t, kFinAck); };
  auto finAgain = [=](Tcp& t) { return xAt(t, kFinAck, me(t).fin, peer(t).nxt); };
  auto finAgainNotAcking = [=](Tcp& t) { return xAt(t, kFinAck, me(t).fin, peer(t).fin); };
  auto ack = [=](Tcp& t) { return x(t, kAck); };
  auto ackNotAcking = [=](Tcp& t) { return xAt(t, kAck, me(t).nxt, peer(t).fin); };
  auto data = [=](Tcp& t) { return x(t, kData, 100); };
  auto rstExact = [=](Tcp& t) { return xAt(t, kRst, me(t).nxt, 0); };

  switch (st) {
    case TcpState::kNone:
      switch (ev) {
        case TcpEvent::kSegSyn:
          return RowCase{S::kNone, [](Tcp& t) { return t.c(kSyn); }, "first SYN"};
        case TcpEvent::kSegSynAck:
          return RowCase{S::kNone, [](Tcp& t) { return t.cAt(kSynAck, t.cs().isn, 1); },
                         "first packet SYN-ACK"};
        case TcpEvent::kSegFin:
          return RowCase{S::kNone, [](Tcp& t) { return t.cAt(kFinAck, t.cs().isn, 1); },
                         "first packet FIN"};
        case TcpEvent::kSegAck:
          return RowCase{S::kNone, [](Tcp& t) { return t.c(kData, 100); }, "first packet data"};
        case TcpEvent::kSegRst:
          return RowCase{S::kNone, [](Tcp& t) { return t.cAt(kRst, t.cs().isn, 0); },
                         "first packet RST"};
        default:
          return std::nullopt;
      }
    case TcpState::kSynSent:
      switch (ev) {
        case TcpEvent::kSegSyn:
          return o ? RowCase{S::kSynSent, synAgain, "C SYN again"}
                   : RowCase{S::kSynSent, [](Tcp& t) { return t.s(kSyn); }, "S SYN"};
        case TcpEvent::kSegSynAck:
          return o ? RowCase{S::kSynSent, [](Tcp& t) { return t.cAt(kSynAck, t.cs().isn, 1); },
                             "C SYN-ACK"}
                   : RowCase{S::kSynSent, [](Tcp& t) { return t.s(kSynAck); }, "S SYN-ACK"};
        case TcpEvent::kSegFin:
          return RowCase{S::kSynSent,
                         [=](Tcp& t) { return xAt(t, kFinAck, me(t).nxt, peer(t).isn + 1); },
                         "FIN"};
        case TcpEvent::kSegAck:
          return RowCase{S::kSynSent, [=](Tcp& t) { return xAt(t, kAck, me(t).nxt, peer(t).nxt); },
                         "bare ACK"};
        case TcpEvent::kSegRst:
          return o ? RowCase{S::kSynSent, rstExact, "C RST"}
                   : RowCase{S::kSynSent, [](Tcp& t) { return t.sAt(kRstAck, 0, t.cs().nxt); },
                             "S RST+ACK of the SYN"};
        default:
          return std::nullopt;
      }
    case TcpState::kSynSent2:
      switch (ev) {
        case TcpEvent::kSegSyn:
          return RowCase{S::kSynSent2, synAgain, "SYN again"};
        case TcpEvent::kSegSynAck:
          return RowCase{S::kSynSent2, synAckLate, "SYN-ACK"};
        case TcpEvent::kSegFin:
          return RowCase{S::kSynSent2,
                         [=](Tcp& t) { return xAt(t, kFinAck, me(t).nxt, peer(t).nxt); }, "FIN"};
        case TcpEvent::kSegAck:
          return RowCase{S::kSynSent2, ack, "bare ACK"};
        case TcpEvent::kSegRst:
          return RowCase{S::kSynSent2, rstExact, "RST"};
        default:
          return std::nullopt;
      }
    case TcpState::kSynRecv: {
      // Which side has acknowledged the other's SYN decides the guard.
      const S acked_by_s = S::kSynRecv, acked_by_c = S::kSynRecvSimul;
      const bool first = g == TcpGuard::kFirstAckOfSyn;
      // The sender has not acknowledged yet (first) -> the other side did.
      const S for_first = o ? acked_by_s : acked_by_c;
      const S for_again = o ? acked_by_c : acked_by_s;
      switch (ev) {
        case TcpEvent::kSegSyn:
          return RowCase{o ? acked_by_s : acked_by_c, synAgain, "SYN again"};
        case TcpEvent::kSegSynAck:
          return RowCase{first ? for_first : for_again, synAckLate, "SYN-ACK"};
        case TcpEvent::kSegFin:
          return RowCase{acked_by_s, finNew, "FIN right after the handshake"};
        case TcpEvent::kSegAck:
          // A bare ACK: in the simultaneous-open setup nobody has acknowledged C's window yet,
          // so C may not send data.
          return RowCase{first ? for_first : for_again, ack, "ACK"};
        case TcpEvent::kSegRst:
          return RowCase{acked_by_s, rstExact, "RST"};
        default:
          return std::nullopt;
      }
    }
    case TcpState::kEstablished:
      switch (ev) {
        case TcpEvent::kSegSyn:
          return RowCase{S::kEstablished, synAgain, "late SYN"};
        case TcpEvent::kSegSynAck:
          return RowCase{S::kEstablished, synAckLate, "late SYN-ACK"};
        case TcpEvent::kSegFin:
          return RowCase{S::kEstablished, finNew, "FIN"};
        case TcpEvent::kSegAck:
          return RowCase{S::kEstablished, data, "data"};
        case TcpEvent::kSegRst:
          return RowCase{S::kEstablished, rstExact, "RST"};
        default:
          return std::nullopt;
      }
    case TcpState::kFinWait: {
      // "own" = the sender is the side that sent the pending FIN.
      const S own = o ? S::kFinWaitC : S::kFinWaitS;
      const S theirs = o ? S::kFinWaitS : S::kFinWaitC;
      switch (ev) {
        case TcpEvent::kSegSyn:
          return RowCase{S::kFinWaitC, synAgain, "late SYN"};
        case TcpEvent::kSegSynAck:
          return RowCase{S::kFinWaitC, synAckLate, "late SYN-ACK"};
        case TcpEvent::kSegFin:
          return g == TcpGuard::kFinRepeated ? RowCase{own, finAgain, "FIN again"}
                                             : RowCase{theirs, finNew, "FIN of the other side"};
        case TcpEvent::kSegAck:
          return g == TcpGuard::kAcksPendingFin ? RowCase{theirs, ack, "ACK of the FIN"}
                                                : RowCase{own, ack, "ACK after own FIN"};
        case TcpEvent::kSegRst:
          return RowCase{S::kFinWaitC, rstExact, "RST"};
        default:
          return std::nullopt;
      }
    }
    case TcpState::kCloseWait: {
      const S own = o ? S::kCloseWaitC : S::kCloseWaitS;  // sender's FIN acknowledged
      const S theirs = o ? S::kCloseWaitS : S::kCloseWaitC;
      switch (ev) {
        case TcpEvent::kSegSyn:
          return RowCase{S::kCloseWaitC, synAgain, "late SYN"};
        case TcpEvent::kSegSynAck:
          return RowCase{S::kCloseWaitC, synAckLate, "late SYN-ACK"};
        case TcpEvent::kSegFin:
          return g == TcpGuard::kFinRepeated ? RowCase{own, finAgain, "FIN again"}
                                             : RowCase{theirs, finNew, "FIN of the open side"};
        case TcpEvent::kSegAck:
          return RowCase{theirs, data, "data from the open side"};
        case TcpEvent::kSegRst:
          return RowCase{S::kCloseWaitC, rstExact, "RST"};
        default:
          return std::nullopt;
      }
    }
    case TcpState::kLastAck: {
      // The sender acknowledges the peer's pending FIN: the peer closed last.
      const S peer_pending = o ? S::kLastAckC : S::kLastAckS;
      const bool acks = g == TcpGuard::kAcksPendingFin;
      switch (ev) {
        case TcpEvent::kSegSyn:
          return RowCase{S::kLastAckC, synAgain, "late SYN"};
        case TcpEvent::kSegSynAck:
          return RowCase{S::kLastAckC, synAckLate, "late SYN-ACK"};
        case TcpEvent::kSegFin:
          return acks ? RowCase{peer_pending, finAgain, "FIN again, acknowledging the peer's"}
                      : RowCase{peer_pending, finAgainNotAcking, "FIN again, not acknowledging"};
        case TcpEvent::kSegAck:
          return acks ? RowCase{peer_pending, ack, "ACK of the last FIN"}
                      : RowCase{peer_pending, ackNotAcking, "ACK below the last FIN"};
        case TcpEvent::kSegRst:
          return RowCase{S::kLastAckC, rstExact, "RST"};
        default:
          return std::nullopt;
      }
    }
    case TcpState::kTimeWait:
    case TcpState::kClose: {
      const S s = st == TcpState::kTimeWait ? S::kTimeWait : S::kClose;
      switch (ev) {
        case TcpEvent::kSegSyn:
          return RowCase{s, reopen, "SYN with a new ISN"};
        case TcpEvent::kSegSynAck:
          return RowCase{s, synAckLate, "late SYN-ACK"};
        case TcpEvent::kSegFin:
          // In TIME_WAIT both FINs were sent: retransmit; after an RST a FIN is new.
          return s == S::kTimeWait ? RowCase{s, finAgain, "late FIN"} : RowCase{s, finNew, "FIN"};
        case TcpEvent::kSegAck:
          return s == S::kTimeWait ? RowCase{s, ack, "late ACK"} : RowCase{s, data, "late data"};
        case TcpEvent::kSegRst:
          return RowCase{s, rstExact, "RST"};
        default:
          return std::nullopt;
      }
    }
    default:
      return std::nullopt;
  }
}

std::string lower(std::string_view s) {
  std::string out;
  for (char ch : s)
    out += (ch >= 'A' && ch <= 'Z') ? static_cast<char>(ch - 'A' + 'a') : (ch == '-' ? '_' : ch);
  return out;
}

void tcpTransitionRows() {
  const auto rows = tcpTransitions();
  uint16_t port = 20000;
  for (size_t i = 0; i < rows.size(); ++i) {
    const TcpTransition& row = rows[i];
    const std::optional<RowCase> rc = rowCase(row);
    if (!rc) continue;  // reported by the table test (transitionRowsWithoutFixture())
    const bool o = row.dir == TcpDir::kOriginal;
    const bool peer_policy = row.action == TcpAction::kReopen && !o;
    const std::string rule = peer_policy ? kPeerRule : kSrv80;
    std::string name = "tcp_row_" + std::to_string(i) + "_" + lower(tcpStateName(row.from)) + "_" +
                       std::string(tcpDirName(row.dir)) + "_" + lower(tcpEventName(row.event));
    if (row.guard != TcpGuard::kAlways) name += "_guarded";
    std::string desc =
        "transition row " + std::to_string(i) + ": " + std::string(tcpStateName(row.from)) + " " +
        std::string(tcpDirName(row.dir)) + " " + std::string(tcpEventName(row.event));
    if (row.guard != TcpGuard::kAlways) desc += " [" + std::string(tcpGuardName(row.guard)) + "]";
    desc += " -> " + std::string(tcpActionName(row.action)) + " " +
            std::string(tcpStateName(row.to)) + " (" + row.what + ")";
    Fx fx(name, desc, peer_policy ? kPeerPolicy : mainPolicy());
    Tcp t = peer_policy ? Tcp("10.0.5.1", port, "10.0.5.2", 80) : Tcp(kExt4, port, kSrv4, 80);
    ++port;
    runSetup(rc->setup, fx, t, rule);
    Bytes pkt = rc->packet(t);
    const std::string note = std::string(o ? "C " : "S ") + rc->what;
    const bool first = row.from == TcpState::kNone;
    X x{Reason::kAllowTracked};
    switch (row.action) {
      case TcpAction::kTrack:
      case TcpAction::kPass:
      case TcpAction::kReset: {
        uint16_t flags = o ? uint16_t{0} : uint16_t{kFlagReply};
        if (row.to != row.from && (row.to == TcpState::kClose || row.to == TcpState::kTimeWait)) {
          flags = static_cast<uint16_t>(flags | kFlagConnClosed);
        }
        if (first) {
          // The first packet: a SYN opens; an ACK-class packet is a mid-stream pickup.
          const uint16_t f = row.event == TcpEvent::kSegSyn
                                 ? uint16_t{kFlagNewConnection}
                                 : static_cast<uint16_t>(kFlagNewConnection | kFlagMidStream);
          x = allowRule(rule, row.to, f);
        } else {
          x = tracked(rule, row.to, flags);
        }
        break;
      }
      case TcpAction::kInvalid:
        // No help from the connection: C's packet passes by srv's port-80 rule, S's packet has
        // no outbound rule.
        x = o ? allowRule(rule, first ? St{} : St{row.from}, kFlagTcpInvalid)
              : denySg(kSrvOut, row.from, kFlagTcpInvalid);
        break;
      case TcpAction::kReopen:
        // A new connection: its own rules must allow it.
        x = allowRule(rule, TcpState::kSynSent, kFlagReopened);
        break;
    }
    // A reopening SYN starts a new connection: which state it "found" is not specified.
    if (row.action != TcpAction::kReopen) x.before = row.from;
    fx.add(note, pkt, x);
    put(fx);
  }
}

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

std::vector<Fixture> buildAll() {
  std::vector<Fixture> table;
  g_table = &table;
  tcpBasics();
  strictMode();
  udpIcmpOther();
  icmpErrors();
  fragments();
  controlAndLinks();
  malformedPackets();
  untrackedFlows();
  tiers();
  acls();
  timeouts();
  tableFull();
  policySwaps();
  tcpTransitionRows();
  tcpKernelFindings();
  bypassFixtures();
  peerFixtures();
  g_table = nullptr;
  return table;
}

}  // namespace

const std::vector<Fixture>& allFixtures() {
  static const std::vector<Fixture> table = buildAll();
  return table;
}

std::vector<size_t> transitionRowsWithoutFixture() {
  std::vector<size_t> missing;
  const auto rows = tcpTransitions();
  for (size_t i = 0; i < rows.size(); ++i) {
    if (!rowCase(rows[i])) missing.push_back(i);
  }
  return missing;
}

rules::CompiledPolicyPtr compileFixturePolicy(const std::string& yaml) {
  rules::LoadResult lr = rules::loadPolicyTexts({{"fixture.yaml", yaml}});
  if (!lr.ok()) {
    for (const auto& d : lr.diagnostics)
      std::fprintf(stderr, "%s\n", d.str().c_str());
    std::fprintf(stderr, "fixture policy does not load:\n%s\n", yaml.c_str());
    std::abort();
  }
  rules::CompileResult cr = rules::compile(*lr.policy);
  if (!cr.policy) {
    for (const auto& d : cr.diagnostics)
      std::fprintf(stderr, "%s\n", d.str().c_str());
    std::fprintf(stderr, "fixture policy does not compile:\n%s\n", yaml.c_str());
    std::abort();
  }
  return cr.policy;
}

std::string ruleLabel(const rules::CompiledPolicy& policy, rules::RuleId rule) {
  if (rule == rules::kNoRule) return "none";
  if (rule >= policy.ruleCount()) return "?";
  const rules::RuleInfo& r = policy.rule(rule);
  return r.group_name + " " + std::string(rules::directionName(r.dir)) + " " + r.text;
}

std::string denyWhere(const rules::CompiledPolicy& policy, const Verdict& v) {
  switch (v.reason) {
    case Reason::kDenySg:
      if (v.deny_iface == rules::kNoIface) return "none";
      if (v.deny_iface >= policy.ifaceCount()) return "?";
      return policy.iface(v.deny_iface).name + " " + std::string(rules::directionName(v.deny_dir));
    case Reason::kDenyAcl: {
      if (v.acl_entry == rules::kNoAclEntry || v.acl_entry >= policy.aclEntryCount()) return "?";
      const rules::AclEntryInfo& e = policy.aclEntry(v.acl_entry);
      return e.acl_name + " " + e.ruleNumberStr();
    }
    case Reason::kDenyMalformed:
      return std::string(layerName(v.malformed_layer));
    case Reason::kAllowExempt:
      return std::string(rules::exemptionName(v.exemption));
    default:
      return "";
  }
}

std::string describeFlags(uint16_t flags) {
  static constexpr std::pair<uint16_t, const char*> kNames[] = {
      {kFlagNewConnection, "new"},    {kFlagReply, "reply"},       {kFlagTcpInvalid, "invalid"},
      {kFlagUntracked, "untracked"},  {kFlagControl, "control"},   {kFlagFragment, "fragment"},
      {kFlagMidStream, "mid-stream"}, {kFlagReopened, "reopened"}, {kFlagConnClosed, "closed"},
  };
  std::string s;
  for (const auto& [bit, name] : kNames) {
    if ((flags & bit) != 0) {
      if (!s.empty()) s += "|";
      s += name;
    }
  }
  return s.empty() ? "-" : s;
}

std::string describeVerdict(const rules::CompiledPolicy& policy, const Verdict& v) {
  std::string s(reasonCode(v.reason));
  s += " flags=" + describeFlags(v.flags);
  s += " tcp=" + std::string(tcpStateName(v.tcp_before)) + "->" +
       std::string(tcpStateName(v.tcp_after));
  if (v.rule != rules::kNoRule) s += " rule=\"" + ruleLabel(policy, v.rule) + "\"";
  const std::string w = denyWhere(policy, v);
  if (!w.empty()) s += " at=\"" + w + "\"";
  if (v.why != nullptr) s += " why=\"" + std::string(v.why) + "\"";
  return s;
}

std::string checkPacket(const FixturePacket& p, const Verdict& v,
                        const rules::CompiledPolicy& policy) {
  std::string err;
  if (v.reason != p.reason) {
    err += "reason " + std::string(reasonCode(v.reason)) + ", expected " +
           std::string(reasonCode(p.reason)) + "\n";
  }
  if ((v.flags & p.flags_set) != p.flags_set) {
    err += "flags " + describeFlags(v.flags) + " lack " +
           describeFlags(static_cast<uint16_t>(p.flags_set & ~v.flags)) + "\n";
  }
  const uint16_t must_clear = static_cast<uint16_t>(p.flags_unset & ~p.flags_set);
  if ((v.flags & must_clear) != 0) {
    err += "flags " + describeFlags(v.flags) + " must not have " +
           describeFlags(static_cast<uint16_t>(v.flags & must_clear)) + "\n";
  }
  if (p.tcp_before && v.tcp_before != *p.tcp_before) {
    err += "tcp state before " + std::string(tcpStateName(v.tcp_before)) + ", expected " +
           std::string(tcpStateName(*p.tcp_before)) + "\n";
  }
  if (p.tcp_after && v.tcp_after != *p.tcp_after) {
    err += "tcp state " + std::string(tcpStateName(v.tcp_after)) + ", expected " +
           std::string(tcpStateName(*p.tcp_after)) + "\n";
  }
  if (p.rule_text) {
    const std::string got = ruleLabel(policy, v.rule);
    if (got != *p.rule_text) err += "rule \"" + got + "\", expected \"" + *p.rule_text + "\"\n";
  }
  if (p.where) {
    const std::string got = denyWhere(policy, v);
    if (got != *p.where) err += "deny at \"" + got + "\", expected \"" + *p.where + "\"\n";
  }
  return err;
}

}  // namespace statewall::fixtures
