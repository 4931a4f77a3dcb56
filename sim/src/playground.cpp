// The playground's JSON API (see playground.hpp). Each request loads and compiles the policy it
// carries, builds the scenario's frames (gen's flow specs, or an uploaded trace) and runs them
// through the engine twice over the same frames:
//   - an Explainer (as `statewall explain`): per packet, the verdict, the checks in the engine's
//     order (the gates the page draws), the TCP states and the explanation text;
//   - a Replay judging one packet per burst (as `statewall replay --burst 1` would), whose
//     observer reads the engine's connection table after each packet and the Verdict's own rule
//     or ACL entry (the line the page lights up).
// The two runs must agree packet by packet; a packet where they do not is reported, not hidden.
#include "statewall/sim/playground.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <new>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "statewall/dataplane/engine.hpp"
#include "statewall/dataplane/tcp_tracker.hpp"
#include "statewall/rules/compiled.hpp"
#include "statewall/rules/load_compile.hpp"
#include "statewall/rules/loader.hpp"
#include "statewall/rules/vocab.hpp"
#include "statewall/sim/explain.hpp"
#include "statewall/sim/flow_text.hpp"
#include "statewall/sim/gen.hpp"
#include "statewall/sim/pcap_io.hpp"
#include "statewall/sim/replay.hpp"

