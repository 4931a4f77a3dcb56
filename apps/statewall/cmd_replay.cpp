// `statewall replay`: what would this policy have let through in this capture, and why.
// With --pace and --control-socket it replays at the trace's own pace (or N times faster) while
// serving the control API, so that a person can watch connections and swap policies mid-trace.
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "commands.hpp"
#include "decap_flags.hpp"
#include "policy_input.hpp"
#include "statewall/control/server.hpp"
#include "statewall/rules/compiled.hpp"
#include "statewall/rules/loader.hpp"
#include "statewall/sim/expect.hpp"
#include "statewall/sim/replay.hpp"

namespace statewall::cli {
namespace {

struct ReplayArgs {
  std::vector<std::string> policies;
  std::vector<std::string> traces;
  bool json = false;
  std::string verdicts;
  std::string allowed;
  std::string denied;
  std::string connections;
  std::string connections_format = "jsonl";
  std::string flow_log;
  uint32_t flow_log_interval = 60;
  bool flow_log_jsonl = false;
  bool stateless = false;
  std::string expect;
  size_t top = 10;
  size_t table_capacity = 0;
  unsigned burst = 32;
  bool pass_non_ip = false;
  DecapArgs decap;
  std::string progress = "auto";
  std::string pace;  // "realtime", "Nx"; empty: full speed
  std::string control_socket;
  std::string control_listen;
  std::string control_token_file;
};

// "realtime" -> 1, "10x" -> 10, "0.5x" -> 0.5; nullopt for anything else.
std::optional<double> parsePace(const std::string& text) {
  if (text == "realtime") return 1.0;
  if (text.size() < 2 || text.back() != 'x') return std::nullopt;
  const std::string number = text.substr(0, text.size() - 1);
  if (number.find_first_not_of("0123456789.") != std::string::npos) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(number.c_str(), &end);
  if (errno != 0 || end != number.c_str() + number.size() || !(v > 0) || v > 1e9)
    return std::nullopt;
  return v;
}

// The replay a signal stops (SIGINT, SIGTERM): set only while a paced or served run is going.
std::atomic<sim::Replay*> g_replay{nullptr};

void onStopSignal(int) {
  if (sim::Replay* r = g_replay.load()) r->requestStop();
}

// Ctrl-C ends a paced or served replay cleanly: the summary covers what was judged, and the
// control socket is removed.
class StopOnSignal {
 public:
  explicit StopOnSignal(sim::Replay& replay) {
    g_replay.store(&replay);
    struct sigaction sa {};
    sa.sa_handler = onStopSignal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int_);
    sigaction(SIGTERM, &sa, &old_term_);
  }
  ~StopOnSignal() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
    g_replay.store(nullptr);
  }
  StopOnSignal(const StopOnSignal&) = delete;
  StopOnSignal& operator=(const StopOnSignal&) = delete;

 private:
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
};

// Reads the policy files for GET /v1/policy; empty when one cannot be read (the loader has
// already said why, or the policy loaded and the texts are only a courtesy).
std::vector<rules::SourceText> readSources(const std::vector<std::string>& paths) {
  std::vector<rules::SourceText> out;
  for (const std::string& path : paths) {
    auto text = rules::readFileCapped(path, rules::kMaxPolicyFileBytes);
    if (!text) return {};
    out.push_back({path, std::move(*text)});
  }
  return out;
}

