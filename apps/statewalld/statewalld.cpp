// statewalld: EAL init, options, policy, control server, run until a signal (or idle input),
// final report.
#include "statewalld.hpp"

#include <malloc.h>
#include <pthread.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_log.h>
#include <rte_version.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>
#ifdef STATEWALL_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "statewall/control/server.hpp"
#include "statewall/dataplane/engine.hpp"
#include "statewall/dpdk/appliance.hpp"
#include "statewall/dpdk/flow_log.hpp"
#include "statewall/dpdk/mtu.hpp"
#include "statewall/dpdk/options.hpp"
#include "statewall/dpdk/port_lock.hpp"
#include "statewall/dpdk/report.hpp"
#include "statewall/rules/compiled.hpp"
#include "statewall/rules/load_compile.hpp"
#include "statewall/rules/loader.hpp"

namespace statewall::dpdk {
namespace {

volatile std::sig_atomic_t g_signal = 0;
volatile std::sig_atomic_t g_reload = 0;  // SIGHUP: reload the policy files

// What a change through the control API is told (and the log says): statewalld starts from its
// policy files, so a change made at run time lasts until the next restart. (A state file that
// overrode the files at start would make the files lie about what runs; the files stay the one
// source, and SIGHUP reloads them.)
constexpr const char* kRuntimeChangeWarning =
    "this change is not kept across a restart: statewalld starts from its policy files; put it "
    "in them (SIGHUP reloads them)";
// Set while the main loop reloads the files on SIGHUP, so that the publication it makes is not
// logged as a runtime change.
std::atomic<bool> g_reloading{false};

// A forwarding lcore whose progress counters stand still this long is reported stuck
// (GET /v1/health answers 503). Its loop sweeps at least every millisecond or so even when idle
// (--idle-sleep is at most 1 s), so this is far beyond any healthy pause.
constexpr double kStallSeconds = 5;

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
  struct sigaction hup;
  std::memset(&hup, 0, sizeof hup);
  hup.sa_handler = [](int) { g_reload = 1; };
  sigemptyset(&hup.sa_mask);
  sigaction(SIGHUP, &hup, nullptr);
}

// The prefix of every line statewalld writes, its own and DPDK's: the program's file name.
std::string g_program = "statewalld";

// DPDK's log lines ("EAL: ...", "rte_pmd_init_internals(): ...") get the same prefix, with
// "dpdk: " after it, so that every line says who wrote it. DPDK writes each message with one
// vfprintf and a fflush; a line may arrive in pieces, hence the line-start state.
bool g_dpdk_line_start = true;

// Called under the stream's lock, possibly from a forwarding lcore (a PMD reporting an error):
// no allocation, a stack buffer written out as it fills.
ssize_t writeDpdkLog(void*, const char* buf, size_t size) {
  char out[512];
  size_t used = 0;
  auto flush = [&] {
    size_t done = 0;
    while (done < used) {
      const ssize_t n = ::write(STDERR_FILENO, out + done, used - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      done += static_cast<size_t>(n);
    }
    used = 0;
  };
  auto put = [&](char c) {
    if (used == sizeof out) flush();
    out[used++] = c;
  };
  for (size_t i = 0; i < size; ++i) {
    if (g_dpdk_line_start) {
      for (char c : g_program)
        put(c);
      for (char c : std::string_view(": dpdk: "))
        put(c);
    }
    put(buf[i]);
    g_dpdk_line_start = buf[i] == '\n';
  }
  flush();
  return static_cast<ssize_t>(size);
}

void prefixDpdkLog() {
  cookie_io_functions_t io{};
  io.write = writeDpdkLog;
  if (FILE* f = fopencookie(nullptr, "w", io); f != nullptr) rte_openlog_stream(f);
}

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

// Loads and compiles the policy files; *sources gets their texts (for GET /v1/policy).
rules::CompiledPolicyPtr loadPolicy(const std::vector<std::string>& paths,
                                    std::vector<rules::SourceText>* sources) {
  for (const std::string& path : paths) {
    std::string error;  // loadPolicyFiles says what is wrong with the file
    std::optional<std::string> text =
        rules::readFileCapped(path, rules::kMaxPolicyFileBytes, &error);
    if (!text) break;
    sources->push_back({path, std::move(*text)});
  }
  rules::LoadCompileResult loaded = sources->size() == paths.size()
                                        ? rules::loadAndCompile(*sources)
                                        : rules::loadAndCompile(paths);
  if (sources->size() != paths.size()) sources->clear();
  for (const rules::Diagnostic& d : loaded.diagnostics)
    std::fprintf(stderr, "%s\n", d.str().c_str());
  return loaded.policy;
}

// Where the control server's threads may run: the CPUs statewalld was started on, minus those of
// the forwarding lcores. When every CPU forwards, the main lcore's CPUs (which then share with a
// forwarding lcore only if EAL was told to map them together); *shared says so.
cpu_set_t controlCpus(const cpu_set_t& original, const std::vector<unsigned>& forwarding,
                      bool* shared) {
  cpu_set_t set = original;
  for (unsigned l : forwarding) {
    const rte_cpuset_t lcore_set = rte_lcore_cpuset(l);
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu)
      if (CPU_ISSET(cpu, &lcore_set)) CPU_CLR(cpu, &set);
  }
  *shared = CPU_COUNT(&set) == 0;
  if (*shared) set = rte_lcore_cpuset(rte_get_main_lcore());
  return set;
}

std::string cpuList(const cpu_set_t& set) {
  std::string out;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu)
    if (CPU_ISSET(cpu, &set)) out += (out.empty() ? "" : ",") + std::to_string(cpu);
  return out;
}

