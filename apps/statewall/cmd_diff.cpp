// `statewall diff --policy OLD... --against NEW... [TRACE...]`.
//
// Without a trace: the rules added, removed and changed between two policies (matched up even
// when reordered), and whether what each group, ACL, interface and subnet allows changed
// (rules/policy_diff.hpp). Exit 0 when the new policy allows nothing less, 1 when it does.
//
// With traces: the traces are read once and every packet goes to two replay drivers (the one
// behind `statewall replay`, sim/replay.hpp), one per policy, in the same chunks, so both engines
// see the same bursts at the same times. Every flow with a packet whose verdict differs is
// listed with the reason under each policy, grouped by the rule change responsible (found by
// evaluating the flow's first differing packet under both policies and naming the check that
// flipped). Exit 1 when any packet allowed under the old policy is denied under the new one.
//
// `statewall diff --plan plan.json [--policy SHARED...] [TRACE...]`: the same with the two policies
// of a Terraform plan (`terraform show -json`): before = its prior state (plan.json#prior), after =
// its planned values (plan.json#planned); --policy files are loaded on both sides.
//
// Exit 2 on bad input (a policy that does not load, an unreadable or damaged trace).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "decap_flags.hpp"
#include "json_text.hpp"
#include "policy_input.hpp"
#include "statewall/dataplane/engine.hpp"
#include "statewall/dataplane/packet.hpp"
#include "statewall/dataplane/verdict.hpp"
#include "statewall/rules/compiled.hpp"
#include "statewall/rules/evaluate.hpp"
#include "statewall/rules/loader.hpp"
#include "statewall/rules/policy_diff.hpp"
#include "statewall/sim/change_cause.hpp"
#include "statewall/sim/pcap_io.hpp"
#include "statewall/sim/replay.hpp"