int runReplay(const ReplayArgs& a) {
  std::optional<double> pace;
  if (!a.pace.empty()) {
    pace = parsePace(a.pace);
    if (!pace) {
      std::fprintf(stderr,
                   "statewall replay: --pace %s: expected realtime or a speed-up such as 10x or "
                   "0.5x\n",
                   a.pace.c_str());
      return 2;
    }
  }
  const bool control = !a.control_socket.empty() || !a.control_listen.empty();
  if (!a.control_listen.empty() && a.control_token_file.empty()) {
    std::fprintf(stderr,
                 "statewall replay: --control-listen needs --control-token-file: every TCP "
                 "control request must carry the token it holds\n");
    return 2;
  }
  if (a.control_listen.empty() && !a.control_token_file.empty()) {
    std::fprintf(stderr,
                 "statewall replay: --control-token-file is for the TCP listener: give "
                 "--control-listen too\n");
    return 2;
  }

  const rules::CompiledPolicyPtr policy =
      loadCompiledPolicy(a.policies, "replay", "nothing replayed");
  if (!policy) return 2;

  std::optional<sim::Expectations> expectations;
  if (!a.expect.empty()) {
    std::string err;
    // Read here, not by Expectations::load(), so that the file has the policy files' size cap
    // and, like them, must be UTF-8 (its descriptions go into --json).
    auto text = rules::readFileCapped(a.expect, rules::kMaxPolicyFileBytes);
    if (text) {
      if (auto bad = rules::utf8Error(a.expect, *text)) {
        err = bad->str();
      } else if (auto parsed = sim::Expectations::parse(a.expect, *text)) {
        expectations = std::move(*parsed);
      } else {
        err = parsed.message();
      }
    } else {
      err = a.expect + ": error: " + text.message();
    }
    if (!expectations) {
      std::fprintf(stderr, "%s\n", err.c_str());
      return 2;
    }
  }

  sim::ReplayOptions o;
  o.verdicts_path = a.verdicts;
  o.allowed_path = a.allowed;
  o.denied_path = a.denied;
  o.connections_path = a.connections;
  o.connections_format =
      a.connections_format == "tsv" ? sim::ConnFormat::kTsv : sim::ConnFormat::kJsonl;
  o.flow_log_path = a.flow_log;
  o.flow_log_interval_s = a.flow_log_interval;
  o.flow_log_jsonl = a.flow_log_jsonl;
  o.stateless = a.stateless;
  o.progress = a.progress == "always" || (a.progress == "auto" && ::isatty(STDERR_FILENO) == 1);
  o.top_flows = a.top;
  o.table_capacity = a.table_capacity;
  o.burst = a.burst;
  o.pass_non_ip = a.pass_non_ip;
  if (!decapOptions(a.decap, "replay", &o.parse)) return 2;
  o.expectations = expectations ? &*expectations : nullptr;
  o.pace = pace.value_or(0);
  o.shared_engine = control;

  sim::Replay replay(policy, o);
  std::string err;
  if (!replay.openOutputs(&err)) {
    std::fprintf(stderr, "statewall replay: %s\n", err.c_str());
    return 2;
  }
  bool complete = true;
  // Ctrl-C stops the run from the moment the process can be seen to be ready (the control socket
  // exists, the line below is printed): the handler is in place before either.
  std::optional<StopOnSignal> stop;
  if (control || pace) stop.emplace(replay);
  // Destroyed before the replay, whose engine it serves.
  std::unique_ptr<control::ControlServer> server;
  if (control) {
    // The engine must exist before the server attaches to it.
    complete = replay.prepareFiles(a.traces);
    if (complete) {
      control::ServerOptions so;
      so.unix_socket = a.control_socket;
      so.tcp_listen = a.control_listen;
      so.token_file = a.control_token_file;
      // A token file others may read, an exception a control thread survived.
      so.warn = [](const std::string& w) {
        std::fprintf(stderr, "statewall replay: warning: %s\n", w.c_str());
      };
      so.api.initial_sources = readSources(a.policies);
      control::HostHooks hooks;
      hooks.now_ns = [&replay] { return replay.nowNs(); };
      // Publications wait for the burst in hand, so the outputs always name the policy that
      // judged each packet.
      hooks.publish_guard = [&replay](const std::function<void()>& publish) {
        replay.betweenBursts(publish);
      };
      server = std::make_unique<control::ControlServer>(*replay.engine(), std::move(so), hooks);
      if (control::Status st = server->start(); !st.ok()) {
        std::fprintf(stderr, "statewall replay: control server: %s\n", st.message().c_str());
        return 2;
      }
      std::string where;
      if (!a.control_socket.empty()) where = "unix " + a.control_socket;
      if (!a.control_listen.empty())
        where += (where.empty() ? "tcp " : ", tcp ") +
                 a.control_listen.substr(0, a.control_listen.rfind(':')) + ":" +
                 std::to_string(server->tcpPort());
      std::fprintf(stderr, "statewall replay: control API on %s; pace %s\n", where.c_str(),
                   pace ? a.pace.c_str() : "full speed");
    }
  }
  if (complete) complete = replay.runFiles(a.traces);
  // No policy change from here on: the summary names the policy running now.
  server.reset();
  bool wrote = replay.finish(&err);

  std::vector<sim::ExpectResult> results;
  if (expectations) results = expectations->results();
  const auto* res = expectations ? &results : nullptr;
  const std::string summary = a.json
                                  ? sim::formatSummaryJson(replay.summary(), replay.policy(), res)
                                  : sim::formatSummaryText(replay.summary(), replay.policy(), res);
  // --flow-log - has standard output: the summary goes to standard error.
  std::FILE* summary_out = a.flow_log == "-" ? stderr : stdout;
  std::fwrite(summary.data(), 1, summary.size(), summary_out);
  std::fflush(summary_out);
  if (replay.summary().policy_changes > 0) {
    std::string files;
    for (const std::string& f : replay.summary().policy_files)
      files += (files.empty() ? "" : ", ") + f;
    std::fprintf(stderr,
                 "statewall replay: the policy changed %llu time(s) during the replay; the "
                 "summary's rules and hits are those of the last one (%s)\n",
                 static_cast<unsigned long long>(replay.summary().policy_changes), files.c_str());
  }

  if (!complete && replay.summary().interrupted) {
    std::fprintf(stderr,
                 "statewall replay: interrupted; the summary covers the %llu packets "
                 "judged before\n",
                 static_cast<unsigned long long>(replay.summary().packets));
    return 2;
  }
  if (!complete) {
    std::fprintf(stderr, "statewall replay: %s\n", replay.summary().error->str().c_str());
    std::fprintf(stderr,
                 "statewall replay: the summary covers the %llu packets before that point\n",
                 static_cast<unsigned long long>(replay.summary().packets));
    return 2;
  }
  if (!wrote) {
    std::fprintf(stderr, "statewall replay: %s\n", err.c_str());
    return 2;
  }
  if (expectations && !expectations->allPassed()) {
    size_t failed = 0;
    for (const auto& r : results)
      failed += r.passed ? 0 : 1;
    std::fprintf(stderr, "statewall replay: %zu of %zu expectations failed\n", failed,
                 results.size());
    return 1;
  }
  return 0;
}

}  // namespace