// What the main loop measures once a second for the control API and the service manager:
// per-lcore receive rates and whether every forwarding lcore makes progress (a non-empty burst
// or an idle sweep: each loop round does one or the other within kIdleSweepPeriodNs, so a
// counter that stops moving means a stuck lcore). Written by the main loop, read by control
// threads.
class HostBoard {
 public:
  explicit HostBoard(double stall_seconds) : stall_seconds_(stall_seconds) {}

  void update(const Report& previous, const Report& now, double now_s) {
    std::vector<control::LcoreRate> rates;
    for (const LcoreRxRate& r : lcoreRxRates(previous, now))
      rates.push_back({r.lcore, r.packets_per_second, r.bytes_per_second});
    std::lock_guard lock(mu_);
    rates_ = std::move(rates);
    progress_.resize(now.lcores.size(), {0, now_s});
    stalled_.clear();
    for (size_t i = 0; i < now.lcores.size(); ++i) {
      const uint64_t marker = now.lcores[i].rx_bursts + now.lcores[i].sweeps;
      if (marker != progress_[i].marker) progress_[i] = {marker, now_s};
      const double quiet = now_s - progress_[i].at;
      if (quiet > stall_seconds_) {
        char buf[96];
        std::snprintf(buf, sizeof buf, "%slcore %u made no progress for %.1f s",
                      stalled_.empty() ? "" : "; ", now.lcores[i].lcore, quiet);
        stalled_ += buf;
      }
    }
  }
  std::vector<control::LcoreRate> rates() const {
    std::lock_guard lock(mu_);
    return rates_;
  }
  // Every forwarding lcore progressed within the stall limit (as of the last update).
  control::HostHealth health() const {
    std::lock_guard lock(mu_);
    return {stalled_.empty(), stalled_};
  }

 private:
  struct Progress {
    uint64_t marker;
    double at;  // when the marker last moved
  };
  const double stall_seconds_;
  mutable std::mutex mu_;
  std::vector<control::LcoreRate> rates_;
  std::vector<Progress> progress_;
  std::string stalled_;
};

// The drop log: the denied packets the lcores recorded, the last kDropLogSize of them, numbered.
// The main loop appends what it drains from the lcores' rings; control threads read.
class DropLog {
 public:
  static constexpr size_t kDropLogSize = 4096;

