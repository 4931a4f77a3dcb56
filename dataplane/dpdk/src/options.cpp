#include "statewall/dpdk/options.hpp"

#include <arpa/inet.h>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <sstream>

#include "statewall/dataplane/engine.hpp"

namespace statewall::dpdk {
namespace {

void define(CLI::App& app, Options& o) {
  app.add_option("--policy", o.policies, "policy file (YAML or AWS JSON); repeat to merge several")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("--inside", o.inside, "inside port: port id or device name (e.g. net_pcap0)")
      ->required();
  app.add_option("--outside", o.outside, "outside port: port id or device name")->required();
  app.add_option("--lcores", o.lcores,
                 "forwarding lcores (default: every worker lcore given to EAL)")
      ->check(CLI::Range(1u, 1024u));
  app.add_option("--table-size", o.table_size, "IPv4 connection table capacity (IPv6: a quarter)")
      ->check(CLI::Range(size_t{1}, (size_t{1} << 31) - 1));
  app.add_option("--mbufs", o.mbufs, "mbuf pool size (default: derived from rings and lcores)")
      ->check(CLI::Range(size_t{1}, size_t{1} << 31));
  app.add_flag("--pass-non-ip", o.pass_non_ip,
               "forward EtherTypes other than IPv4, IPv6 and ARP (default: drop, counted)");
  // NonNegativeNumber lets "nan" through (every comparison with NaN is false): require a finite
  // number of seconds, at most a day.
  app.add_option("--stats-interval", o.stats_interval_s, "print counters every S seconds")
      ->check(CLI::Validator(
          [](const std::string& text) -> std::string {
            double v = 0;
            std::istringstream in(text);
            in >> v;
            if (in.fail() || !in.eof() || !std::isfinite(v) || !(v >= 0) || v > 86400)
              return "expected a number of seconds, 0 (off) to 86400, found '" + text + "'";
            return {};
          },
          "SECONDS", "finite, 0..86400"));
  app.add_option("--burst", o.burst, "rx/tx burst size")
      ->check(CLI::Range(1u, dataplane::kMaxBurst));
  app.add_option("--rx-desc", o.rx_desc, "rx descriptors per queue")
      ->check(CLI::Range(uint16_t{32}, uint16_t{32768}));
  app.add_option("--tx-desc", o.tx_desc, "tx descriptors per queue")
      ->check(CLI::Range(uint16_t{32}, uint16_t{32768}));
  app.add_option("--tx-retries", o.tx_retries, "tx retries before dropping the rest of a burst")
      ->check(CLI::Range(0u, 1000000u));
  app.add_option("--idle-sleep", o.idle_sleep_us,
                 "microseconds to sleep after an empty polling round (default 0: busy poll)")
      ->check(CLI::Range(0u, 1000000u));
  app.add_option("--exit-when-idle", o.exit_when_idle_ms,
                 "stop once no lcore received a packet for MS milliseconds (finite inputs)")
      ->check(CLI::Range(1u, 86400000u));
  app.add_option("--mtu", o.mtu,
                 "port MTU (jumbo frames); default: af_packet ports follow their interface's MTU, "
                 "others keep the device's default")
      ->check(CLI::Range(68u, 65000u));
  app.add_option("--counters-file", o.counters_file, "write the final counters as JSON to FILE");
  app.add_option("--lock-dir", o.lock_dir,
                 "directory of the per-interface lock files that keep a second statewalld off "
                 "the same interfaces (default /run/statewall)");
  app.add_option("--control-socket", o.control_socket,
                 "serve the control API (statewall ctl) on this Unix socket (mode 0600)");
  app.add_option("--control-listen", o.control_listen,
                 "also serve it on a loopback TCP address, 127.0.0.1:PORT or [::1]:PORT; "
                 "needs --control-token-file");
  app.add_option("--control-token-file", o.control_token_file,
                 "file holding the bearer token every TCP control request must carry")
      ->check(CLI::ExistingFile);
}

}  // namespace

std::string checkControlListen(const std::string& text) {
  const std::string what = "--control-listen " + text + ": ";
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos) return what + "expected HOST:PORT, e.g. 127.0.0.1:9180";
  std::string host = text.substr(0, colon);
  const std::string port = text.substr(colon + 1);
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value > 65535)
    return what + "the port must be a number in 0..65535";
  bool v6 = false;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
    v6 = true;
  }
  if (host == "localhost" && !v6) return {};
  unsigned char addr[16];
  if (!v6 && inet_pton(AF_INET, host.c_str(), addr) == 1) {
    if (addr[0] == 127) return {};
  } else if (inet_pton(AF_INET6, host.c_str(), addr) == 1) {
    if (!v6) return what + "write an IPv6 address in brackets, e.g. [::1]:9180";
    static constexpr unsigned char kLoopback6[16] = {0, 0, 0, 0, 0, 0, 0, 0,
                                                     0, 0, 0, 0, 0, 0, 0, 1};
    if (std::equal(addr, addr + 16, kLoopback6)) return {};
  } else {
    return what + "the host must be an IP address or localhost";
  }
  return what +
         "only loopback addresses are allowed (127.0.0.1, [::1]): the API has no TLS; "
         "reach it from elsewhere through an SSH tunnel";
}

std::string usage(const std::string& program) {
  Options o;
  CLI::App app{"statewalld: stateful security-group firewall between two DPDK ports", program};
  define(app, o);
  std::ostringstream s;
  s << "usage: " << program << " [EAL args] -- [options]\n\n" << app.help();
  return s.str();
}

ParseResult parseOptions(int argc, const char* const* argv) {
  ParseResult r;
  Options o;
  const std::string program = argc > 0 && argv[0] != nullptr ? argv[0] : "statewalld";
  CLI::App app{"statewalld: stateful security-group firewall between two DPDK ports", program};
  define(app, o);
  std::vector<std::string> args;
  for (int i = argc - 1; i >= 1; --i)
    args.emplace_back(argv[i]);  // CLI11 wants them reversed
  try {
    app.parse(args);
  } catch (const CLI::CallForHelp&) {
    r.exit_code = 0;
    r.message = usage(program);
    return r;
  } catch (const CLI::ParseError& e) {
    r.exit_code = 2;
    r.message = std::string(program) + ": " + e.what() + "\n(run with -- --help for the options)";
    return r;
  }
  if (o.inside == o.outside) {
    r.exit_code = 2;
    r.message = program + ": --inside and --outside must be different ports";
    return r;
  }
  auto fail = [&](const std::string& message) {
    r.exit_code = 2;
    r.message = program + ": " + message;
    return r;
  };
  if (!o.control_listen.empty()) {
    if (std::string err = checkControlListen(o.control_listen); !err.empty()) return fail(err);
    if (o.control_token_file.empty())
      return fail(
          "--control-listen needs --control-token-file: every TCP control request must "
          "carry the token it holds");
  } else if (!o.control_token_file.empty()) {
    return fail("--control-token-file is for the TCP listener: give --control-listen too");
  }
  // sockaddr_un::sun_path holds 108 bytes with the terminating NUL.
  if (o.control_socket.size() > 107)
    return fail("--control-socket " + o.control_socket +
                ": longer than 107 bytes, the limit of a Unix socket path");
  r.options = std::move(o);
  return r;
}

}  // namespace statewall::dpdk
