#include "statewall/dpdk/options.hpp"

#include <arpa/inet.h>
#include <net/if.h>

#include <yaml-cpp/yaml.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <sstream>

#include "statewall/dataplane/engine.hpp"
#include "statewall/dpdk/exception.hpp"
#include "statewall/rules/files.hpp"
#include "statewall/rules/ip.hpp"

namespace statewall::dpdk {
namespace {

constexpr size_t kMaxConfigBytes = 1 << 20;

// True when `args` give option `name` ("--name" or "--name=...").
bool given(const std::vector<std::string>& args, const std::string& name) {
  for (const std::string& a : args)
    if (a == name || a.rfind(name + "=", 0) == 0) return true;
  return false;
}

// The options of a --config file as arguments, for the keys the command line does not give
// (flags override the file). Keys are the long option names without "--"; a list repeats the
// option (policy: [a.yaml, b.yaml]); true/false for flags. Relative policy, token and counters
// paths are taken from the file's directory. Empty on success, else what is wrong and where.
std::string configArgs(const std::string& path, const CLI::App& app,
                       const std::vector<std::string>& command_line,
                       std::vector<std::string>* out) {
  std::string error;
  std::optional<std::string> text = rules::readFileCapped(path, kMaxConfigBytes, &error);
  if (!text) return path + ": " + error;
  YAML::Node root;
  try {
    root = YAML::Load(*text);
  } catch (const YAML::Exception& e) {
    return path + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) +
           ": " + e.msg;
  }
  if (root.IsNull()) return "";
  if (!root.IsMap()) return path + ": expected a mapping of option names to values";
  const std::filesystem::path base = std::filesystem::path(path).parent_path();
  auto where = [&](const YAML::Node& n) { return path + ":" + std::to_string(n.Mark().line + 1); };
  for (const auto& kv : root) {
    if (!kv.first.IsScalar()) return where(kv.first) + ": expected an option name";
    const std::string key = kv.first.Scalar();
    const std::string flag = "--" + key;
    const CLI::Option* opt = key == "config" ? nullptr : app.get_option_no_throw(flag);
    if (opt == nullptr)
      return where(kv.first) + ": unknown option '" + key + "' (the long options of --help, " +
             "without the dashes)";
    if (given(command_line, flag)) continue;
    std::vector<YAML::Node> values;
    if (kv.second.IsSequence()) {
      for (const auto& v : kv.second)
        values.push_back(v);
    } else {
      values.push_back(kv.second);
    }
    for (const YAML::Node& v : values) {
      if (!v.IsScalar()) return where(v) + ": " + key + ": expected a value or a list of values";
      std::string value = v.Scalar();
      if (opt->get_items_expected_max() == 0) {  // a flag
        if (value == "true")
          out->push_back(flag);
        else if (value != "false")
          return where(v) + ": " + key + ": expected true or false";
        continue;
      }
      // An option whose value may be left out (--exception-tap): true gives it bare, false not.
      if (opt->get_items_expected_min() == 0 && (value == "true" || value == "false")) {
        if (value == "true") out->push_back(flag);
        continue;
      }
      const bool is_path = key == "policy" || key == "control-token-file" ||
                           key == "counters-file" || key == "control-socket" || key == "lock-dir" ||
                           (key == "flow-log" && value != "-");
      if (is_path && !value.empty() && value[0] != '/' && !base.empty())
        value = (base / value).string();
      out->push_back(flag);
      out->push_back(value);
    }
  }
  return "";
}

void defineFlowLog(CLI::App& app, Options& o) {
  app.add_option("--flow-log", o.flow_log,
                 "write AWS VPC Flow Logs records (version 5 text, as statewall replay "
                 "--flow-log) to FILE, - for standard output");
  app.add_option("--flow-log-interval", o.flow_log_interval,
                 "flow-log aggregation interval, seconds (default 60)")
      ->check(CLI::Range(1u, 86400u));
  app.add_flag("--flow-log-jsonl", o.flow_log_jsonl,
               "flow-log records as JSON lines with the deciding rule and reason");
  app.add_option("--flow-log-flows", o.flow_log_flows,
                 "flows each lcore aggregates at once (default 65536; when full, the window's "
                 "records are written early)")
      ->check(CLI::Range(1u, 1u << 24));
  app.add_option("--flow-log-ring", o.flow_log_ring,
                 "records each lcore's ring to the writer holds (default 16384; beyond, records "
                 "are dropped and counted, never packets)")
      ->check(CLI::Range(1u, 1u << 24));
}

void define(CLI::App& app, Options& o) {
  app.add_option("--config", o.config_file,
                 "read options from this YAML file (keys: the long options without --); "
                 "options on the command line override it");
  app.add_option("--policy", o.policies, "policy file (YAML or AWS JSON); repeat to merge several")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("--inside", o.inside, "inside port: port id or device name (e.g. net_pcap0)");
  app.add_option("--outside", o.outside, "outside port: port id or device name");
  app.add_flag("--gwlb", o.gwlb,
               "Gateway Load Balancer mode: one port (--port); GENEVE (UDP 6081) to --address is "
               "judged on its inner packet and what is allowed goes back out of the same port, "
               "outer addresses swapped (docs/deploy-gwlb.md)");
  app.add_option("--port", o.port, "--gwlb: the one port, a port id or device name");
  app.add_option("--address", o.address,
                 "--gwlb: the appliance's IP address on --port; /LEN adds the subnet's prefix "
                 "length for the exception tap's kernel address (default a host prefix)");
  app.add_option("--exception-tap", o.exception_tap,
                 "--gwlb: give ARP, ICMP and other non-GENEVE traffic to --address (the load "
                 "balancer's health checks) to the Linux stack through a DPDK net_tap port whose "
                 "kernel interface NAME (default " +
                     std::string(kDefaultExceptionTap) +
                     ") statewalld creates with the port's MAC address, MTU and --address; the "
                     "kernel's replies go out of --port")
      ->expected(0, 1)
      ->default_str(kDefaultExceptionTap);
  app.add_option("--health-port", o.health_port,
                 "serve the load balancer's HTTP health check on this TCP port: 200 while every "
                 "forwarding lcore makes progress and a policy is loaded, else 503")
      ->check(CLI::Range(1, 65535));
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
                 "others the largest both devices and links allow (docs/deploy.md)")
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
  defineFlowLog(app, o);
}