  void append(const std::vector<DropRecord>& records) {
    std::lock_guard lock(mu_);
    for (const DropRecord& r : records) {
      control::DropEvent e;
      e.seq = ++last_seq_;
      e.time_ns = r.time_ns;
      e.policy_version = r.policy_version;
      e.ip = r.ip;
      e.src = r.src;
      e.dst = r.dst;
      e.sport = r.sport;
      e.dport = r.dport;
      e.proto = r.proto;
      e.port = r.port == 0 ? "inside" : r.port == 1 ? "outside" : "gwlb";
      e.reason = static_cast<uint8_t>(r.reason);
      e.deny_dir = r.deny_dir;
      e.deny_iface = r.deny_iface;
      e.acl_entry = r.acl_entry;
      if (r.why != nullptr) e.why = r.why;
      events_.push_back(std::move(e));
      if (events_.size() > kDropLogSize) {
        events_.pop_front();
        ++overwritten_;
      }
    }
  }
  void setUnlogged(uint64_t n) {
    std::lock_guard lock(mu_);
    unlogged_ = n;
  }
  control::DropsPage page(uint64_t after, size_t limit) const {
    control::DropsPage p;
    std::lock_guard lock(mu_);
    for (const control::DropEvent& e : events_)
      if (e.seq > after && p.drops.size() < limit) p.drops.push_back(e);
    p.unlogged = unlogged_;
    p.overwritten = overwritten_;
    return p;
  }

 private:
  mutable std::mutex mu_;
  std::deque<control::DropEvent> events_;
  uint64_t last_seq_ = 0;
  uint64_t unlogged_ = 0;
  uint64_t overwritten_ = 0;
};

// The I/O side of a report, for /metrics and GET /v1/stats.
control::HostIo hostIo(const Report& r) {
  control::HostIo io;
  for (const PortReport& p : r.ports)
    io.ports.push_back({p.role, p.name, p.ipackets, p.ibytes, p.opackets, p.obytes, p.imissed,
                        p.ierrors, p.oerrors, p.rx_nombuf});
  io.tx_dropped = r.io.tx_dropped;
  io.oversize = r.io.oversize;
  io.mbufs_capacity = r.pool.size;
  io.mbufs_in_use = r.pool.size - std::min(r.pool.size, r.pool.available);
  io.flow_log = r.flow_log;
  io.flow_log_records = r.flow_log_records;
  io.flow_log_dropped = r.flow_log_dropped;
  io.gwlb = r.gwlb_mode;
  io.gwlb_geneve = r.gwlb.geneve;
  io.gwlb_returned = r.gwlb.returned;
  io.gwlb_malformed = r.gwlb.malformed;
  io.gwlb_not_geneve = r.gwlb.not_geneve;
  io.gwlb_to_kernel = r.gwlb.to_kernel;
  io.gwlb_from_kernel = r.gwlb.from_kernel;
  io.gwlb_kernel_dropped = r.gwlb.kernel_dropped;
  return io;
}

// The service manager (systemd, Type=notify): READY=1 once the ports are up and the lcores
// forward, WATCHDOG=1 from the main lcore at half the watchdog period, but only while every
// forwarding lcore makes progress (HostBoard), STOPPING=1 on the way out. Without a
// NOTIFY_SOCKET in the environment every call is a no-op.
class ServiceManager {
 public:
  ServiceManager() {
#ifdef STATEWALL_HAVE_SYSTEMD
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0)
      watchdog_period_s_ = static_cast<double>(usec) / 2e6;
#else
    if (std::getenv("NOTIFY_SOCKET") != nullptr)
      std::fprintf(stderr,
                   "%s: warning: a service manager asks for notifications (NOTIFY_SOCKET), but "
                   "this statewalld was built without libsystemd: no readiness or watchdog "
                   "(a Type=notify unit will time out; rebuild with libsystemd-dev or use "
                   "Type=simple)\n",
                   g_program.c_str());
#endif
  }
  void notify(const std::string& state) {
#ifdef STATEWALL_HAVE_SYSTEMD
    sd_notify(0, state.c_str());
#else
    (void)state;
#endif
  }
  // Called by the main loop: the watchdog keep-alive when it is due and the lcores progress.
  void tick(double now_s, const HostBoard& board) {
    if (watchdog_period_s_ <= 0 || now_s < next_watchdog_s_) return;
    next_watchdog_s_ = now_s + watchdog_period_s_;
    const control::HostHealth health = board.health();
    if (health.ok) {
      notify("WATCHDOG=1");
      withheld_ = false;
    } else if (!withheld_) {
      withheld_ = true;
      std::fprintf(stderr, "%s: withholding the watchdog keep-alive: %s\n", g_program.c_str(),
                   health.detail.c_str());
    }
  }

 private:
  double watchdog_period_s_ = 0;
  double next_watchdog_s_ = 0;
  bool withheld_ = false;
};