namespace statewall::cli {
namespace {

using rules::ChangeKind;
using rules::PolicyChange;
using rules::PolicyDiff;

struct DiffArgs {
  std::vector<std::string> old_files;
  std::vector<std::string> new_files;
  std::vector<std::string> traces;
  std::string plan;  // --plan: a Terraform plan gives both policies
  bool json = false;
  size_t max_flows = 20;  // flows listed per rule change in the text output
  size_t table_capacity = 1 << 20;
  std::string packets_path;  // --packets FILE.jsonl: every packet whose verdict changes
  DecapArgs decap;
};

// Loads and compiles one policy; prints diagnostics; nullptr on failure.
rules::CompiledPolicyPtr loadPolicy(const std::vector<std::string>& files, const char* which) {
  return loadCompiledPolicy(files, "diff", "nothing compared", which);
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v)
    s += (s.empty() ? "" : " ") + x;
  return s;
}

std::string locStr(const rules::SourceLoc& loc) {
  return loc.str();
}

nlohmann::ordered_json changeJson(const PolicyChange& c) {
  nlohmann::ordered_json j = {{"kind", rules::changeKindName(c.kind)},
                              {"object", rules::objectKindName(c.object)},
                              {"name", c.name},
                              {"scope", c.scope},
                              {"before", c.before},
                              {"after", c.after},
                              {"detail", c.detail},
                              {"old_location", locStr(c.old_loc)},
                              {"new_location", locStr(c.new_loc)}};
  return j;
}

nlohmann::ordered_json effectJson(const rules::ScopeEffect& e) {
  return {{"scope", e.scope}, {"same", e.same},     {"narrower", e.narrower},
          {"wider", e.wider}, {"gained", e.gained}, {"lost", e.lost}};
}

std::string changeLine(const PolicyChange& c) {
  std::string text;
  switch (c.kind) {
    case ChangeKind::kAdded:
      text = c.after;
      break;
    case ChangeKind::kRemoved:
      text = c.before;
      break;
    case ChangeKind::kChanged:
    case ChangeKind::kMoved:
      text = c.before == c.after ? c.before : c.before + "  ->  " + c.after;
      break;
  }
  std::string s = fmt::format("  {:<8} {}", rules::changeKindName(c.kind), text);
  if (!c.detail.empty()) s += fmt::format("  ({})", c.detail);
  std::string where;
  if (!c.old_loc.file.empty()) where = c.old_loc.str();
  if (!c.new_loc.file.empty()) where += (where.empty() ? "" : " -> ") + c.new_loc.str();
  if (!where.empty()) s += "\n           [" + where + "]";
  return s;
}

std::string effectLine(const rules::ScopeEffect& e) {
  if (e.same) return "same packets allowed as before";
  std::string s;
  if (e.wider) s += "now also allows " + e.gained;
  if (e.narrower) s += std::string(s.empty() ? "" : "; ") + "no longer allows " + e.lost;
  return s;
}

int runRuleDiff(const DiffArgs& a, const rules::CompiledPolicy& old_p,
                const rules::CompiledPolicy& new_p) {
  const PolicyDiff diff = rules::diffPolicies(old_p, new_p);
  const bool narrows = diff.narrows();
  if (a.json) {
    nlohmann::ordered_json out;
    out["old"] = a.old_files;
    out["new"] = a.new_files;
    out["changes"] = nlohmann::ordered_json::array();
    for (const auto& c : diff.changes)
      out["changes"].push_back(changeJson(c));
    out["effects"] = nlohmann::ordered_json::array();
    for (const auto& e : diff.effects)
      out["effects"].push_back(effectJson(e));
    out["summary"] = {{"added", diff.count(ChangeKind::kAdded)},
                      {"removed", diff.count(ChangeKind::kRemoved)},
                      {"changed", diff.count(ChangeKind::kChanged)},
                      {"moved", diff.count(ChangeKind::kMoved)},
                      {"narrows", narrows}};
    std::printf("%s\n", jsonText(out, 2).c_str());
    return narrows ? 1 : 0;
  }

  std::printf("statewall diff: %s -> %s\n", joined(a.old_files).c_str(),
              joined(a.new_files).c_str());
  if (diff.empty()) std::printf("no rule changes\n");
  // Changes grouped by scope, in the order the diff lists them; each scope's effect under it.
  std::vector<std::string> scopes;
  std::map<std::string, std::vector<const PolicyChange*>> by_scope;
  for (const auto& c : diff.changes) {
    if (!by_scope.count(c.scope)) scopes.push_back(c.scope);
    by_scope[c.scope].push_back(&c);
  }
  std::map<std::string, const rules::ScopeEffect*> effect_of;
  for (const auto& e : diff.effects)
    effect_of[e.scope] = &e;
  for (const auto& scope : scopes) {
    std::printf("%s:\n", scope.c_str());
    for (const PolicyChange* c : by_scope[scope])
      std::printf("%s\n", changeLine(*c).c_str());
    if (auto it = effect_of.find(scope); it != effect_of.end())
      std::printf("  => %s\n", effectLine(*it->second).c_str());
  }
  bool header = false;
  for (const auto& e : diff.effects) {
    if (by_scope.count(e.scope) || e.same) continue;
    if (!header) std::printf("what interfaces and subnets allow:\n");
    header = true;
    std::printf("  %s: %s\n", e.scope.c_str(), effectLine(e).c_str());
  }
  std::printf(
      "%zu added, %zu removed, %zu changed, %zu moved; %s\n", diff.count(ChangeKind::kAdded),
      diff.count(ChangeKind::kRemoved), diff.count(ChangeKind::kChanged),
      diff.count(ChangeKind::kMoved),
      narrows ? "the new policy allows less (exit 1)" : "the new policy allows nothing less");
  return narrows ? 1 : 0;
}

// ---- the trace diff ----

constexpr size_t kChunk = 8192;              // frames per chunk fed to both drivers
constexpr size_t kMaxChangedFlows = 100000;  // flows kept in detail; the rest are only counted

// A connection, whichever way its packets go: the endpoints in a fixed order.
struct ConnKey {
  uint8_t proto = 0;
  bool ip = true;
  rules::IpAddr a, b;
  uint16_t pa = 0, pb = 0;
  friend bool operator==(const ConnKey&, const ConnKey&) = default;
};

struct ConnKeyHash {
  size_t operator()(const ConnKey& k) const {
    uint64_t h = k.a.lo * 0x9E3779B97F4A7C15ull ^ k.a.hi ^ (uint64_t{k.proto} << 40);
    h ^= (k.b.lo + 0x632BE59BD9B4E019ull) * 0xBF58476D1CE4E5B9ull ^ k.b.hi;
    h ^= (uint64_t{k.pa} << 16 | k.pb) * 0x94D049BB133111EBull;
    return static_cast<size_t>(h ^ (h >> 31));
  }
};

bool isIcmp(uint8_t p) {
  return p == dataplane::kIpProtoIcmp || p == dataplane::kIpProtoIcmpv6;
}

// The packet's 5-tuple (ICMP type and code in place of ports, as sim::FlowKey has them).
sim::FlowKey flowKeyOf(const dataplane::ParsedPacket& p) {
  sim::FlowKey k;
  k.ip = p.l3 == dataplane::L3::kIpv4 || p.l3 == dataplane::L3::kIpv6;
  if (!k.ip) return k;
  k.proto = p.proto;
  k.src = p.src;
  k.dst = p.dst;
  k.sport = isIcmp(p.proto) ? p.icmp_type : p.sport;
  k.dport = isIcmp(p.proto) ? p.icmp_code : p.dport;
  return k;
}

ConnKey connKeyOf(const sim::FlowKey& f) {
  ConnKey k;
  k.ip = f.ip;
  k.proto = f.proto;
  if (!f.ip) return k;
  if (isIcmp(f.proto)) {  // ICMP: one entry per address pair
    k.a = std::min(f.src, f.dst);
    k.b = std::max(f.src, f.dst);
    return k;
  }
  const bool fwd = std::tie(f.src, f.sport) <= std::tie(f.dst, f.dport);
  k.a = fwd ? f.src : f.dst;
  k.b = fwd ? f.dst : f.src;
  k.pa = fwd ? f.sport : f.dport;
  k.pb = fwd ? f.dport : f.sport;
  return k;
}

rules::Flow5 flow5Of(const sim::FlowKey& f) {
  rules::Flow5 x;
  x.proto = f.proto;
  x.src = f.src;
  x.dst = f.dst;
  if (isIcmp(f.proto)) {
    x.icmp_type = static_cast<uint8_t>(f.sport);
    x.icmp_code = static_cast<uint8_t>(f.dport);
  } else {
    x.sport = f.sport;
    x.dport = f.dport;
  }
  return x;
}

struct ChangedFlow {
  sim::FlowKey first;  // the first packet whose verdict differs, as it travelled
  uint64_t first_index = 0;
  uint64_t packets = 0;      // packets whose verdict differs
  uint64_t now_denied = 0;   // allowed before, denied now
  uint64_t now_allowed = 0;  // denied before, allowed now
  std::string old_reason, new_reason;
  std::string old_text, new_text;
  long cause = -1;  // index into PolicyDiff::changes; -1: no single rule change
  std::string cause_note;
};

int runTraceDiff(const DiffArgs& a, const rules::CompiledPolicyPtr& old_p,
                 const rules::CompiledPolicyPtr& new_p) {
  const rules::PolicyDiff diff = rules::diffPolicies(*old_p, *new_p);
  sim::ReplayOptions opt;
  opt.table_capacity = a.table_capacity;
  if (!decapOptions(a.decap, "diff", &opt.parse)) return 2;
  sim::Replay r_old(old_p, opt), r_new(new_p, opt);

  // Per chunk: the old driver's verdicts, compared with the new driver's as they come.
  // Both drivers call their observer once per packet, in input order: the new driver's n-th
  // packet of a chunk is the old driver's n-th.
  struct Seen {
    uint64_t index;
    dataplane::Verdict v;
    sim::FlowKey key;
  };
  std::vector<Seen> seen;
  seen.reserve(kChunk);
  size_t pos = 0;
  std::unordered_map<ConnKey, ChangedFlow, ConnKeyHash> flows;
  std::vector<ConnKey> order;  // flows by first differing packet
  uint64_t changed_packets = 0, to_deny = 0, to_allow = 0, unlisted_packets = 0;
  const sim::ChangeAttributor attr(*old_p, *new_p, diff);
  std::unique_ptr<FILE, int (*)(FILE*)> packets_out(nullptr, &std::fclose);
  if (!a.packets_path.empty()) {
    packets_out.reset(std::fopen(a.packets_path.c_str(), "w"));
    if (!packets_out) {
      std::fprintf(stderr, "statewall diff: cannot create %s\n", a.packets_path.c_str());
      return 2;
    }
  }

  r_old.setObserver(
      [&](uint64_t index, uint64_t, const dataplane::Verdict& v, const dataplane::ParsedPacket& p) {
        seen.push_back(Seen{index, v, flowKeyOf(p)});
      });
  r_new.setObserver([&](uint64_t index, uint64_t, const dataplane::Verdict& v,
                        const dataplane::ParsedPacket&) {
    if (pos >= seen.size() || seen[pos].index != index) {
      std::fprintf(stderr, "statewall diff: the two replays disagree on packet #%llu\n",
                   static_cast<unsigned long long>(index));
      std::abort();  // an impossible state: both drivers got the same frames
    }
    const Seen& o = seen[pos++];
    if (o.v.allowed() == v.allowed()) return;
    ++changed_packets;
    const bool denied_now = o.v.allowed();
    (denied_now ? to_deny : to_allow)++;
    if (packets_out) {
      const nlohmann::ordered_json line = {
          {"packet", index},
          {"flow", o.key.str()},
          {"old", {{"reason", dataplane::reasonCode(o.v.reason)}, {"detail", r_old.describe(o.v)}}},
          {"new", {{"reason", dataplane::reasonCode(v.reason)}, {"detail", r_new.describe(v)}}}};
      std::fprintf(packets_out.get(), "%s\n", jsonText(line).c_str());
    }
    const ConnKey ck = connKeyOf(o.key);
    auto it = flows.find(ck);
    if (it == flows.end()) {
      if (flows.size() >= kMaxChangedFlows) {
        ++unlisted_packets;
        return;
      }
      ChangedFlow f;
      f.first = o.key;
      f.first_index = index;
      f.old_reason = std::string(dataplane::reasonCode(o.v.reason));
      f.new_reason = std::string(dataplane::reasonCode(v.reason));
      f.old_text = r_old.describe(o.v);
      f.new_text = r_new.describe(v);
      f.cause = o.key.ip ? attr.cause(flow5Of(o.key), denied_now, &f.cause_note) : -1;
      it = flows.emplace(ck, std::move(f)).first;
      order.push_back(ck);
    }
    ChangedFlow& f = it->second;
    ++f.packets;
    (denied_now ? f.now_denied : f.now_allowed)++;
  });

  // One pass over the traces; both drivers get the same chunks.
  std::vector<sim::Frame> chunk(kChunk);
  uint64_t packets = 0;
  std::string trace_error;
  auto feed = [&](size_t n) {
    if (n == 0) return;
    chunk.resize(n);  // only the last chunk of a file is short
    seen.clear();
    pos = 0;
    r_old.runFrames(chunk);
    r_new.runFrames(chunk);
    chunk.resize(kChunk);
  };
  for (const auto& path : a.traces) {
    sim::TraceError err;
    auto reader = sim::TraceReader::open(path, &err);
    if (!reader) {
      trace_error = err.str();
      break;
    }
    size_t n = 0;
    sim::TracePacket pkt;
    sim::TraceReader::Status st;
    while ((st = reader->next(&pkt)) == sim::TraceReader::Status::kPacket) {
      chunk[n].ts_ns = pkt.ts_ns;
      chunk[n].bytes.assign(pkt.data, pkt.data + pkt.caplen);
      chunk[n].link = pkt.link;
      ++packets;
      if (++n == kChunk) {
        feed(n);
        n = 0;
      }
    }
    feed(n);
    for (const sim::TraceInterface& i : reader->interfaces()) {
      if (i.skipped == 0) continue;
      std::fprintf(stderr,
                   "statewall diff: warning: %s: %llu packets of interface %u%s were skipped: "
                   "its link type %s is not one statewall reads\n",
                   path.c_str(), static_cast<unsigned long long>(i.skipped), i.index,
                   i.name.empty() ? "" : (" (" + i.name + ")").c_str(),
                   sim::dltName(i.dlt).c_str());
    }
    if (st == sim::TraceReader::Status::kError) {
      trace_error = reader->error().str();
      break;
    }
  }
  if (packets_out && (std::ferror(packets_out.get()) || std::fclose(packets_out.release()) != 0)) {
    std::fprintf(stderr, "statewall diff: error writing %s\n", a.packets_path.c_str());
    return 2;
  }
  std::string ferr;
  r_old.finish(&ferr);
  r_new.finish(&ferr);
  for (const auto* r : {&r_old, &r_new})
    if (r->summary().error && trace_error.empty()) trace_error = r->summary().error->str();
  if (!trace_error.empty()) {
    std::fprintf(stderr, "statewall diff: %s\n", trace_error.c_str());
    return 2;
  }

  // Group the flows by their cause, in the order of the rule changes; unexplained ones last.
  std::map<long, std::vector<const ChangedFlow*>> by_cause;
  uint64_t conns_break = 0, conns_open = 0;
  for (const ConnKey& k : order) {
    const ChangedFlow& f = flows.at(k);
    by_cause[f.cause < 0 ? static_cast<long>(diff.changes.size()) : f.cause].push_back(&f);
    (f.now_denied > 0 ? conns_break : conns_open)++;
  }
  const int rc = to_deny > 0 ? 1 : 0;

  if (a.json) {
    nlohmann::ordered_json out;
    out["old"] = a.old_files;
    out["new"] = a.new_files;
    out["traces"] = a.traces;
    out["packets"] = packets;
    // Beyond kMaxChangedFlows flows, further flows are not kept: their packets are counted.
    out["summary"] = {{"changed_packets", changed_packets},
                      {"allowed_to_denied_packets", to_deny},
                      {"denied_to_allowed_packets", to_allow},
                      {"changed_flows", order.size()},
                      {"connections_that_break", conns_break},
                      {"connections_that_open", conns_open},
                      {"packets_of_flows_not_listed", unlisted_packets}};
    out["groups"] = nlohmann::ordered_json::array();
    for (const auto& [cause, list] : by_cause) {
      nlohmann::ordered_json g;
      const bool known = cause < static_cast<long>(diff.changes.size());
      g["change"] = known ? changeJson(diff.changes[static_cast<size_t>(cause)])
                          : nlohmann::ordered_json(nullptr);
      g["flows"] = nlohmann::ordered_json::array();
      for (const ChangedFlow* f : list) {
        nlohmann::ordered_json fj = {{"flow", f->first.str()},
                                     {"first_packet", f->first_index},
                                     {"changed_packets", f->packets},
                                     {"allowed_to_denied", f->now_denied},
                                     {"denied_to_allowed", f->now_allowed},
                                     {"old", {{"reason", f->old_reason}, {"detail", f->old_text}}},
                                     {"new", {{"reason", f->new_reason}, {"detail", f->new_text}}}};
        if (!known) fj["note"] = f->cause_note;
        g["flows"].push_back(std::move(fj));
      }
      out["groups"].push_back(std::move(g));
    }
    out["changes"] = nlohmann::ordered_json::array();
    for (const auto& c : diff.changes)
      out["changes"].push_back(changeJson(c));
    std::printf("%s\n", jsonText(out, 2).c_str());
    return rc;
  }

  std::printf("statewall diff: %s -> %s\n", joined(a.old_files).c_str(),
              joined(a.new_files).c_str());
  std::printf("traces: %s (%llu packets, read once, replayed under both policies)\n",
              joined(a.traces).c_str(), static_cast<unsigned long long>(packets));
  if (order.empty()) std::printf("no packet changes verdict\n");
  for (const auto& [cause, list] : by_cause) {
    const bool known = cause < static_cast<long>(diff.changes.size());
    if (known) {
      const PolicyChange& c = diff.changes[static_cast<size_t>(cause)];
      std::printf("\n%s %s in %s:\n%s\n", std::string(rules::changeKindName(c.kind)).c_str(),
                  std::string(rules::objectKindName(c.object)).c_str(), c.scope.c_str(),
                  changeLine(c).c_str());
    } else {
      std::printf("\nnot explained by a single rule change:\n");
    }
    for (size_t i = 0; i < list.size() && i < a.max_flows; ++i) {
      const ChangedFlow& f = *list[i];
      std::printf("    %s  (%llu packet%s %s, first #%llu)\n", f.first.str().c_str(),
                  static_cast<unsigned long long>(f.packets), f.packets == 1 ? "" : "s",
                  f.now_denied > 0 ? (f.now_allowed > 0 ? "changed" : "now denied") : "now allowed",
                  static_cast<unsigned long long>(f.first_index));
      std::printf("      old: %s\n      new: %s\n", f.old_text.c_str(), f.new_text.c_str());
      if (!known && !f.cause_note.empty()) std::printf("      (%s)\n", f.cause_note.c_str());
    }
    if (list.size() > a.max_flows)
      std::printf("    ... and %zu more flows (--max-flows, or --json for all)\n",
                  list.size() - a.max_flows);
  }
  auto n = [](uint64_t v, const char* one, const char* many) {
    return fmt::format("{} {}", v, v == 1 ? one : many);
  };
  std::printf(
      "\n%s change verdict (%llu allowed -> denied, %llu denied -> allowed) in %s: %s "
      "would break, %llu would open%s\n",
      n(changed_packets, "packet", "packets").c_str(), static_cast<unsigned long long>(to_deny),
      static_cast<unsigned long long>(to_allow), n(order.size(), "flow", "flows").c_str(),
      n(conns_break, "connection", "connections").c_str(),
      static_cast<unsigned long long>(conns_open), rc ? " (exit 1)" : "");
  if (unlisted_packets > 0)
    std::printf("(%llu more changed packets belong to flows beyond the first %zu, not listed)\n",
                static_cast<unsigned long long>(unlisted_packets), kMaxChangedFlows);
  std::printf(
      "rule changes: %zu added, %zu removed, %zu changed, %zu moved (without the trace: "
      "statewall diff --policy ... --against ...)\n",
      diff.count(ChangeKind::kAdded), diff.count(ChangeKind::kRemoved),
      diff.count(ChangeKind::kChanged), diff.count(ChangeKind::kMoved));
  return rc;
}

// Is `path` a pcap or pcapng trace (by its magic number)? The traces may follow --against's
// files on the command line (`--against NEW... TRACE`), where the option takes them in.
bool looksLikeTrace(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return false;
  unsigned char m[4] = {0, 0, 0, 0};
  const size_t n = std::fread(m, 1, 4, f);
  std::fclose(f);
  if (n < 4) return false;
  const uint32_t be = uint32_t{m[0]} << 24 | uint32_t{m[1]} << 16 | uint32_t{m[2]} << 8 | m[3];
  return be == 0xa1b2c3d4 || be == 0xd4c3b2a1 || be == 0xa1b23c4d || be == 0x4d3cb2a1 ||
         be == 0x0a0d0d0a;
}

int runDiff(DiffArgs a) {
  for (auto* list : {&a.old_files, &a.new_files}) {
    std::vector<std::string> keep;
    for (auto& f : *list)
      (looksLikeTrace(f) ? a.traces : keep).push_back(f);
    *list = std::move(keep);
  }
  if (!a.plan.empty()) {
    if (!a.new_files.empty()) {
      std::fprintf(stderr,
                   "statewall diff: --plan gives both policies (its prior state and its planned "
                   "values): expected no --against\n");
      return 2;
    }
    const std::vector<std::string> shared = a.old_files;
    a.old_files = {a.plan + "#prior"};
    a.new_files = {a.plan + "#planned"};
    for (const auto& f : shared) {
      a.old_files.push_back(f);
      a.new_files.push_back(f);
    }
  }
  if (a.old_files.empty() || a.new_files.empty()) {
    std::fprintf(stderr,
                 "statewall diff: --policy and --against each need a policy file (or --plan "
                 "PLAN.json)\n");
    return 2;
  }
  const rules::CompiledPolicyPtr old_p = loadPolicy(a.old_files, "old");
  if (!old_p) return 2;
  const rules::CompiledPolicyPtr new_p = loadPolicy(a.new_files, "new");
  if (!new_p) return 2;
  if (!a.traces.empty()) return runTraceDiff(a, old_p, new_p);
  return runRuleDiff(a, *old_p, *new_p);
}

}  // namespace