// --exception-tap NAME: a Linux interface name that also fits in a DPDK device argument.
std::string checkTapName(const std::string& name) {
  const std::string what = "--exception-tap " + name + ": ";
  if (name.size() >= IFNAMSIZ)
    return what + "an interface name has at most " + std::to_string(IFNAMSIZ - 1) + " characters";
  if (name == "." || name == "..") return what + "not a valid interface name";
  for (char c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.')
      return what + "use letters, digits, '-', '_' and '.' only";
  return "";
}

// The ports: --inside and --outside, or --gwlb with --port and --address.
std::string checkPorts(const Options& o) {
  if (o.gwlb) {
    if (!o.inside.empty() || !o.outside.empty())
      return "--gwlb uses one port (--port), not --inside and --outside";
    if (o.port.empty())
      return "--gwlb needs --port: the port the load balancer's GENEVE arrives on";
    if (o.address.empty())
      return "--gwlb needs --address: the appliance's IP address, the one the load balancer's "
             "GENEVE packets are sent to";
    if (!parseGwlbAddress(o.address))
      return "--address " + o.address +
             ": expected an IPv4 or IPv6 address, optionally with /LEN (0..32, 0..128)";
    if (!o.exception_tap.empty()) return checkTapName(o.exception_tap);
    return "";
  }
  if (!o.port.empty() || !o.address.empty() || !o.exception_tap.empty())
    return "--port, --address and --exception-tap are for --gwlb";
  if (o.inside.empty()) return "--inside is required";
  if (o.outside.empty()) return "--outside is required";
  if (o.inside == o.outside) return "--inside and --outside must be different ports";
  return "";
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
  std::vector<std::string> args(argv + std::min(argc, 1), argv + argc);
  for (size_t i = 0; i < args.size(); ++i) {
    std::string file;
    if (args[i] == "--config" && i + 1 < args.size()) {
      file = args[i + 1];
    } else if (args[i].rfind("--config=", 0) == 0) {
      file = args[i].substr(9);
    } else {
      continue;
    }
    std::vector<std::string> from_file;
    if (std::string err = configArgs(file, app, args, &from_file); !err.empty()) {
      r.exit_code = 2;
      r.message = program + ": --config " + err;
      return r;
    }
    args.insert(args.begin(), from_file.begin(), from_file.end());
    break;
  }
  std::reverse(args.begin(), args.end());  // CLI11 wants them reversed
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
  auto fail = [&](const std::string& message) {
    r.exit_code = 2;
    r.message = program + ": " + message;
    return r;
  };
  if (std::string err = checkPorts(o); !err.empty()) return fail(err);
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
