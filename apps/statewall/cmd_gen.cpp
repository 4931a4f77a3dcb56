// `statewall gen`: deterministic packet traces for examples, tests and benchmarks.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "commands.hpp"
#include "policy_input.hpp"
#include "statewall/sim/gen.hpp"

namespace statewall::cli {
namespace {

struct GenArgs {
  uint64_t seed = 1;
  std::string out;
  std::vector<std::string> flows;
  uint64_t random_flows = 0;
  double duration = 60.0;
  std::string mix;
  std::vector<std::string> clients;
  std::vector<std::string> servers;
  std::vector<uint16_t> tcp_ports;
  std::vector<uint16_t> udp_ports;
  double ipv6_share = 0.2;
  uint32_t exchanges = 4;
  std::string req_bytes = "100-600";
  std::string resp_bytes = "200-8000";
  uint32_t idle_gap = 700;
  uint32_t scan_ports = 200;
  uint32_t flood_packets = 2000;
  std::string link = "ethernet";
  int vlan = -1;
  std::string encap;
  double start = 1700000000.0;
  bool quiet = false;
  std::vector<std::string> policies;
  bool stop_on_deny = false;
  std::string flow_log;
  uint32_t flow_log_window = 60;
  bool flow_log_jsonl = false;
};

bool parseRange(const std::string& s, uint32_t* lo, uint32_t* hi) {
  unsigned long a = 0, b = 0;
  char dash = 0;
  char extra = 0;
  int n = std::sscanf(s.c_str(), "%lu%c%lu%c", &a, &dash, &b, &extra);
  if (n == 1)
    b = a;
  else if (n != 3 || dash != '-')
    return false;
  if (a > b || b > 100000000ul) return false;
  *lo = static_cast<uint32_t>(a);
  *hi = static_cast<uint32_t>(b);
  return true;
}

int runGen(const GenArgs& a) {
  sim::GenOptions o;
  o.seed = a.seed;
  if (!(a.start >= 0) || a.start > 4e9) {
    std::fprintf(stderr, "statewall gen: --start must be seconds since 1970 (0..4e9)\n");
    return 2;
  }
  o.start_ns = static_cast<uint64_t>(a.start) * 1000000000ull;
  if (a.link == "ethernet") {
    o.link = dataplane::LinkType::kEthernet;
  } else if (a.link == "raw") {
    o.link = dataplane::LinkType::kRawIp;
  } else if (a.link == "sll") {
    o.link = dataplane::LinkType::kLinuxSll;
  } else if (a.link == "sll2") {
    o.link = dataplane::LinkType::kLinuxSll2;
  } else if (a.link == "null") {
    o.link = dataplane::LinkType::kNull;
  } else if (a.link == "loop") {
    o.link = dataplane::LinkType::kLoop;
  } else if (a.link == "ppp") {
    o.link = dataplane::LinkType::kPpp;
  } else if (a.link == "ppp-hdlc") {
    o.link = dataplane::LinkType::kPppHdlc;
  } else {
    std::fprintf(stderr,
                 "statewall gen: --link must be ethernet, raw, sll, sll2, null, loop, ppp or "
                 "ppp-hdlc\n");
    return 2;
  }
  if (a.vlan >= 0) {
    if (a.vlan > 4095 ||
        (o.link != dataplane::LinkType::kEthernet && o.link != dataplane::LinkType::kLinuxSll &&
         o.link != dataplane::LinkType::kLinuxSll2)) {
      std::fprintf(stderr, "statewall gen: --vlan takes 0..4095 and needs a link with a header\n");
      return 2;
    }
    o.vlan = static_cast<uint16_t>(a.vlan);
  }
  if (!a.encap.empty()) {
    auto e = sim::parseEncapList(a.encap, o.link);
    if (!e) {
      std::fprintf(stderr, "statewall gen: %s\n", e.message().c_str());
      return 2;
    }
    o.encap = *e;
  }
  for (const auto& spec : a.flows) {
    auto p = sim::parseFlowSpec(spec);
    if (!p) {
      std::fprintf(stderr, "statewall gen: %s\n", p.message().c_str());
      return 2;
    }
    o.explicit_flows.push_back(*p);
  }
  o.flows = a.random_flows;
  o.duration_s = a.duration;
  if (!a.mix.empty()) {
    auto m = sim::parseMix(a.mix);
    if (!m) {
      std::fprintf(stderr, "statewall gen: %s\n", m.message().c_str());
      return 2;
    }
    o.mix = *m;
  }
  for (const auto& c : a.clients) {
    auto cidr = rules::Cidr::parse(c);
    if (!cidr) {
      std::fprintf(stderr, "statewall gen: --clients: bad CIDR '%s'\n", c.c_str());
      return 2;
    }
    o.clients.push_back(*cidr);
  }
  for (const auto& s : a.servers) {
    auto addr = rules::IpAddr::parse(s);
    if (!addr) {
      std::fprintf(stderr, "statewall gen: --servers: bad address '%s'\n", s.c_str());
      return 2;
    }
    o.servers.push_back(*addr);
  }
  if (!a.tcp_ports.empty()) o.tcp_ports = a.tcp_ports;
  if (!a.udp_ports.empty()) o.udp_ports = a.udp_ports;
  o.ipv6_share = a.ipv6_share;
  o.exchanges = a.exchanges;
  if (!parseRange(a.req_bytes, &o.req_lo, &o.req_hi) ||
      !parseRange(a.resp_bytes, &o.resp_lo, &o.resp_hi)) {
    std::fprintf(stderr, "statewall gen: --req-bytes/--resp-bytes take LO-HI (0..100000000)\n");
    return 2;
  }
  o.idle_gap_s = a.idle_gap;
  o.scan_ports = a.scan_ports;
  o.flood_packets = a.flood_packets;
  if (o.explicit_flows.empty() && o.flows == 0) {
    std::fprintf(stderr, "statewall gen: nothing to generate: give --flow SPEC and/or --flows N\n");
    return 2;
  }
  if ((a.stop_on_deny || !a.flow_log.empty()) != !a.policies.empty()) {
    std::fprintf(stderr,
                 "statewall gen: --policy goes with --stop-on-deny or --flow-log (which interfaces "
                 "log, and what their groups decide)\n");
    return 2;
  }
  if (!a.policies.empty()) {
    auto policy = loadCompiledPolicy(a.policies, "gen", "nothing generated");
    if (!policy) return 2;
    if (a.stop_on_deny) o.stop_on_deny = policy;
    if (!a.flow_log.empty()) {
      o.flow_log_policy = policy;
      o.flow_log_path = a.flow_log;
      o.flow_log_window_s = a.flow_log_window;
      o.flow_log_jsonl = a.flow_log_jsonl;
    }
  }
  sim::GenStats st;
  if (const base::Status written = sim::writeTrace(o, a.out, &st); !written.ok()) {
    std::fprintf(stderr, "statewall gen: %s\n", written.message().c_str());
    return 2;
  }
  if (!a.quiet) {
    double span = st.packets == 0 ? 0.0 : static_cast<double>(st.last_ts_ns - st.first_ts_ns) / 1e9;
    std::fprintf(stderr, "%s\n",
                 fmt::format("wrote {} packets ({} bytes, {} flows, {:.3f} s of trace time) to {}",
                             st.packets, st.bytes, st.flows, span, a.out)
                     .c_str());
    if (a.stop_on_deny) {
      std::fprintf(
          stderr, "%s\n",
          fmt::format("{} flows stopped after a packet the policy denied", st.flows_stopped)
              .c_str());
    }
    if (!a.flow_log.empty()) {
      std::fprintf(
          stderr, "%s\n",
          fmt::format("wrote {} flow-log records to {}", st.flow_log_records, a.flow_log).c_str());
    }
  }
  return 0;
}

}  // namespace

void addGenCommand(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<GenArgs>();
  CLI::App* cmd = app.add_subcommand(
      "gen", "Generate a deterministic packet trace (same seed and options, same bytes)");
  cmd->footer(
      "Flow specs (--flow, repeatable):\n"
      "  tcp SRC[:PORT] -> DST:PORT [at=S] [rtt=MS] [data=N] [req=B] [resp=B] [mss=B]\n"
      "      [retrans=N] [gap=S] [end=fin|fin-server|rst|rst-server|refused|noanswer|open|half]\n"
      "      [error=unreach|ttl|ptb] [error-to=orig|resp] [error-from=ADDR]\n"
      "  udp SRC[:PORT] -> DST:PORT [at=S] [count=N] [reply=yes|no] [len=B] [resp=B] "
      "[interval=MS]\n"
      "      [delay=S] [gap=S] [error=unreach|ttl|ptb] [error-to=orig|resp] [error-from=ADDR]\n"
      "error-to=resp aims the ICMP error at the responder (about its first data packet) instead\n"
      "  of the originator.\n"
      "--stop-on-deny judges each packet with the --policy as it is generated (the replay's own\n"
      "  engine) and stops a flow after a denied packet: the denied packet is written, nothing\n"
      "  after it (a real stack would retransmit it a few times first, then give up).\n"
      "  icmp SRC -> DST [at=S] [count=N] [reply=yes|no] [interval=MS] [delay=S] [id=N]\n"
      "  scan SRC -> DST [ports=LO-HI] [reply=yes|no]\n"
      "  flood CIDR -> DST:PORT [count=N] [rate=PPS]\n"
      "IPv6 endpoints with a port go in brackets: [2001:db8::1]:443.\n"
      "Random mix scenarios (--mix NAME=WEIGHT,...): tcp, tcp-rst, refused, noanswer, idle, udp,\n"
      "  udp-stream, udp-unreach, icmp, scan, flood.\n"
      "Encapsulations (--encap, comma-separated, outermost first): vlan:ID mpls:LABEL pppoe:SID\n"
      "  pbb:ISID vn-tag:WORD fabricpath:FTAG cmd:SGT pw-eth | gre gre:key=N erspan:type=1\n"
      "  erspan:session=N erspan:session=N:type=3 vxlan:vni=N geneve:vni=N gtp-u:teid=N teredo\n"
      "  ayiya ip-in-ip aruba aruba:proto=0x8210 (802.11 in GRE).\n"
      "  Layer-2.5 headers after a tunnel go inside its Ethernet frame (vxlan, geneve, erspan).\n"
      "  A UDP tunnel takes :port=N for another port (vxlan:vni=42:port=8472); gre:port=4754 is\n"
      "  GRE in UDP (RFC 8086).\n"
      "  Tunnel k (0 outermost) runs between 192.0.2.(2k+1) and 192.0.2.(2k+2). Replay such a\n"
      "  trace with --decap to judge the inner packets.");
  cmd->add_option("--seed", args->seed, "PRNG seed")->capture_default_str();
  cmd->add_option("--out,-o", args->out, "output pcap file")->required();
  cmd->add_option("--flow", args->flows, "an explicit flow (see below); repeatable");
  cmd->add_option("--flows", args->random_flows, "number of random flows to draw");
  cmd->add_option("--duration", args->duration, "random flow starts spread over S seconds")
      ->capture_default_str();
  cmd->add_option("--mix", args->mix, "scenario weights, e.g. tcp=80,udp=15,icmp=5");
  cmd->add_option("--clients", args->clients, "client CIDRs of random flows")->delimiter(',');
  cmd->add_option("--servers", args->servers, "server addresses of random flows")->delimiter(',');
  cmd->add_option("--tcp-ports", args->tcp_ports, "TCP server ports (default 443,80)")
      ->delimiter(',');
  cmd->add_option("--udp-ports", args->udp_ports, "UDP server ports (default 53,123)")
      ->delimiter(',');
  cmd->add_option("--ipv6-share", args->ipv6_share, "share of IPv6 random flows (0..1)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  cmd->add_option("--exchanges", args->exchanges, "mean request/response rounds per TCP flow")
      ->check(CLI::Range(1u, 100000u))
      ->capture_default_str();
  cmd->add_option("--req-bytes", args->req_bytes, "TCP request bytes per exchange, LO-HI")
      ->capture_default_str();
  cmd->add_option("--resp-bytes", args->resp_bytes, "TCP response bytes per exchange, LO-HI")
      ->capture_default_str();
  cmd->add_option("--idle-gap", args->idle_gap, "idle scenario gap, seconds")
      ->capture_default_str();
  cmd->add_option("--scan-ports", args->scan_ports, "ports per scan")->capture_default_str();
  cmd->add_option("--flood-packets", args->flood_packets, "SYNs per flood")->capture_default_str();
  cmd->add_option("--link", args->link,
                  "link type: ethernet, raw, sll, sll2, null, loop, ppp, ppp-hdlc")
      ->capture_default_str();
  cmd->add_option("--vlan", args->vlan, "add one 802.1Q tag with this VLAN id");
  cmd->add_option("--encap", args->encap,
                  "encapsulate every frame, outermost first, e.g. vlan:100,vxlan:vni=42 (see "
                  "below)");
  cmd->add_option("--start", args->start, "trace start, seconds since 1970")->capture_default_str();
  cmd->add_flag("--quiet,-q", args->quiet, "print nothing on success");
  cmd->add_option("--policy,-p", args->policies, "policy file(s) for --stop-on-deny, --flow-log");
  cmd->add_flag("--stop-on-deny", args->stop_on_deny,
                "stop a flow after a packet the --policy denies");
  cmd->add_option("--flow-log", args->flow_log,
                  "also write the flows as AWS VPC Flow Logs record them (needs --policy)");
  cmd->add_option("--flow-log-window", args->flow_log_window,
                  "flow-log aggregation window, seconds")
      ->check(CLI::Range(1u, 86400u))
      ->capture_default_str();
  cmd->add_flag("--flow-log-jsonl", args->flow_log_jsonl,
                "flow-log records as JSON lines instead of AWS text");
  cmd->callback([args, exit_code]() { *exit_code = runGen(*args); });
}

}  // namespace statewall::cli
