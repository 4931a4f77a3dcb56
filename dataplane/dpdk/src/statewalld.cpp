// statewalld: EAL init, options, policy, run until a signal (or idle input), final report.
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <string>
#include <string_view>

#include "statewall/dataplane/engine.hpp"
#include "statewall/dpdk/appliance.hpp"
#include "statewall/dpdk/options.hpp"
#include "statewall/dpdk/report.hpp"
#include "statewall/rules/compiled.hpp"
#include "statewall/rules/loader.hpp"

namespace statewall::dpdk {
namespace {

volatile std::sig_atomic_t g_signal = 0;

void onSignal(int sig) {
  g_signal = sig;
}

void installSignalHandlers() {
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_handler = onSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

std::string g_program = "statewalld";

void printAppUsage(const char* program) {
  std::fputs(("\n" + usage(program != nullptr ? program : "statewalld")).c_str(), stdout);
}

// `statewalld ... -- --help` prints our usage without initialising EAL.
bool wantsAppHelp(int argc, char** argv) {
  bool after = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (!after) {
      after = a == "--";
      continue;
    }
    if (a == "--help" || a == "-h") return true;
  }
  return false;
}

void sleepMs(unsigned ms) {
  timespec ts{static_cast<time_t>(ms / 1000), static_cast<long>(ms % 1000) * 1'000'000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR && g_signal == 0) {
  }
}

double monotonicSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

rules::CompiledPolicyPtr loadPolicy(const std::vector<std::string>& paths) {
  rules::LoadResult loaded = rules::loadPolicyFiles(paths);
  for (const rules::Diagnostic& d : loaded.diagnostics)
    std::fprintf(stderr, "%s\n", d.str().c_str());
  if (!loaded.ok()) return nullptr;
  rules::CompileResult compiled = rules::compile(*loaded.policy);
  for (const rules::Diagnostic& d : compiled.diagnostics)
    std::fprintf(stderr, "%s\n", d.str().c_str());
  return compiled.policy;
}

bool writeFile(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::trunc);
  f << text;
  f.close();
  return static_cast<bool>(f);
}

int run(int argc, char** argv) {
  if (argc > 0 && argv[0] != nullptr) g_program = argv[0];
  if (wantsAppHelp(argc, argv)) {
    std::fputs(usage(g_program).c_str(), stdout);
    return 0;
  }
  rte_set_application_usage_hook(printAppUsage);
  const int eal_args = rte_eal_init(argc, argv);
  if (eal_args < 0) {
    std::fprintf(stderr,
                 "%s: EAL initialisation failed: %s\n"
                 "EAL arguments come before `--`, statewalld's after it; without hugepages use "
                 "--no-huge -m 512 (see dataplane/dpdk/README.md)\n",
                 g_program.c_str(), rte_strerror(rte_errno));
    return 2;
  }
  argc -= eal_args;
  argv += eal_args;

  ParseResult parsed = parseOptions(argc, argv);
  if (!parsed.options) {
    std::fprintf(parsed.exit_code == 0 ? stdout : stderr, "%s\n", parsed.message.c_str());
    rte_eal_cleanup();
    return parsed.exit_code;
  }
  const Options& options = *parsed.options;

  rules::CompiledPolicyPtr policy = loadPolicy(options.policies);
  if (!policy) {
    std::fprintf(stderr, "%s: the policy did not load; nothing forwarded\n", g_program.c_str());
    rte_eal_cleanup();
    return 2;
  }

  int exit_code = 0;
  {
    std::string error;
    std::unique_ptr<Appliance> app = Appliance::create(options, policy, &error);
    if (!app) {
      std::fprintf(stderr, "%s: %s\n", g_program.c_str(), error.c_str());
      rte_eal_cleanup();
      return 2;
    }
    installSignalHandlers();
    if (!app->start(&error)) {
      std::fprintf(stderr, "%s: %s\n", g_program.c_str(), error.c_str());
      app.reset();
      rte_eal_cleanup();
      return 2;
    }
    const Report first = app->report();
    std::printf("%s: policy %zu interface(s), %zu rule(s); table %zu; lcores", g_program.c_str(),
                policy->ifaceCount(), policy->ruleCount(), app->engine().capacity());
    for (unsigned l : app->lcores())
      std::printf(" %u", l);
    std::printf("\n");
    for (const PortReport& p : first.ports)
      std::printf("%s: %s %s (port %u): %u rx / %u tx queues%s\n", g_program.c_str(),
                  p.role.c_str(), p.name.c_str(), p.port_id, p.rx_queues, p.tx_queues,
                  p.rss ? ", RSS" : "");
    std::printf("%s: running\n", g_program.c_str());
    std::fflush(stdout);

    Report previous = first;
    double next_stats = monotonicSeconds() + options.stats_interval_s;
    while (g_signal == 0) {
      sleepMs(10);
      if (options.exit_when_idle_ms > 0 && app->allIdle()) break;
      if (options.stats_interval_s > 0 && monotonicSeconds() >= next_stats) {
        Report now = app->report();
        std::printf("%s\n", formatStatsLine(now, &previous).c_str());
        std::fflush(stdout);
        previous = std::move(now);
        next_stats += options.stats_interval_s;
      }
    }
    if (g_signal != 0)
      std::printf("%s: %s: stopping\n", g_program.c_str(), strsignal(g_signal));
    else
      std::printf("%s: input idle for %u ms: stopping\n", g_program.c_str(),
                  options.exit_when_idle_ms);
    app->requestStop();
    app->stop();
    app->close();
    const Report final_report = app->report();
    std::fputs(formatReport(final_report).c_str(), stdout);
    std::fflush(stdout);
    if (!options.counters_file.empty() &&
        !writeFile(options.counters_file, reportJson(final_report))) {
      std::fprintf(stderr, "%s: cannot write %s: %s\n", g_program.c_str(),
                   options.counters_file.c_str(), std::strerror(errno));
      exit_code = 2;
    }
    if (!final_report.pool.full()) {
      std::fprintf(stderr, "%s: mbuf leak: %zu of %zu mbufs not returned to the pool\n",
                   g_program.c_str(), final_report.pool.size - final_report.pool.available,
                   final_report.pool.size);
      if (exit_code == 0) exit_code = 1;
    }
  }
  rte_eal_cleanup();
  return exit_code;
}

}  // namespace

int runStatewalld(int argc, char** argv) {
  return run(argc, argv);
}

}  // namespace statewall::dpdk