namespace statewall::sim {
namespace {

using Json = nlohmann::ordered_json;
using dataplane::Reason;
using dataplane::Verdict;

constexpr uint64_t kNs = 1000000000ull;
// Connections one run may hold: above any scenario's packets (PlaygroundLimits::max_packets).
constexpr size_t kTableCapacity = 1 << 14;
// Connections listed per packet: what a person reads, and a bound on the answer's size.
constexpr size_t kTableRows = 16;

PlaygroundReply jsonReply(int status, const Json& j) {
  PlaygroundReply r;
  r.status = status;
  r.body = j.dump(-1, ' ', false, Json::error_handler_t::replace);
  return r;
}

PlaygroundReply errorReply(int status, std::string_view error, std::string_view detail) {
  return jsonReply(status, Json{{"error", error}, {"detail", detail}});
}

// A request's error: its HTTP status and what to tell.
struct Failure {
  int status = 400;
  std::string error;
  std::string detail;
};

// ---- policy ----

struct LoadedPolicy {
  rules::CompiledPolicyPtr compiled;
  Json diagnostics = Json::array();
  bool valid = false;
};

LoadedPolicy loadPolicy(const std::string& name, const std::string& text) {
  LoadedPolicy out;
  rules::LoadCompileResult r = rules::loadAndCompile(std::vector<rules::SourceText>{{name, text}});
  out.compiled = r.policy;
  for (const rules::Diagnostic& d : r.diagnostics) {
    out.diagnostics.push_back(
        {{"severity", d.severity == rules::Severity::kError ? "error" : "warning"},
         {"line", d.loc.line},
         {"col", d.loc.col},
         {"location", d.loc.str()},
         {"message", d.message}});
  }
  out.valid = out.compiled != nullptr;
  return out;
}

// Rules are named "rule:N" (a security-group rule's RuleId) and "acl:N" (an ACL entry's id) in the
// policy compiled from the same text: the page sends back what /api/check listed.
Json ruleRef(const rules::CompiledPolicy& p, rules::RuleId r) {
  const rules::RuleInfo& ri = p.rule(r);
  return {{"id", fmt::format("rule:{}", r)},
          {"kind", "sg"},
          {"label", rules::ruleLabelWords(ri)},
          {"text", ri.text},
          {"line", ri.loc.line}};
}

Json aclRef(const rules::CompiledPolicy& p, rules::AclEntryId e) {
  const rules::AclEntryInfo& ai = p.aclEntry(e);
  return {{"id", fmt::format("acl:{}", e)},
          {"kind", "acl"},
          {"label", rules::aclEntryLabel(ai)},
          {"text", ai.text},
          {"line", ai.loc.line}};
}

Json ruleList(const rules::CompiledPolicy& p) {
  Json out = Json::array();
  for (size_t r = 0; r < p.ruleCount(); ++r)
    out.push_back(ruleRef(p, static_cast<rules::RuleId>(r)));
  for (size_t e = 0; e < p.aclEntryCount(); ++e) {
    if (p.aclEntry(static_cast<rules::AclEntryId>(e)).rule_number == 0) continue;  // '*'
    out.push_back(aclRef(p, static_cast<rules::AclEntryId>(e)));
  }
  return out;
}

// The policy without one rule (what-if); nullopt with *err when `id` names none.
rules::CompiledPolicyPtr withoutRule(const rules::CompiledPolicy& p, const std::string& id,
                                     std::string* label, std::string* err) {
  rules::Policy copy = p.source();
  uint64_t n = 0;
  const bool sg = id.rfind("rule:", 0) == 0, acl = id.rfind("acl:", 0) == 0;
  if ((!sg && !acl) || !parseDecimal(std::string_view(id).substr(sg ? 5 : 4), 1u << 30, &n)) {
    *err = fmt::format("what-if rule '{}': expected rule:N or acl:N as /api/check lists them", id);
    return nullptr;
  }
  if (sg) {
    if (n >= p.ruleCount()) {
      *err = fmt::format("what-if rule '{}': the policy has no such rule", id);
      return nullptr;
    }
    const rules::RuleInfo& ri = p.rule(static_cast<rules::RuleId>(n));
    auto& list = ri.dir == rules::Direction::kInbound ? copy.groups[ri.group].inbound
                                                      : copy.groups[ri.group].outbound;
    list.erase(list.begin() + ri.index);
    *label = ruleRef(p, static_cast<rules::RuleId>(n))["label"];
  } else {
    if (n >= p.aclEntryCount() || p.aclEntry(static_cast<rules::AclEntryId>(n)).rule_number == 0) {
      *err = fmt::format("what-if rule '{}': the policy has no such ACL entry", id);
      return nullptr;
    }
    const rules::AclEntryInfo& ai = p.aclEntry(static_cast<rules::AclEntryId>(n));
    auto& list = ai.dir == rules::Direction::kInbound ? copy.acls[ai.acl].inbound
                                                      : copy.acls[ai.acl].outbound;
    list.erase(
        std::remove_if(list.begin(), list.end(),
                       [&](const rules::AclEntry& x) { return x.rule_number == ai.rule_number; }),
        list.end());
    *label = aclRef(p, static_cast<rules::AclEntryId>(n))["label"];
  }
  rules::CompileResult c = rules::compile(copy);
  if (!c.policy) *err = "the policy without that rule does not compile";
  return c.policy;
}

// ---- scenario ----

std::optional<std::vector<uint8_t>> decodeBase64(std::string_view s, size_t max_out) {
  std::vector<uint8_t> out;
  out.reserve(std::min(max_out, s.size() / 4 * 3 + 3));
  uint32_t acc = 0;
  int bits = 0;
  for (char ch : s) {
    int v;
    if (ch >= 'A' && ch <= 'Z')
      v = ch - 'A';
    else if (ch >= 'a' && ch <= 'z')
      v = ch - 'a' + 26;
    else if (ch >= '0' && ch <= '9')
      v = ch - '0' + 52;
    else if (ch == '+')
      v = 62;
    else if (ch == '/')
      v = 63;
    else if (ch == '=' || ch == '\n' || ch == '\r')
      continue;
    else
      return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      if (out.size() >= max_out) return std::nullopt;
      out.push_back(static_cast<uint8_t>(acc >> bits));
    }
  }
  return out;
}

struct ScenarioFrames {
  std::vector<Frame> frames;
  bool truncated = false;  // more packets than the limit: the rest were left out
};

bool framesFromFlows(const Json& flows, const PlaygroundLimits& lim, ScenarioFrames* sc,
                     Failure* f) {
  if (!flows.is_array()) {
    *f = {400, "bad scenario", "'flows' must be a list of flow specs (strings)"};
    return false;
  }
  GenOptions opt;
  size_t line = 0;
  for (const Json& spec : flows) {
    ++line;
    if (!spec.is_string()) {
      *f = {400, "bad scenario", fmt::format("flow {}: expected a string", line)};
      return false;
    }
    const std::string text = spec.get<std::string>();
    if (text.find_first_not_of(" \t") == std::string::npos) continue;
    auto plan = parseFlowSpec(text);
    if (!plan) {
      *f = {400, "bad scenario", fmt::format("flow {}: {}", line, plan.message())};
      return false;
    }
    opt.explicit_flows.push_back(*plan);
    if (opt.explicit_flows.size() > lim.max_flows) {
      *f = {413, "scenario too large", fmt::format("at most {} flows", lim.max_flows)};
      return false;
    }
  }
  if (opt.explicit_flows.empty()) {
    *f = {400, "bad scenario",
          "no flows: add a flow spec such as 'tcp 198.51.100.7:50000 -> "
          "10.0.1.10:443 data=1'"};
    return false;
  }
  TraceGenerator gen(opt);
  GenPacket p;
  while (gen.next(&p)) {
    if (sc->frames.size() == lim.max_packets) {
      sc->truncated = true;
      break;
    }
    sc->frames.push_back(Frame{p.ts_ns, p.frame, opt.link});
  }
  return true;
}

// Removes a temporary file when it goes out of scope.
struct TempFile {
  std::string path;
  ~TempFile() {
    if (!path.empty()) ::unlink(path.c_str());
  }
};

bool framesFromPcap(const std::string& b64, const PlaygroundLimits& lim, ScenarioFrames* sc,
                    Failure* f) {
  if (b64.size() > (lim.max_pcap_bytes / 3 + 2) * 4 + 64) {
    *f = {413, "trace too large",
          fmt::format("the trace may be at most {} bytes", lim.max_pcap_bytes)};
    return false;
  }
  std::optional<std::vector<uint8_t>> bytes = decodeBase64(b64, lim.max_pcap_bytes);
  if (!bytes) {
    *f = {400, "bad trace",
          "'pcap' must be the trace's bytes in base64, at most " +
              std::to_string(lim.max_pcap_bytes) + " bytes"};
    return false;
  }
  const char* tmpdir = std::getenv("TMPDIR");
  TempFile tmp{std::string(tmpdir != nullptr && *tmpdir != '\0' ? tmpdir : "/tmp") +
               "/statewall-playground-XXXXXX"};
  const int fd = ::mkstemp(tmp.path.data());
  if (fd < 0) {
    tmp.path.clear();
    *f = {500, "cannot store the trace", "mkstemp failed"};
    return false;
  }
  size_t done = 0;
  while (done < bytes->size()) {
    const ssize_t w = ::write(fd, bytes->data() + done, bytes->size() - done);
    if (w <= 0) break;
    done += static_cast<size_t>(w);
  }
  ::close(fd);
  if (done != bytes->size()) {
    *f = {500, "cannot store the trace", "write failed"};
    return false;
  }
  TraceError terr;
  std::unique_ptr<TraceReader> reader = TraceReader::open(tmp.path, &terr);
  auto uploaded = [&](std::string msg) {
    // Name the upload, not the temporary file.
    for (size_t p = msg.find(tmp.path); p != std::string::npos; p = msg.find(tmp.path))
      msg.replace(p, tmp.path.size(), "uploaded trace");
    return msg;
  };
  if (!reader) {
    *f = {400, "bad trace", uploaded(terr.str())};
    return false;
  }
  TracePacket tp;
  for (;;) {
    const TraceReader::Status st = reader->next(&tp);
    if (st == TraceReader::Status::kEnd) break;
    if (st == TraceReader::Status::kError) {
      *f = {400, "bad trace", uploaded(reader->error().str())};
      return false;
    }
    if (sc->frames.size() == lim.max_packets) {
      sc->truncated = true;
      break;
    }
    sc->frames.push_back(
        Frame{tp.ts_ns, std::vector<uint8_t>(tp.data, tp.data + tp.caplen), tp.link});
  }
  if (sc->frames.empty()) {
    *f = {400, "bad trace", "the trace holds no packet the engine can read"};
    return false;
  }
  return true;
}

// ---- runs ----

// One packet as the Replay's engine judged it, and the connection table right after it.
struct Judged {
  Verdict v;
  uint64_t ts_ns = 0;
  uint64_t conn = 0;  // #N
  std::string text;   // Replay::describe()
  Json table = Json::array();
  size_t table_size = 0;  // connections in the table (table lists at most kTableRows)
};

std::string endpoint(const rules::IpAddr& a, uint16_t port, bool ported) {
  if (!ported) return a.str();
  return rules::endpointText(a, port);
}

// The engine's connection table after a packet: the packet's own connection first, then the
// others by number, at most kTableRows of them (*total: how many the table holds).
Json tableOf(const Replay& replay, dataplane::Engine& engine, const rules::CompiledPolicy& pol,
             uint64_t now_ns, uint64_t current, size_t* total) {
  std::vector<std::pair<uint64_t, dataplane::ConnectionInfo>> conns;
  engine.forEachConnection([&](const dataplane::ConnectionInfo& c) {
    conns.emplace_back(replay.connectionNumber(c.id), c);
  });
  *total = conns.size();
  auto before = [current](const auto& a, const auto& b) {
    return std::make_pair(a.first != current, a.first) <
           std::make_pair(b.first != current, b.first);
  };
  const size_t shown = std::min(conns.size(), kTableRows);
  std::partial_sort(conns.begin(), conns.begin() + static_cast<long>(shown), conns.end(), before);
  Json rows = Json::array();
  for (size_t i = 0; i < shown; ++i) {
    const auto& [n, c] = conns[i];
    const bool ported = c.proto == 6 || c.proto == 17;
    Json sides = Json::array();
    const rules::IfaceId si = pol.interfaceOf(c.orig_src), di = pol.interfaceOf(c.orig_dst);
    if (c.src_side_tracked && si != rules::kNoIface) sides.push_back(pol.iface(si).name);
    if (c.dst_side_tracked && di != rules::kNoIface) sides.push_back(pol.iface(di).name);
    const int64_t left = static_cast<int64_t>(c.expires_ns) - static_cast<int64_t>(now_ns);
    rows.push_back(
        {{"conn", n},
         {"proto", rules::protoName(c.proto)},
         {"orig", endpoint(c.orig_src, c.orig_sport, ported)},
         {"resp", endpoint(c.orig_dst, c.orig_dport, ported)},
         {"tcp_state",
          c.proto == 6 ? Json(std::string(dataplane::tcpStateName(c.tcp_state))) : Json(nullptr)},
         {"tracked_by", sides},
         {"tracked", c.src_side_tracked || c.dst_side_tracked},
         {"replied", c.replied},
         {"expires_in", static_cast<double>(left) / kNs},
         {"expired", left <= 0}});
  }
  // Numbered order on the page, the packet's own connection included.
  std::sort(rows.begin(), rows.end(),
            [](const Json& x, const Json& y) { return x["conn"] < y["conn"]; });
  return rows;
}

// Runs `frames` through a Replay that judges one packet per burst; with `change`, publishes
// `change` before the first packet at or after `change_at_ns`.
std::vector<Judged> judge(const rules::CompiledPolicyPtr& policy, const std::vector<Frame>& frames,
                          bool with_table, const rules::CompiledPolicyPtr& change = nullptr,
                          uint64_t change_at_ns = 0) {
  ReplayOptions ro;
  ro.burst = 1;
  ro.table_capacity = kTableCapacity;
  Replay replay(policy, ro);
  std::vector<Judged> out;
  out.reserve(frames.size());
  replay.prepareFrames();
  dataplane::Engine& engine = *replay.engine();
  const rules::CompiledPolicy* judging = policy.get();
  replay.setObserver([&](uint64_t, uint64_t ts, const Verdict& v, const dataplane::ParsedPacket&) {
    Judged j;
    j.v = v;
    j.ts_ns = ts;
    j.conn = replay.connectionNumber(v.conn_id);
    j.text = replay.describe(v);
    if (with_table) j.table = tableOf(replay, engine, *judging, ts, j.conn, &j.table_size);
    out.push_back(std::move(j));
  });
  size_t split = frames.size();
  if (change) {
    split = 0;
    while (split < frames.size() && frames[split].ts_ns < change_at_ns)
      ++split;
  }
  replay.runFrames(std::vector<Frame>(frames.begin(), frames.begin() + static_cast<long>(split)));
  if (change && split < frames.size()) {
    replay.publish(change);
    judging = change.get();
    replay.runFrames(std::vector<Frame>(frames.begin() + static_cast<long>(split), frames.end()));
  }
  std::string err;
  replay.finish(&err);
  return out;
}

// The line of the policy that decided a verdict, as the engine's Verdict names it.
Json decidedBy(const rules::CompiledPolicy& p, const Verdict& v) {
  if (v.reason == Reason::kDenyAcl && v.acl_entry != rules::kNoAclEntry) {
    Json j = aclRef(p, v.acl_entry);
    if (p.aclEntry(v.acl_entry).rule_number == 0) {
      j["line"] = nullptr;  // the implicit '*': no line; the ACL's own line instead
      j["acl_line"] = p.acl(p.aclEntry(v.acl_entry).acl).loc.line;
    }
    return j;
  }
  if (v.rule != rules::kNoRule) return ruleRef(p, v.rule);
  if (v.reason == Reason::kDenySg && v.deny_iface != rules::kNoIface) {
    const rules::InterfaceInfo& itf = p.iface(v.deny_iface);
    return {{"kind", "no-rule"},
            {"label",
             fmt::format("no {} rule of {} allows it", rules::directionName(v.deny_dir), itf.name)},
            {"line", itf.loc.line}};
  }
  return nullptr;
}

// Adds the policy line to each step that names a rule or ACL entry (for the page to light up).
void addStepLines(const rules::CompiledPolicy& p, Json& steps) {
  for (Json& s : steps) {
    if (s.contains("rule") && s["rule"].is_object() && s["rule"].contains("group")) {
      const Json& r = s["rule"];
      for (size_t k = 0; k < p.ruleCount(); ++k) {
        const rules::RuleInfo& ri = p.rule(static_cast<rules::RuleId>(k));
        if (ri.group_name == r.value("group", "") &&
            rules::directionName(ri.dir) == r.value("direction", "") &&
            ri.index == r.value("index", 0u)) {
          s["rule"]["line"] = ri.loc.line;
          s["rule"]["id"] = fmt::format("rule:{}", k);
          break;
        }
      }
    }
    if (s.value("kind", "") == "acl" && s.contains("entry") && s["entry"].is_object()) {
      const std::string acl = s.value("acl", "");
      const std::string dir = s.value("direction", "");
      const Json num = s["entry"].value("number", Json(nullptr));
      for (size_t k = 0; k < p.aclEntryCount(); ++k) {
        const rules::AclEntryInfo& ai = p.aclEntry(static_cast<rules::AclEntryId>(k));
        if (ai.acl_name == acl && rules::directionName(ai.dir) == dir &&
            ai.ruleNumberStr() == (num.is_string() ? num.get<std::string>() : num.dump())) {
          s["entry"]["line"] = ai.loc.line;
          if (ai.rule_number != 0) s["entry"]["id"] = fmt::format("acl:{}", k);
          break;
        }
      }
    }
  }
}

struct RunResult {
  Json packets = Json::array();
  std::vector<Judged> judged;
  size_t disagreements = 0;
};

RunResult runScenario(const rules::CompiledPolicyPtr& policy, const ScenarioFrames& sc) {
  RunResult out;
  ExplainOptions eo;
  eo.contrast = true;
  eo.table_capacity = kTableCapacity;
  std::vector<PacketExplanation> ex = explainFrames(policy, sc.frames, eo);
  out.judged = judge(policy, sc.frames, /*with_table=*/true);
  const uint64_t t0 = sc.frames.empty() ? 0 : sc.frames.front().ts_ns;
  for (size_t i = 0; i < ex.size(); ++i) {
    const PacketExplanation& e = ex[i];
    Json p = Json::parse(e.json);
    Json row;
    row["index"] = e.index;
    row["t"] = static_cast<double>(e.ts_ns - std::min(e.ts_ns, t0)) / kNs;
    row["summary"] = e.summary;
    row["verdict"] = p["verdict"];
    row["reason"] = p["reason"];
    row["direction"] = p["direction"];
    row["connection"] = p["connection"];
    row["packet"] = p["packet"];
    Json steps = p["steps"];
    addStepLines(*policy, steps);
    row["steps"] = std::move(steps);
    row["near_misses"] = p["near_misses"];
    row["stateless"] = p["stateless"];
    row["explanation"] = e.text;
    if (i < out.judged.size()) {
      const Judged& j = out.judged[i];
      row["decided_by"] = decidedBy(*policy, j.v);
      row["tcp"] = j.v.tcp_before == dataplane::TcpState::kNone &&
                           j.v.tcp_after == dataplane::TcpState::kNone
                       ? Json(nullptr)
                       : Json{{"before", dataplane::tcpStateName(j.v.tcp_before)},
                              {"after", dataplane::tcpStateName(j.v.tcp_after)}};
      row["table"] = j.table;
      row["table_size"] = j.table_size;
      if (j.v.reason != e.reason) {
        ++out.disagreements;
        row["disagreement"] = fmt::format("the one-packet-burst replay judged it {}",
                                          dataplane::reasonCode(j.v.reason));
      }
    }
    out.packets.push_back(std::move(row));
  }
  return out;
}

Json whatIf(const rules::CompiledPolicyPtr& policy, const ScenarioFrames& sc, const RunResult& base,
            const rules::CompiledPolicyPtr& changed, const std::string& label, double at_s) {
  const uint64_t t0 = sc.frames.empty() ? 0 : sc.frames.front().ts_ns;
  const uint64_t at_ns = t0 + static_cast<uint64_t>(std::max(0.0, at_s) * kNs);
  std::vector<Judged> alt = judge(policy, sc.frames, /*with_table=*/false, changed, at_ns);
  Json rows = Json::array(), survive = Json::array(), stop = Json::array();
  std::vector<uint64_t> seen_survive;
  std::vector<std::string> seen_stop;
  size_t changed_n = 0;
  for (size_t i = 0; i < alt.size() && i < base.judged.size(); ++i) {
    const Judged& a = alt[i];
    const Judged& b = base.judged[i];
    const bool after = sc.frames[i].ts_ns >= at_ns;
    const bool differs = a.v.reason != b.v.reason;
    changed_n += differs;
    const std::string summary = base.packets[i].value("summary", "");
    rows.push_back({{"index", i + 1},
                    {"after_change", after},
                    {"before",
                     {{"verdict", b.v.allowed() ? "allow" : "deny"},
                      {"reason", dataplane::reasonCode(b.v.reason)}}},
                    {"after",
                     {{"verdict", a.v.allowed() ? "allow" : "deny"},
                      {"reason", dataplane::reasonCode(a.v.reason)},
                      {"text", a.text}}},
                    {"changed", differs}});
    if (!after) continue;
    // A tracked connection that carries on: its packets after the change still pass as tracked.
    if (a.v.reason == Reason::kAllowTracked && b.v.reason == Reason::kAllowTracked &&
        std::find(seen_survive.begin(), seen_survive.end(), b.conn) == seen_survive.end()) {
      seen_survive.push_back(b.conn);
      survive.push_back({{"connection", b.conn}, {"first_index", i + 1}, {"summary", summary}});
    }
    // A flow that stops: allowed before the change, denied after it.
    if (b.v.allowed() && !a.v.allowed()) {
      const Json& pk = base.packets[i]["packet"];
      std::string key =
          pk.value("proto", "") + " " + pk.value("src", "") + " " + pk.value("dst", "");
      if (std::find(seen_stop.begin(), seen_stop.end(), key) == seen_stop.end()) {
        seen_stop.push_back(key);
        stop.push_back({{"first_index", i + 1},
                        {"summary", summary},
                        {"was", dataplane::reasonCode(b.v.reason)},
                        {"now", dataplane::reasonCode(a.v.reason)},
                        {"untracked", b.v.reason == Reason::kAllowUntracked},
                        {"text", a.text}});
      }
    }
  }
  return {{"rule", label},        {"at", at_s},         {"packets", rows},
          {"changed", changed_n}, {"survive", survive}, {"stop", stop}};
}

// ---- quiz: docs/teaching.md's lessons as predict-then-reveal questions ----

struct QuizQuestion {
  const char* id;
  const char* lesson;    // the section of docs/teaching.md it comes from
  const char* question;  // asked about `packet`
  const char* policy;    // YAML
  std::vector<const char*> flows;
  uint64_t packet;  // 1-based
};

const std::vector<QuizQuestion>& quizQuestions() {
  static const std::vector<QuizQuestion> q = {
      {"reply-without-outbound-rule",
       "1. \"If I allow inbound, do I need an outbound rule?\"",
       "The group allows HTTPS in and has no outbound rule at all. Will the server's SYN-ACK "
       "reply pass?",
       "version: 1\n"
       "groups:\n"
       "  web:\n"
       "    inbound:\n"
       "      - {proto: tcp, ports: 443, from: 0.0.0.0/0, description: HTTPS from anywhere}\n"
       "    outbound: []   # no outbound rule at all\n"
       "interfaces:\n"
       "  web-1: {addresses: [10.0.1.10], groups: [web]}\n",
       {"tcp 198.51.100.7:50000 -> 10.0.1.10:443 data=1"},
       2},
      {"acl-ephemeral-port-trap",
       "3. The network-ACL ephemeral-port trap",
       "The subnet's network ACL lets replies in on ephemeral ports for TCP only. web-1 asks "
       "8.8.8.8 for DNS. Will the answer pass?",
       "version: 1\n"
       "groups:\n"
       "  web:\n"
       "    inbound:\n"
       "      - {proto: tcp, ports: 443, from: 0.0.0.0/0}\n"
       "network_acls:\n"
       "  public-acl:\n"
       "    inbound:\n"
       "      - {rule: 100, action: allow, proto: tcp, ports: 443, from: 0.0.0.0/0}\n"
       "      - {rule: 130, action: allow, proto: tcp, ports: 1024-65535, from: 0.0.0.0/0}\n"
       "    outbound:\n"
       "      - {rule: 100, action: allow, proto: all, to: 0.0.0.0/0}\n"
       "subnets:\n"
       "  public: {cidr: [10.0.1.0/24], acl: public-acl}\n"
       "interfaces:\n"
       "  web-1: {addresses: [10.0.1.10], groups: [web]}\n",
       {"udp 10.0.1.10:53000 -> 8.8.8.8:53"},
       2},
      {"icmp-error-is-related",
       "5. ICMP errors are related traffic",
       "No rule allows any ICMP in. A router on the path answers the server's first reply with "
       "'fragmentation needed'. Will that ICMP error reach the server?",
       "version: 1\n"
       "groups:\n"
       "  web:\n"
       "    inbound:\n"
       "      - {proto: tcp, ports: 443, from: 0.0.0.0/0}\n"
       "    outbound: []\n"
       "interfaces:\n"
       "  web-1: {addresses: [10.0.1.10], groups: [web]}\n",
       {"tcp 198.51.100.7:50000 -> 10.0.1.10:443 data=1 error=ptb error-to=resp "
        "error-from=192.0.2.1"},
       6},
      {"udp-reply-after-timeout",
       "6. Idle timeouts",
       "web-1 sends a UDP datagram to 198.51.100.9 and the answer comes 40 seconds later (the "
       "UDP timeout is 30 s; no inbound rule allows UDP). Will the late answer pass?",
       "version: 1\n"
       "groups:\n"
       "  web:\n"
       "    inbound:\n"
       "      - {proto: tcp, ports: 443, from: 0.0.0.0/0}\n"
       "    outbound:\n"
       "      - {proto: udp, ports: 9000, to: 198.51.100.0/24}\n"
       "interfaces:\n"
       "  web-1: {addresses: [10.0.1.10], groups: [web]}\n",
       {"udp 10.0.1.10:40000 -> 198.51.100.9:9000 delay=40"},
       2},
  };
  return q;
}

struct QuizAnswer {
  std::string summary;  // the packet asked about
  std::string verdict, reason, explanation;
  Json steps;
};

// Runs a question's scenario through the engine; nullopt when it does not hold the packet.
std::optional<QuizAnswer> answerOf(const QuizQuestion& q) {
  LoadedPolicy lp = loadPolicy(std::string("quiz-") + q.id + ".yaml", q.policy);
  if (!lp.valid) return std::nullopt;
  Json flows = Json::array();
  for (const char* f : q.flows)
    flows.push_back(f);
  ScenarioFrames sc;
  Failure fail;
  if (!framesFromFlows(flows, PlaygroundLimits{}, &sc, &fail)) return std::nullopt;
  ExplainOptions eo;
  eo.packets = {{q.packet, q.packet}};
  eo.table_capacity = kTableCapacity;
  std::vector<PacketExplanation> ex = explainFrames(lp.compiled, sc.frames, eo);
  if (ex.size() != 1) return std::nullopt;
  Json p = Json::parse(ex[0].json);
  QuizAnswer a;
  a.summary = ex[0].summary;
  a.verdict = p["verdict"];
  a.reason = p["reason"];
  a.explanation = ex[0].text;
  a.steps = p["steps"];
  return a;
}

// ---- the TCP state machine, from the engine's table ----

Json tcpMachine() {
  Json states = Json::array(), edges = Json::array();
  for (size_t s = 0; s < dataplane::kTcpStateCount; ++s)
    states.push_back(dataplane::tcpStateName(static_cast<dataplane::TcpState>(s)));
  dataplane::forEachTransition([&](const dataplane::TcpTransition& t) {
    if (t.from == t.to || t.action == dataplane::TcpAction::kInvalid) return;
    edges.push_back({{"from", dataplane::tcpStateName(t.from)},
                     {"to", dataplane::tcpStateName(t.to)},
                     {"dir", dataplane::tcpDirName(t.dir)},
                     {"event", dataplane::tcpEventName(t.event)}});
  });
  return {{"states", states}, {"transitions", edges}};
}

}  // namespace