void addReplayCommand(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<ReplayArgs>();
  CLI::App* cmd = app.add_subcommand(
      "replay", "Replay pcap/pcapng traces through a policy: what it allows, denies, and why");
  addPolicyOption(cmd, &args->policies);
  cmd->add_option("traces", args->traces, "pcap or pcapng files, replayed in order as one stream")
      ->required();
  cmd->add_flag("--json", args->json, "print the summary as JSON");
  cmd->add_option("--verdicts", args->verdicts, "write one JSON object per packet (JSON lines)");
  cmd->add_option("--allowed", args->allowed, "write the allowed packets to this pcap");
  cmd->add_option("--denied", args->denied, "write the denied packets to this pcap");
  cmd->add_option("--connections", args->connections,
                  "write one record per connection (Zeek conn.log vocabulary)");
  cmd->add_option("--connections-format", args->connections_format,
                  "jsonl (default) or tsv (Zeek's tab-separated conn.log)")
      ->check(CLI::IsMember({"jsonl", "tsv"}));
  cmd->add_option("--flow-log", args->flow_log,
                  "write the packets as AWS VPC Flow Logs record them (version 5 text; - for "
                  "standard output, the summary then goes to standard error)");
  cmd->add_option("--flow-log-interval", args->flow_log_interval,
                  "flow-log aggregation interval, seconds")
      ->check(CLI::Range(1u, 86400u))
      ->capture_default_str();
  cmd->add_flag("--flow-log-jsonl", args->flow_log_jsonl,
                "flow-log records as JSON lines with the deciding rule and reason");
  cmd->add_flag("--stateless", args->stateless,
                "also judge every packet by the rules alone and show what changes");
  cmd->add_option(
      "--expect", args->expect,
      "YAML assertions; exit 1 when one fails (see docs in sim/include/.../expect.hpp)");
  cmd->add_option("--top", args->top, "how many denied flows the summary lists")
      ->capture_default_str();
  cmd->add_option("--table-capacity", args->table_capacity,
                  "connection-table capacity (IPv4); default: sized from the traces, at most "
                  "1048576");
  cmd->add_option("--burst", args->burst,
                  "packets per engine call (1..64); a burst also spans at most 1 ms of trace time")
      ->check(CLI::Range(1u, 64u))
      ->capture_default_str();
  cmd->add_flag("--pass-non-ip", args->pass_non_ip,
                "let non-IP frames (other than ARP) pass as allow-unprotected");
  addDecapFlags(cmd, &args->decap);
  cmd->add_option("--progress", args->progress,
                  "progress bar on stderr: auto (when it is a terminal), always, never")
      ->check(CLI::IsMember({"auto", "always", "never"}))
      ->capture_default_str();
  cmd->add_option("--pace", args->pace,
                  "replay at the trace's own pace (realtime) or N times faster (10x, 0.5x) "
                  "instead of as fast as possible");
  cmd->add_option("--control-socket", args->control_socket,
                  "serve the control API (statewall ctl) on this Unix socket during the replay");
  cmd->add_option("--control-listen", args->control_listen,
                  "also serve it on a loopback TCP address (127.0.0.1:PORT); needs "
                  "--control-token-file");
  cmd->add_option("--control-token-file", args->control_token_file,
                  "file holding the bearer token every TCP control request must carry")
      ->check(CLI::ExistingFile);
  cmd->callback([args, exit_code]() { *exit_code = runReplay(*args); });
}

}  // namespace statewall::cli
