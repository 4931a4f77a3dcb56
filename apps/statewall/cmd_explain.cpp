// `statewall explain --policy P TRACE [--packet N | --flow PATTERN]`: what the engine decided for
// each selected packet and why, in plain sentences (or JSON), with near misses for denied
// packets and the contrast with a stateless filter.
// Exit 0 explained, 2 usage error, a selection that matches nothing, a policy that does not load
// or a trace that cannot be read.
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "commands.hpp"
#include "decap_flags.hpp"
#include "json_text.hpp"
#include "policy_input.hpp"
#include "statewall/rules/compiled.hpp"
#include "statewall/rules/loader.hpp"
#include "statewall/sim/expect.hpp"
#include "statewall/sim/explain.hpp"

namespace statewall::cli {
namespace {

constexpr size_t kDefaultLimit = 100;

struct ExplainArgs {
  std::vector<std::string> policies;
  std::vector<std::string> traces;
  std::vector<std::string> packets;
  std::string flow;
  bool contrast = true;
  bool json = false;
  std::optional<size_t> limit;
  bool pass_non_ip = false;
  DecapArgs decap;
};

bool parseIndex(std::string_view s, uint64_t* out) {
  if (s.empty() || s.size() > 18) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v == 0) return false;
  *out = v;
  return true;
}

// "7", "10-20" (the option splits lists at commas).
bool parseRange(std::string_view s, std::pair<uint64_t, uint64_t>* out) {
  const size_t dash = s.find('-');
  if (dash == std::string_view::npos) {
    uint64_t v = 0;
    if (!parseIndex(s, &v)) return false;
    *out = {v, v};
    return true;
  }
  uint64_t lo = 0, hi = 0;
  if (!parseIndex(s.substr(0, dash), &lo) || !parseIndex(s.substr(dash + 1), &hi) || hi < lo) {
    return false;
  }
  *out = {lo, hi};
  return true;
}

// A JSON string literal for a file name (any bytes: not UTF-8 becomes U+FFFD).
std::string quoted(const std::string& s) {
  return jsonText(nlohmann::json(s));
}

int runExplain(const ExplainArgs& a) {
  sim::ExplainOptions o;
  for (const std::string& p : a.packets) {
    std::pair<uint64_t, uint64_t> r;
    if (!parseRange(p, &r)) {
      std::fprintf(stderr,
                   "statewall explain: bad --packet '%s': expected N, A-B or a list of them "
                   "(1-based packet numbers)\n",
                   p.c_str());
      return 2;
    }
    o.packets.push_back(r);
  }
  if (!a.flow.empty()) {
    auto flow = sim::parseFlowPattern(a.flow);
    if (!flow) {
      std::fprintf(stderr, "statewall explain: bad --flow '%s': %s\n", a.flow.c_str(),
                   flow.message().c_str());
      return 2;
    }
    o.flow = std::move(*flow);
  }
  o.contrast = a.contrast;
  o.limit = a.limit.value_or(kDefaultLimit);
  o.text = !a.json;
  o.json = a.json;
  o.pass_non_ip = a.pass_non_ip;
  if (!decapOptions(a.decap, "explain", &o.parse)) return 2;

  const rules::CompiledPolicyPtr policy =
      loadCompiledPolicy(a.policies, "explain", "nothing explained");
  if (!policy) return 2;

  sim::Explainer explainer(policy, o);
  bool first = true;
  if (a.json) {
    std::string head = "{\n  \"policy\": [";
    for (size_t i = 0; i < a.policies.size(); ++i)
      head += (i ? ", " : "") + quoted(a.policies[i]);
    head += "],\n  \"traces\": [";
    for (size_t i = 0; i < a.traces.size(); ++i)
      head += (i ? ", " : "") + quoted(a.traces[i]);
    head += "],\n  \"packets\": [";
    std::fwrite(head.data(), 1, head.size(), stdout);
  }
  const bool complete = explainer.runFiles(a.traces, [&](const sim::PacketExplanation& e) {
    if (a.json) {
      std::string body = first ? "\n    " : ",\n    ";
      for (char c : e.json) {
        body += c;
        if (c == '\n') body += "    ";
      }
      std::fwrite(body.data(), 1, body.size(), stdout);
    } else {
      if (!first) std::fputc('\n', stdout);
      std::fwrite(e.text.data(), 1, e.text.size(), stdout);
    }
    first = false;
  });
  const sim::ExplainStats& st = explainer.stats();
  const bool truncated = st.shown < st.selected;
  if (a.json) {
    std::printf(
        "%s],\n  \"selected\": %llu,\n  \"shown\": %llu,\n  \"truncated\": %s,\n"
        "  \"packets_in_trace\": %llu,\n  \"complete\": %s\n}\n",
        first ? "" : "\n  ", static_cast<unsigned long long>(st.selected),
        static_cast<unsigned long long>(st.shown), truncated ? "true" : "false",
        static_cast<unsigned long long>(st.packets), complete ? "true" : "false");
  } else if (truncated) {
    std::printf(
        "\n(explained the first %llu of %llu selected packets; --limit N shows more, --limit 0 "
        "all, --packet A-B picks a range)\n",
        static_cast<unsigned long long>(st.shown), static_cast<unsigned long long>(st.selected));
  }
  std::fflush(stdout);

  if (!complete) {
    std::fprintf(stderr, "statewall explain: %s\n", st.error->str().c_str());
    std::fprintf(stderr,
                 "statewall explain: only the %llu packets before that point were replayed\n",
                 static_cast<unsigned long long>(st.packets));
    return 2;
  }
  for (const auto& [lo, hi] : o.packets) {
    if (hi > st.packets) {
      std::fprintf(stderr,
                   "statewall explain: packet %llu is beyond the end of the trace (%llu "
                   "packets)\n",
                   static_cast<unsigned long long>(lo > st.packets ? lo : hi),
                   static_cast<unsigned long long>(st.packets));
      return 2;
    }
  }
  if (st.selected == 0) {
    std::fprintf(stderr, "statewall explain: no packet of the trace matches the flow '%s'\n",
                 a.flow.c_str());
    return 2;
  }
  return 0;
}

}  // namespace