struct Playground::Impl {
  PlaygroundOptions opt;
  std::vector<std::optional<QuizAnswer>> answers;  // per quizQuestions() entry

  Json parseBody(std::string_view body, Failure* f) const {
    if (body.size() > opt.limits.max_body_bytes) {
      *f = {413, "payload too large",
            fmt::format("the request body may be at most {} bytes", opt.limits.max_body_bytes)};
      return nullptr;
    }
    try {
      Json j = Json::parse(body);
      if (!j.is_object()) {
        *f = {400, "bad request", "the body must be a JSON object"};
        return nullptr;
      }
      return j;
    } catch (const Json::parse_error& e) {
      *f = {400, "bad JSON", fmt::format("the body is not JSON: {}", e.what())};
      return nullptr;
    }
  }

  // The request's policy text, checked; *lp holds its diagnostics.
  bool policyOf(const Json& req, LoadedPolicy* lp, Failure* f) const {
    if (!req.contains("policy") || !req["policy"].is_string()) {
      *f = {400, "bad request", "'policy' (the policy's YAML text) is required"};
      return false;
    }
    const std::string text = req["policy"].get<std::string>();
    if (text.size() > opt.limits.max_policy_bytes) {
      *f = {413, "policy too large",
            fmt::format("the policy may be at most {} bytes", opt.limits.max_policy_bytes)};
      return false;
    }
    *lp = loadPolicy(opt.policy_name, text);
    return true;
  }