// SIGHUP: loads the policy files again and publishes them (through the control API when it
// runs, so that GET /v1/policy shows the files). A file that does not load keeps the running
// policy; either way the log says what happened.
void reloadPolicy(const Options& options, Appliance& app, control::ControlServer* server) {
  std::printf("%s: SIGHUP: reloading the policy files\n", g_program.c_str());
  std::fflush(stdout);
  std::vector<rules::SourceText> sources;
  rules::CompiledPolicyPtr policy = loadPolicy(options.policies, &sources);
  if (!policy) {
    std::fprintf(stderr,
                 "%s: SIGHUP: the policy files did not load (see above); the running policy "
                 "(version %llu) stays\n",
                 g_program.c_str(), static_cast<unsigned long long>(app.engine().policyVersion()));
    return;
  }
  g_reloading = true;
  if (server != nullptr && !sources.empty()) {
    nlohmann::json bundle = {{"documents", nlohmann::json::array()}};
    for (const rules::SourceText& d : sources)
      bundle["documents"].push_back({{"name", d.name}, {"text", d.text}});
    const control::ApiResponse r = server->api().handle(
        {"PUT", "/v1/policy", std::string(control::kBundleContentType),
         bundle.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)});
    if (r.status != 200)
      std::fprintf(stderr, "%s: SIGHUP: the policy was not published: %s\n", g_program.c_str(),
                   r.body.c_str());
  } else {
    app.engine().publish(policy);
  }
  g_reloading = false;
  const dataplane::Engine::Published running = app.engine().publishedPolicy();
  std::printf("%s: SIGHUP: running policy version %llu (%zu interface(s), %zu rule(s))\n",
              g_program.c_str(), static_cast<unsigned long long>(running.version),
              running.policy->ifaceCount(), running.policy->ruleCount());
  std::fflush(stdout);
}

// Builds and starts the control server, or returns null with *error set.
std::unique_ptr<control::ControlServer> startControl(const Options& options, Appliance& app,
                                                     std::vector<rules::SourceText> sources,
                                                     const cpu_set_t& original_cpus,
                                                     HostBoard& board, DropLog& drops,
                                                     std::string* error) {
  bool shared = false;
  const cpu_set_t cpus = controlCpus(original_cpus, app.lcores(), &shared);
  control::ServerOptions so;
  so.unix_socket = options.control_socket;
  so.tcp_listen = options.control_listen;
  so.token_file = options.control_token_file;
  so.health_port = options.health_port;
  // A token file others may read, an exception a control thread survived.
  so.warn = [](const std::string& w) {
    std::fprintf(stderr, "%s: warning: %s\n", g_program.c_str(), w.c_str());
  };
  so.api.initial_sources = std::move(sources);
  so.api.dpdk_version = rte_version();
  so.api.runtime_change_warning = kRuntimeChangeWarning;
  // Threads inherit the main lcore's affinity; move them off every forwarding lcore's CPU.
  so.thread_init = [cpus] {
    if (int rc = pthread_setaffinity_np(pthread_self(), sizeof cpus, &cpus); rc != 0)
      std::fprintf(stderr, "%s: control thread: cannot set its CPU affinity: %s\n",
                   g_program.c_str(), std::strerror(rc));
  };
  control::HostHooks hooks;
  hooks.now_ns = [&app] { return app.engineNowNs(); };
  hooks.lcore_rates = [&board] { return board.rates(); };
  hooks.io = [&app] { return hostIo(app.report()); };
  // Healthy while every forwarding lcore makes progress and a policy is loaded: what the
  // watchdog and a load balancer's health check (--health-port) must both see.
  hooks.health = [&board, &app] {
    control::HostHealth h = board.health();
    if (!app.engine().policy()) h = {false, "no policy loaded"};
    return h;
  };
  hooks.drops = [&drops](uint64_t after, size_t limit) { return drops.page(after, limit); };
  hooks.on_publish = [&app](uint64_t version) {
    const rules::CompiledPolicyPtr p = app.engine().policy();
    std::printf("%s: control: published policy version %llu (%zu interface(s), %zu rule(s))%s\n",
                g_program.c_str(), static_cast<unsigned long long>(version), p->ifaceCount(),
                p->ruleCount(),
                g_reloading.load() ? "" : (std::string("; ") + kRuntimeChangeWarning).c_str());
    std::fflush(stdout);
  };
  auto server = std::make_unique<control::ControlServer>(app.engine(), std::move(so), hooks);
  if (control::Status st = server->start(); !st.ok()) {
    *error = "control server: " + st.message();
    return nullptr;
  }
  std::string where;
  if (!options.control_socket.empty()) where = "unix " + options.control_socket;
  if (!options.control_listen.empty()) {
    const std::string host = options.control_listen.substr(0, options.control_listen.rfind(':'));
    where += std::string(where.empty() ? "" : ", ") + "tcp " + host + ":" +
             std::to_string(server->tcpPort()) + " (bearer token)";
  }
  if (options.health_port != 0)
    where += std::string(where.empty() ? "" : ", ") +
             "health check on tcp 0.0.0.0:" + std::to_string(options.health_port);
  std::printf("%s: control API on %s; its threads run on CPU %s%s\n", g_program.c_str(),
              where.c_str(), cpuList(cpus).c_str(),
              shared ? " (shared with a forwarding lcore: every CPU forwards)" : "");
  return server;
}