void addExplainCommand(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<ExplainArgs>();
  CLI::App* cmd = app.add_subcommand(
      "explain", "Explain, packet by packet, what the engine decided for a trace and why");
  cmd->footer(
      "Selecting packets (both may be given; a packet is explained if either selects it):\n"
      "  --packet 7  --packet 3,5,9  --packet 10-20    1-based positions in the trace\n"
      "  --flow 'tcp 10.0.0.5:51514 -> 10.0.1.10:443'   every packet of matching flows, both\n"
      "      directions, and ICMP errors about them (the pattern syntax of replay --expect:\n"
      "      '*', CIDRs, :PORT or :LO-HI, IPv6 in brackets)\n"
      "  neither: every packet, at most --limit of them (default 100; 0 = no limit)\n"
      "Exit status: 0 explained, 2 usage error, a selection that matches nothing, a policy that\n"
      "does not load or a trace that cannot be read.");
  addPolicyOption(cmd, &args->policies);
  cmd->add_option("traces", args->traces, "pcap or pcapng files, replayed in order as one stream")
      ->required();
  cmd->add_option("--packet", args->packets, "packet numbers to explain: N, A-B, lists")
      ->delimiter(',');
  cmd->add_option("--flow", args->flow, "explain the packets of flows matching this pattern");
  cmd->add_flag("--contrast,!--no-contrast", args->contrast,
                "say what a stateless filter with the same rules would do (default: on)");
  cmd->add_flag("--json", args->json,
                "print {policy, traces, packets: [...], selected, shown, truncated, "
                "packets_in_trace, complete}; schema in sim/include/statewall/sim/explain.hpp");
  cmd->add_option("--limit", args->limit,
                  "explain at most this many of the selected packets (default 100; 0 = all)");
  cmd->add_flag("--pass-non-ip", args->pass_non_ip,
                "let non-IP frames (other than ARP) pass as allow-unprotected, as replay does");
  addDecapFlags(cmd, &args->decap);
  cmd->callback([args, exit_code]() { *exit_code = runExplain(*args); });
}

}  // namespace statewall::cli