  PlaygroundReply state() const {
    Json quiz = Json::array();
    const auto& qs = quizQuestions();
    for (size_t i = 0; i < qs.size(); ++i) {
      if (!answers[i]) continue;
      Json flows = Json::array();
      for (const char* fl : qs[i].flows)
        flows.push_back(fl);
      quiz.push_back({{"id", qs[i].id},
                      {"lesson", qs[i].lesson},
                      {"question", qs[i].question},
                      {"packet", qs[i].packet},
                      {"summary", answers[i]->summary},
                      {"policy", qs[i].policy},
                      {"flows", flows}});
    }
    return jsonReply(200,
                     {{"policy_name", opt.policy_name},
                      {"policy", opt.policy_text},
                      {"flows", Json::array({"tcp 198.51.100.7:50000 -> 10.0.1.10:443 data=1"})},
                      {"tcp_machine", tcpMachine()},
                      {"quiz", quiz},
                      {"limits",
                       {{"max_body_bytes", opt.limits.max_body_bytes},
                        {"max_pcap_bytes", opt.limits.max_pcap_bytes},
                        {"max_flows", opt.limits.max_flows},
                        {"max_packets", opt.limits.max_packets}}}});
  }

  PlaygroundReply check(const Json& req) const {
    LoadedPolicy lp;
    Failure f;
    if (!policyOf(req, &lp, &f)) return errorReply(f.status, f.error, f.detail);
    Json out{{"valid", lp.valid}, {"diagnostics", lp.diagnostics}};
    out["rules"] = lp.valid ? ruleList(*lp.compiled) : Json::array();
    return jsonReply(200, out);
  }