bool writeFile(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::trunc);
  f << text;
  f.close();
  return static_cast<bool>(f);
}

// The test hooks (RunOptions::test_hooks): STATEWALLD_TEST_STALL_FILE names a file; while it
// exists, the forwarding lcore whose id it holds is stalled (Appliance::stallLcoreForTest).
// Checked by the main loop every round.
class TestHooks {
 public:
  explicit TestHooks(bool enabled) {
    const char* path = enabled ? std::getenv("STATEWALLD_TEST_STALL_FILE") : nullptr;
    if (path != nullptr) stall_file_ = path;
  }
  void poll(Appliance& app) {
    if (stall_file_.empty()) return;
    std::ifstream f(stall_file_);
    long lcore = -1;
    if (f) f >> lcore;
    if (lcore == requested_) return;
    requested_ = lcore;
    if (stalled_ >= 0) app.stallLcoreForTest(static_cast<unsigned>(stalled_), false);
    stalled_ = -1;
    if (lcore >= 0 && app.stallLcoreForTest(static_cast<unsigned>(lcore), true)) stalled_ = lcore;
    std::fprintf(stderr, "%s: test hook: %s\n", g_program.c_str(),
                 stalled_ >= 0 ? ("lcore " + std::to_string(stalled_) + " stalled").c_str()
                               : "no lcore stalled");
  }

 private:
  std::string stall_file_;
  long requested_ = -1;  // what the file said last
  long stalled_ = -1;
};