void addDiffCommand(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<DiffArgs>();
  CLI::App* cmd = app.add_subcommand(
      "diff", "What changes from one policy to another: on a trace, or rule by rule without one");
  cmd->footer(
      "With traces: every flow whose verdict changes, with the reason under each policy,\n"
      "grouped by the rule change responsible. Exit 1 when a packet allowed before is denied.\n"
      "Without: rules added, removed and changed, matched by content even when reordered (ACL\n"
      "entries by content, then number). Exit 1 when the new policy allows less somewhere.\n"
      "With --plan (terraform show -json of a plan): old = its prior state, new = its planned\n"
      "values; --policy files then go to both sides.\n"
      "Exit 2 on bad input.\n"
      "Example: statewall diff --policy old.yaml --against new.yaml trace.pcap\n"
      "         statewall diff --plan plan.json trace.pcap");
  cmd->add_option("--policy", args->old_files, "the current policy's files");
  cmd->add_option("--against", args->new_files, "the new policy's files");
  cmd->add_option("--plan", args->plan,
                  "a Terraform plan (terraform show -json): its prior state against its planned "
                  "values");
  cmd->add_option("traces", args->traces, "pcap or pcapng files, read once as one stream");
  cmd->add_flag("--json", args->json,
                "print one JSON object ({changes, effects, summary}, or {summary, groups} with "
                "traces)");
  cmd->add_option("--max-flows", args->max_flows, "flows listed per rule change (default 20)");
  cmd->add_option("--packets", args->packets_path,
                  "write every packet whose verdict changes to this file (JSON lines)");
  cmd->add_option("--table-capacity", args->table_capacity,
                  "connection-table capacity of each engine (IPv4)");
  addDecapFlags(cmd, &args->decap);
  cmd->callback([args, exit_code]() { *exit_code = runDiff(*args); });
}

}  // namespace statewall::cli