  PlaygroundReply run(const Json& req) const {
    LoadedPolicy lp;
    Failure f;
    if (!policyOf(req, &lp, &f)) return errorReply(f.status, f.error, f.detail);
    if (!lp.valid) {
      return jsonReply(400, {{"error", "invalid policy"},
                             {"detail", "fix the policy's errors first"},
                             {"diagnostics", lp.diagnostics}});
    }
    ScenarioFrames sc;
    const bool has_pcap = req.contains("pcap") && !req["pcap"].is_null();
    if (has_pcap) {
      if (!req["pcap"].is_string())
        return errorReply(400, "bad trace", "'pcap' must be base64 text");
      if (!framesFromPcap(req["pcap"].get<std::string>(), opt.limits, &sc, &f))
        return errorReply(f.status, f.error, f.detail);
    } else if (!framesFromFlows(req.value("flows", Json::array()), opt.limits, &sc, &f)) {
      return errorReply(f.status, f.error, f.detail);
    }
    RunResult r = runScenario(lp.compiled, sc);
    Json out{{"packets", r.packets},
             {"truncated", sc.truncated},
             {"disagreements", r.disagreements},
             {"rules", ruleList(*lp.compiled)}};
    if (req.contains("whatif") && !req["whatif"].is_null()) {
      const Json& w = req["whatif"];
      if (!w.is_object() || !w.contains("rule") || !w["rule"].is_string() ||
          (w.contains("at") && !w["at"].is_number())) {
        return errorReply(400, "bad what-if",
                          "'whatif' must be {\"rule\": \"rule:N\" or \"acl:N\", \"at\": seconds}");
      }
      std::string label, err;
      rules::CompiledPolicyPtr changed =
          withoutRule(*lp.compiled, w["rule"].get<std::string>(), &label, &err);
      if (!changed) return errorReply(400, "bad what-if", err);
      out["whatif"] = whatIf(lp.compiled, sc, r, changed, label, w.value("at", 0.0));
    }
    return jsonReply(200, out);
  }