int run(int argc, char** argv, const RunOptions& run_options) {
  if (argc > 0 && argv[0] != nullptr) {
    const std::string_view path = argv[0];
    g_program = std::string(path.substr(path.rfind('/') + 1));
    if (g_program.empty()) g_program = "statewalld";
  }
  if (wantsAppHelp(argc, argv)) {
    std::fputs(usage(g_program).c_str(), stdout);
    return 0;
  }
  // The CPUs we were given, before EAL pins this thread to the main lcore: the control server's
  // threads run on those of them that no forwarding lcore uses.
  cpu_set_t original_cpus;
  CPU_ZERO(&original_cpus);
  if (sched_getaffinity(0, sizeof original_cpus, &original_cpus) != 0) CPU_ZERO(&original_cpus);
  rte_set_application_usage_hook(printAppUsage);
  prefixDpdkLog();
  // What must be known before EAL probes the devices (--mtu for af_packet slots, --lock-dir for
  // the interface locks): the application's options parsed ahead, --config included. Options
  // that do not parse are reported after EAL initialisation, as usual; the defaults serve until
  // then.
  std::vector<std::string> eal_strings(argv, argv + argc);
  const auto dashes = std::find(eal_strings.begin(), eal_strings.end(), std::string("--"));
  Options early;
  {
    std::vector<const char*> app_args = {g_program.c_str()};
    for (auto it = dashes == eal_strings.end() ? dashes : dashes + 1; it != eal_strings.end(); ++it)
      app_args.push_back(it->c_str());
    ParseResult ahead = parseOptions(static_cast<int>(app_args.size()), app_args.data());
    if (ahead.options) early = *ahead.options;
  }
  // af_packet ports on jumbo-frame interfaces get ring slots that hold a whole frame (mtu.hpp):
  // their sizes are device arguments, so they are added before EAL probes the devices.
  std::vector<std::string> sizing_notes;
  {
    std::vector<std::string> eal_part(eal_strings.begin(), dashes);
    eal_part = sizeAfPacketVdevs(eal_part, early.mtu, interfaceMtu,
                                 static_cast<uint32_t>(sysconf(_SC_PAGESIZE)), &sizing_notes);
    eal_part.insert(eal_part.end(), dashes, eal_strings.end());
    eal_strings = std::move(eal_part);
  }
  // One statewalld per interface (port_lock.hpp): the vdev interfaces are locked before EAL
  // probes them, since a second af_packet socket on a busy interface can fail inside the driver
  // with a message that names no cause. The appliance locks every port again after probing
  // (PCI devices); a lock held here counts there.
  std::vector<PortLock> early_locks;
  {
    const auto eal_end = std::find(eal_strings.begin(), eal_strings.end(), std::string("--"));
    std::string why;
    if (!lockVdevInterfaces(std::vector<std::string>(eal_strings.begin(), eal_end), early.lock_dir,
                            &early_locks, &why)) {
      std::fprintf(stderr, "%s: %s\n", g_program.c_str(), why.c_str());
      return 2;
    }
  }
  std::vector<char*> eal_argv;
  for (std::string& a : eal_strings)
    eal_argv.push_back(a.data());
  eal_argv.push_back(nullptr);
  argc = static_cast<int>(eal_strings.size());
  argv = eal_argv.data();
  const int eal_args = rte_eal_init(argc, argv);
  if (eal_args < 0) {
    std::fprintf(stderr,
                 "%s: EAL initialisation failed: %s\n"
                 "EAL arguments come before `--`, statewalld's after it; without hugepages use "
                 "--no-huge -m 512 (see dataplane/dpdk/README.md)\n",
                 g_program.c_str(), rte_strerror(rte_errno));
    return 2;
  }
  // The EAL is released on every way out from here, after the appliance and the control server
  // (declared later, so destroyed first).
  struct EalCleanup {
    ~EalCleanup() { rte_eal_cleanup(); }
  } eal_cleanup;
  argc -= eal_args;
  argv += eal_args;

  // Messages name the program as every other line does.
  std::vector<const char*> app_args(argv, argv + argc);
  if (!app_args.empty()) app_args[0] = g_program.c_str();
  ParseResult parsed = parseOptions(static_cast<int>(app_args.size()), app_args.data());
  if (!parsed.options) {
    std::fprintf(parsed.exit_code == 0 ? stdout : stderr, "%s\n", parsed.message.c_str());
    return parsed.exit_code;
  }
  const Options& options = *parsed.options;

  std::vector<rules::SourceText> sources;
  rules::CompiledPolicyPtr policy = loadPolicy(options.policies, &sources);
  if (!policy) {
    std::fprintf(stderr, "%s: the policy did not load; nothing forwarded\n", g_program.c_str());
    return 2;
  }

  int exit_code = 0;
  {
    std::string error;
    std::unique_ptr<FlowLogCollector> flow_log;  // outlives the appliance's lcores
    std::unique_ptr<Appliance> app = Appliance::create(options, policy, &error);
    if (!app || !attachFlowLog(options, *app, &flow_log, &error)) {
      std::fprintf(stderr, "%s: %s\n", g_program.c_str(), error.c_str());
      return 2;
    }
    // Declared after the appliance so that it is destroyed (its threads joined) before the
    // engine it serves.
    HostBoard board(kStallSeconds);
    DropLog drop_log;
    std::vector<DropRecord> drained;
    std::unique_ptr<control::ControlServer> server;
    if (options.controlEnabled()) {
      server =
          startControl(options, *app, std::move(sources), original_cpus, board, drop_log, &error);
      if (!server) {
        std::fprintf(stderr, "%s: %s\n", g_program.c_str(), error.c_str());
        app.reset();
        return 2;
      }
    }
    for (const std::string& note : sizing_notes)
      std::printf("%s: %s\n", g_program.c_str(), note.c_str());
    for (const std::string& note : app->notes())
      std::printf("%s: %s\n", g_program.c_str(), note.c_str());
    for (const std::string& w : app->warnings())
      std::fprintf(stderr, "%s: warning: %s\n", g_program.c_str(), w.c_str());
    installSignalHandlers();
    if (!app->start(&error)) {
      std::fprintf(stderr, "%s: %s\n", g_program.c_str(), error.c_str());
      server.reset();
      app.reset();
      return 2;
    }
    const Report first = app->report();
    std::printf("%s: policy %zu interface(s), %zu rule(s); table %zu; lcores", g_program.c_str(),
                policy->ifaceCount(), policy->ruleCount(), app->engine().capacity());
    for (unsigned l : app->lcores())
      std::printf(" %u", l);
    std::printf("\n");
    for (const PortReport& p : first.ports)
      std::printf("%s: %s %s (port %u): %u rx / %u tx queues%s%s\n", g_program.c_str(),
                  p.role.c_str(), p.name.c_str(), p.port_id, p.rx_queues, p.tx_queues,
                  p.rss ? ", RSS" : "",
                  p.mtu != 0 ? (", MTU " + std::to_string(p.mtu)).c_str() : "");
    std::printf("%s: running\n", g_program.c_str());
    std::fflush(stdout);
    ServiceManager service;
    service.notify("READY=1\nSTATUS=forwarding");
    TestHooks test_hooks(run_options.test_hooks);

    Report previous = first;
    Report rates_previous = first;
    double next_stats = monotonicSeconds() + options.stats_interval_s;
    double next_rates = monotonicSeconds() + 1;
    while (g_signal == 0) {
      sleepMs(10);
      if (g_reload != 0) {
        g_reload = 0;
        service.notify("RELOADING=1");
        reloadPolicy(options, *app, server.get());
        service.notify("READY=1");
      }
      test_hooks.poll(*app);
      if (flow_log) flow_log->poll(app->engine());
      service.tick(monotonicSeconds(), board);
      // The lcores' drop rings, emptied every round (10 ms) so that they rarely fill.
      drained.clear();
      if (app->drainDrops(&drained) > 0) {
        drop_log.append(drained);
        if (server) server->notifyDrops();  // the held GET /v1/drops?follow=1 streams
      }
      if (options.exit_when_idle_ms > 0 && app->allIdle()) break;
      if (monotonicSeconds() >= next_rates) {
        // A replaced policy is freed once every lcore has passed a quiescent point; the lcores
        // never stop, so publish() alone would keep it until the next load.
        if (app->engine().reclaimRetiredPolicies() > 0) ::malloc_trim(0);
        Report now = app->report();
        board.update(rates_previous, now, monotonicSeconds());
        drop_log.setUnlogged(now.io.drops_unlogged);
        rates_previous = std::move(now);
        next_rates += 1;
      }
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
    service.notify("STOPPING=1");
    // Control first: nothing can change the policy or the table while the lcores wind down.
    server.reset();
    app->requestStop();
    app->stop();
    if (flow_log && !flow_log->finish(&error)) {
      std::fprintf(stderr, "%s: --flow-log %s: %s\n", g_program.c_str(), options.flow_log.c_str(),
                   error.c_str());
      exit_code = 2;
    }
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
  return exit_code;
}

}  // namespace

int runStatewalld(int argc, char** argv, const RunOptions& run_options) {
  return run(argc, argv, run_options);
}

}  // namespace statewall::dpdk
