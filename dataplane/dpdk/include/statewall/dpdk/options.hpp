// statewalld's own command line: everything after the `--` that ends the EAL arguments.
//
//   statewalld [EAL args] -- --policy P [--policy P2] --inside PORT --outside PORT
//   statewalld [EAL args] -- --policy P --gwlb --port PORT --address IP[/LEN] [--health-port P]
//              [--exception-tap [NAME]]
//              [--lcores N] [--table-size N] [--mbufs N] [--pass-non-ip] [--stats-interval S] ...
//              [--control-socket PATH] [--control-listen 127.0.0.1:PORT --control-token-file F]
//
// No DPDK here: parsing is pure and testable without an EAL.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace statewall::dpdk {

struct Options {
  std::string config_file;            // --config: the YAML file the options below came from
  std::vector<std::string> policies;  // policy files, loaded together as one policy
  std::string inside;                 // port id ("0") or device name ("net_pcap0", "0000:03:00.0")
  std::string outside;
  unsigned lcores = 0;                  // forwarding lcores; 0 = every worker lcore EAL was given
  size_t table_size = size_t{1} << 20;  // IPv4 connections (the IPv6 table gets a quarter)
  size_t mbufs = 0;                     // mbuf pool size; 0 = derived from the rings and lcores
  bool pass_non_ip = false;             // forward EtherTypes other than IPv4/IPv6/ARP
  double stats_interval_s = 0;          // print a counters line every S seconds; 0 = never
  unsigned burst = 32;                  // rx/tx burst size, 1..dataplane::kMaxBurst
  uint16_t rx_desc = 1024;              // rx ring size per queue (the PMD may adjust it)
  uint16_t tx_desc = 1024;              // tx ring size per queue
  unsigned tx_retries = 8;              // tx_burst retries before the rest of a burst is dropped
  unsigned idle_sleep_us = 0;           // sleep after an empty polling round; 0 = busy poll
  uint32_t exit_when_idle_ms = 0;       // stop once every lcore saw no packet for this long
                                        // (for finite inputs such as net_pcap files); 0 = never
  uint32_t mtu = 0;  // port MTU; 0 = chosen (af_packet: the interface's; else choosePortMtu)
  std::string counters_file;                // write the final counters as JSON here at exit
  std::string lock_dir = "/run/statewall";  // per-interface locks (port_lock.hpp)
  // The control server (control/): runs when any listener is given (health_port too).
  std::string control_socket;      // Unix socket path (mode 0600)
  std::string control_listen;      // loopback "HOST:PORT"; needs control_token_file
  std::string control_token_file;  // bearer token for the TCP listener

  // --flow-log (docs/deploy.md, "Flow logs"): AWS VPC Flow Logs records, as replay writes them.
  std::string flow_log;             // file, "-" for standard output; empty = off
  uint32_t flow_log_interval = 60;  // aggregation window, seconds
  bool flow_log_jsonl = false;      // JSON lines with the deciding rule and reason
  uint32_t flow_log_flows = 65536;  // aggregates per forwarding lcore
  uint32_t flow_log_ring = 16384;   // records per lcore ring to the writer
  // Gateway Load Balancer mode (gwlb.hpp, docs/deploy-gwlb.md): one port instead of inside and
  // outside; GENEVE to `address` is judged on its inner packet and returned.
  bool gwlb = false;
  std::string port;     // the one port (--port), as inside/outside
  std::string address;  // the appliance's IP address on it (--address), IPv4 or IPv6, with an
                        // optional /LEN (the subnet, for the exception tap's kernel address)
  // --exception-tap [NAME] (exception.hpp): the kernel interface of the exception port; empty =
  // no exception path (ARP, ICMP and health checks to --address are dropped, counted).
  std::string exception_tap;
  // Serve the load balancer's HTTP health check (GET any path: 200 while every forwarding lcore
  // makes progress and a policy is loaded, else 503) on this TCP port of every address; 0 = off.
  uint16_t health_port = 0;

  bool controlEnabled() const {
    return !control_socket.empty() || !control_listen.empty() || health_port != 0;
  }
};

struct ParseResult {
  std::optional<Options> options;  // set when statewalld should run
  int exit_code = 0;               // when options is empty: 0 for --help, 2 for a usage error
  std::string message;             // help text or the error, for stdout / stderr
};

// Parses the application arguments. argv[0] is the program name (as rte_eal_init leaves it).
ParseResult parseOptions(int argc, const char* const* argv);

// Checks a --control-listen value: "HOST:PORT" with a loopback HOST (127.0.0.0/8, "localhost",
// "[::1]") and a port 0..65535. Empty on success, else what is wrong.
std::string checkControlListen(const std::string& text);

// The application usage text (also printed after the EAL usage by `statewalld --help`).
std::string usage(const std::string& program);

}  // namespace statewall::dpdk
