#include "statewall/dpdk/options.hpp"

#include <CLI/CLI.hpp>

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
  app.add_option("--stats-interval", o.stats_interval_s, "print counters every S seconds")
      ->check(CLI::NonNegativeNumber);
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
  app.add_option("--counters-file", o.counters_file, "write the final counters as JSON to FILE");
}

}  // namespace

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
  r.options = std::move(o);
  return r;
}

}  // namespace statewall::dpdk