  PlaygroundReply quizAnswer(const Json& req) const {
    const std::string id = req.value("id", "");
    const std::string guess = req.value("guess", "");
    if (guess != "allow" && guess != "deny")
      return errorReply(400, "bad request", "'guess' must be \"allow\" or \"deny\"");
    const auto& qs = quizQuestions();
    for (size_t i = 0; i < qs.size(); ++i) {
      if (id != qs[i].id || !answers[i]) continue;
      const QuizAnswer& a = *answers[i];
      return jsonReply(200, {{"id", id},
                             {"guess", guess},
                             {"verdict", a.verdict},
                             {"reason", a.reason},
                             {"correct", guess == a.verdict},
                             {"summary", a.summary},
                             {"explanation", a.explanation},
                             {"steps", a.steps}});
    }
    return errorReply(404, "no such question", fmt::format("no quiz question '{}'", id));
  }
};

Playground::Playground(PlaygroundOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->opt = std::move(options);
  // The answers are the engine's, computed once: the same for every request.
  for (const QuizQuestion& q : quizQuestions())
    impl_->answers.push_back(answerOf(q));
}

Playground::~Playground() = default;

const PlaygroundOptions& Playground::options() const {
  return impl_->opt;
}

PlaygroundReply Playground::handle(std::string_view method, std::string_view target,
                                   std::string_view body) const {
  const std::string_view path = target.substr(0, target.find('?'));
  try {
    if (path == "/" || path == "/index.html") {
      if (method != "GET") return errorReply(405, "method not allowed", "use GET");
      PlaygroundReply r;
      r.content_type = "text/html; charset=utf-8";
      r.body = std::string(playgroundPage());
      return r;
    }
    if (path == "/api/state") {
      if (method != "GET") return errorReply(405, "method not allowed", "use GET");
      return impl_->state();
    }
    if (path == "/api/check" || path == "/api/run" || path == "/api/quiz/answer") {
      if (method != "POST") return errorReply(405, "method not allowed", "use POST");
      Failure f;
      Json req = impl_->parseBody(body, &f);
      if (req.is_null()) return errorReply(f.status, f.error, f.detail);
      if (path == "/api/check") return impl_->check(req);
      if (path == "/api/run") return impl_->run(req);
      return impl_->quizAnswer(req);
    }
    return errorReply(404, "not found", fmt::format("no such page: {}", path));
  } catch (const std::bad_alloc&) {
    return errorReply(503, "out of memory", "the request needed more memory than available");
  } catch (const std::exception& e) {
    // A JSON field of the wrong type deep in a request, say: the request's fault, not a crash.
    return errorReply(400, "bad request", e.what());
  }
}

}  // namespace statewall::sim
