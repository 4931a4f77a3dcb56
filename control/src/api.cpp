#include "statewall/control/api.hpp"

#include <algorithm>
#include <atomic>
#include <ctime>
#include <exception>
#include <mutex>
#include <new>
#include <queue>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "conn_numbers.hpp"
#include "json_body.hpp"
#include "query.hpp"
#include "snapshot.hpp"
#include "statewall/build_info.hpp"
#include "statewall/dataplane/engine.hpp"
#include "statewall/rules/compiled.hpp"
#include "statewall/rules/load_compile.hpp"
#include "statewall/rules/vocab.hpp"
#include "statewall/rules/vocab_json.hpp"

namespace statewall::control {
namespace {

using nlohmann::json;

constexpr size_t kMaxDocumentName = 256;

std::string dump(const json& j) {
  // Policy texts and names may hold invalid UTF-8: replace it instead of throwing.
  return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

ApiResponse jsonResponse(int status, const json& j) {
  ApiResponse r;
  r.status = status;
  r.body = dump(j);
  return r;
}

ApiResponse errorResponse(int status, std::string_view error, std::string_view detail) {
  ApiResponse r;
  r.status = status;
  r.body = errorBody(error, detail);
  return r;
}

std::string rfc3339(std::chrono::system_clock::time_point t) {
  return rules::rfc3339Millis(static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count()));
}

json diagnosticJson(const rules::Diagnostic& d) {
  json j = {{"severity", d.severity == rules::Severity::kError ? "error" : "warning"},
            {"location", d.loc.str()},
            {"file", d.loc.file},
            {"message", d.message},
            {"text", d.str()}};
  if (d.loc.line > 0) {
    j["line"] = d.loc.line;
    j["col"] = d.loc.col;
  }
  if (!d.loc.json_path.empty()) j["json_path"] = d.loc.json_path;
  return j;
}

json timeoutsJson(const rules::Timeouts& t) {
  json j = {{"profile", t.profile == rules::TimeoutProfile::kAws ? "aws" : "linux"}};
  for (size_t k = 0; k < rules::kTimeoutKeyCount; ++k)
    j[std::string(rules::timeoutKeyName(static_cast<rules::TimeoutKey>(k)))] = t.seconds[k];
  return j;
}

json summaryJson(const rules::CompiledPolicy& p) {
  return {{"groups", p.source().groups.size()},
          {"rules", p.ruleCount()},
          {"acls", p.aclCount()},
          {"acl_entries", p.aclEntryCount()},
          {"interfaces", p.ifaceCount()},
          {"subnets", p.subnetCount()},
          {"prefix_lists", p.source().prefix_lists.size()}};
}

json ruleJson(const rules::CompiledPolicy& p, rules::RuleId id) {
  const rules::RuleInfo& r = p.rule(id);
  json j = rules::ruleJson<json>(r);
  j["id"] = id;
  if (!r.description.empty()) j["description"] = r.description;
  if (!r.loc.file.empty()) j["location"] = r.loc.str();
  return j;
}

json aclEntryJson(const rules::CompiledPolicy& p, rules::AclEntryId id) {
  const rules::AclEntryInfo& e = p.aclEntry(id);
  json j = rules::aclEntryJson<json>(e);
  j["id"] = id;
  if (!e.loc.file.empty()) j["location"] = e.loc.str();
  return j;
}

// The methods each path accepts; used for 404 vs 405 and the Allow header.
struct RouteInfo {
  std::string_view path;
  std::string_view allow;
};
constexpr RouteInfo kRoutes[] = {
    {"/v1/policy", "GET, PUT"}, {"/v1/policy/check", "POST"}, {"/v1/connections", "GET, DELETE"},
    {"/v1/stats", "GET"},       {"/metrics", "GET"},          {"/v1/timeouts", "PUT"},
    {"/v1/health", "GET"},      {"/v1/version", "GET"},       {"/v1/drops", "GET"},
    {"/healthz", "GET"},
};

Status rejectParams(const Target& t, std::initializer_list<std::string_view> allowed) {
  for (const auto& [k, v] : t.params) {
    bool ok = false;
    for (auto a : allowed)
      ok = ok || k == a;
    if (!ok) return Status::failure("unknown query parameter: " + k);
  }
  return Status::success();
}

}  // namespace

std::string errorBody(std::string_view error, std::string_view detail) {
  return dump(json{{"error", error}, {"detail", detail}});
}

// What the API remembers about the policy it last published (or found at start).
struct LoadRecord {
  std::weak_ptr<const rules::CompiledPolicy> policy;
  std::chrono::system_clock::time_point loaded_at;
  std::string origin;  // "host" (running when the API started) or "api"
  std::vector<rules::SourceText> documents;
  bool timeouts_changed = false;  // PUT /v1/timeouts replaced the documents' timeouts
};

struct RateSample {
  std::chrono::steady_clock::time_point at;
  uint64_t packets = 0;
  uint64_t bytes = 0;
};

struct ControlApi::State {
  HostHooks hooks;
  ApiOptions options;

  std::mutex publish_mu;  // serializes policy changes (held across compile and publish)

  std::mutex record_mu;  // guards record and earlier_ids
  LoadRecord record;
  // Ids (sorted) of the connections that were in the table when a policy with other rules was
  // published: their opened_by numbers rules of an earlier policy. Taken just after the swap, so
  // a connection opened in between is counted as earlier (its rule is not shown) rather than
  // shown against the wrong rule.
  std::shared_ptr<const std::vector<uint64_t>> earlier_ids;

  // Short numbers (#N) of the connections the API has shown (conn_numbers.hpp).
  ConnNumbers conn_numbers;

  std::mutex rates_mu;  // guards samples
  std::optional<RateSample> prev, last;

  // Requests that compile a policy: running now, and finished (published, rejected or failed).
  std::atomic<uint64_t> loads_running{0};
  std::atomic<uint64_t> loads_completed{0};

  const std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();

  double uptimeSeconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  }

  uint64_t nowNs() const {
    if (hooks.now_ns) return hooks.now_ns();
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     std::chrono::steady_clock::now().time_since_epoch())
                                     .count());
  }
};

ControlApi::ControlApi(dataplane::Engine& engine, HostHooks hooks, ApiOptions options)
    : engine_(engine), state_(std::make_unique<State>()) {
  state_->hooks = std::move(hooks);
  state_->options = std::move(options);
  if (state_->options.max_page_size == 0) state_->options.max_page_size = 1;
  state_->options.default_page_size =
      std::clamp<size_t>(state_->options.default_page_size, 1, state_->options.max_page_size);
  state_->record.policy = engine_.policy();
  state_->record.loaded_at = std::chrono::system_clock::now();
  state_->record.origin = "host";
  state_->record.documents = std::move(state_->options.initial_sources);
}

ControlApi::~ControlApi() = default;

void ControlApi::sampleRates(std::chrono::steady_clock::time_point now) {
  dataplane::Counters c = engine_.counters();
  RateSample s{now, 0, 0};
  for (size_t r = 0; r < dataplane::kReasonCount; ++r) {
    s.packets += c.packets[r];
    s.bytes += c.bytes[r];
  }
  std::lock_guard lock(state_->rates_mu);
  state_->prev = state_->last;
  state_->last = s;
}

namespace {

// Everything the endpoint functions need; one per request.
struct Ctx {
  dataplane::Engine& engine;
  ControlApi::State& st;
  const ApiRequest& req;
  const Target& target;
};

}  // namespace

// ---- policy -------------------------------------------------------------------------------------

namespace {

// Reads the documents of a policy request body: a bundle, or one document named by ?name=.
Status readDocuments(const Ctx& c, std::vector<rules::SourceText>* docs) {
  Status s = rejectParams(c.target, {"name"});
  if (!s.ok()) return s;
  std::string_view ctype = c.req.content_type;
  ctype = ctype.substr(0, ctype.find(';'));
  while (!ctype.empty() && ctype.back() == ' ')
    ctype.remove_suffix(1);
  if (ctype == kBundleContentType) {
    json j;
    s = parseJsonBody(c.req.body, &j);
    if (!s.ok()) return Status::failure("bundle: " + s.message());
    if (!j.is_object() || !j.contains("documents") || !j["documents"].is_array())
      return Status::failure("bundle: expected {\"documents\": [{\"name\": ..., \"text\": ...}]}");
    for (const auto& [key, _] : j.items())
      if (key != "documents") return Status::failure("bundle: unknown key " + key);
    size_t i = 0;
    for (const json& d : j["documents"]) {
      if (!d.is_object() || !d.contains("name") || !d["name"].is_string() || !d.contains("text") ||
          !d["text"].is_string() || d.size() != 2)
        return Status::failure(fmt::format(
            "bundle: documents[{}]: expected {{\"name\": string, \"text\": string}}", i));
      std::string name = d["name"].get<std::string>();
      if (name.empty() || name.size() > kMaxDocumentName)
        return Status::failure(
            fmt::format("bundle: documents[{}]: name must have 1..{} bytes", i, kMaxDocumentName));
      docs->push_back({std::move(name), d["text"].get<std::string>()});
      ++i;
    }
    if (docs->empty()) return Status::failure("bundle: no documents");
    return Status::success();
  }
  std::string name = "policy";
  for (const auto& [k, v] : c.target.params)
    if (k == "name") name = v;
  if (name.empty() || name.size() > kMaxDocumentName)
    return Status::failure(fmt::format("name must have 1..{} bytes", kMaxDocumentName));
  docs->push_back({std::move(name), c.req.body});
  return Status::success();
}

json diagnosticsJson(const rules::Diagnostics& diags) {
  json a = json::array();
  for (const auto& d : diags)
    a.push_back(diagnosticJson(d));
  return a;
}

std::string firstError(const rules::Diagnostics& diags) {
  for (const auto& d : diags)
    if (d.severity == rules::Severity::kError) return d.str();
  return "invalid policy";
}

struct Checked {
  rules::CompiledPolicyPtr policy;  // null when invalid
  rules::Diagnostics diagnostics;
};

Checked checkDocuments(const std::vector<rules::SourceText>& docs) {
  rules::LoadCompileResult r = rules::loadAndCompile(docs);
  return Checked{std::move(r.policy), std::move(r.diagnostics)};
}

// Notes which connections predate a policy whose rules differ from the one before (a timeout
// change keeps the rules and their numbers). After the swap, under publish_mu.
void noteEarlierConnections(const Ctx& c) {
  auto ids = std::make_shared<std::vector<uint64_t>>();
  c.engine.forEachConnection([&](const dataplane::ConnectionInfo& ci) { ids->push_back(ci.id); });
  std::sort(ids->begin(), ids->end());
  std::lock_guard lock(c.st.record_mu);
  c.st.earlier_ids = std::move(ids);
}

uint64_t publishLocked(const Ctx& c, rules::CompiledPolicyPtr policy, LoadRecord record) {
  uint64_t version = 0;
  const std::function<void()> publish = [&] { version = c.engine.publish(policy); };
  if (c.st.hooks.publish_guard) {
    c.st.hooks.publish_guard(publish);
  } else {
    publish();
  }
  record.policy = policy;
  record.loaded_at = std::chrono::system_clock::now();
  {
    std::lock_guard lock(c.st.record_mu);
    c.st.record = std::move(record);
  }
  return version;
}

// Counts a request that compiles a policy while it runs (GET /v1/stats shows it).
class LoadCount {
 public:
  explicit LoadCount(ControlApi::State& st) : st_(st) {
    st_.loads_running.fetch_add(1, std::memory_order_relaxed);
  }
  ~LoadCount() {
    st_.loads_completed.fetch_add(1, std::memory_order_relaxed);
    st_.loads_running.fetch_sub(1, std::memory_order_relaxed);
  }
  LoadCount(const LoadCount&) = delete;
  LoadCount& operator=(const LoadCount&) = delete;

 private:
  ControlApi::State& st_;
};

ApiResponse putPolicy(const Ctx& c, bool publish) {
  LoadCount counted(c.st);
  std::vector<rules::SourceText> docs;
  Status s = readDocuments(c, &docs);
  if (!s.ok()) return errorResponse(400, "bad request", s.message());

  Checked checked = checkDocuments(docs);
  if (!checked.policy) {
    if (!publish) {
      return jsonResponse(
          200, {{"valid", false}, {"diagnostics", diagnosticsJson(checked.diagnostics)}});
    }
    json j = {{"error", "invalid policy"},
              {"detail", firstError(checked.diagnostics)},
              {"diagnostics", diagnosticsJson(checked.diagnostics)}};
    return jsonResponse(400, j);
  }
  json j = {{"valid", true},
            {"diagnostics", diagnosticsJson(checked.diagnostics)},
            {"summary", summaryJson(*checked.policy)}};
  if (!publish) return jsonResponse(200, j);

  uint64_t version;
  {
    std::lock_guard lock(c.st.publish_mu);
    LoadRecord rec;
    rec.origin = "api";
    rec.documents = std::move(docs);
    version = publishLocked(c, checked.policy, std::move(rec));
    noteEarlierConnections(c);
  }
  if (c.st.hooks.on_publish) c.st.hooks.on_publish(version);
  j["version"] = version;
  if (!c.st.options.runtime_change_warning.empty())
    j["warning"] = c.st.options.runtime_change_warning;
  return jsonResponse(200, j);
}

ApiResponse getPolicy(const Ctx& c) {
  Status s = rejectParams(c.target, {});
  if (!s.ok()) return errorResponse(400, "bad request", s.message());
  auto [p, version] = c.engine.publishedPolicy();
  json j = {{"version", version}};
  if (!p) {
    j["policy"] = nullptr;
    return jsonResponse(200, j);
  }
  LoadRecord rec;
  {
    std::lock_guard lock(c.st.record_mu);
    rec = c.st.record;
  }
  if (rec.policy.lock() == p) {
    j["loaded_at"] = rfc3339(rec.loaded_at);
    j["origin"] = rec.origin;
    j["timeouts_changed"] = rec.timeouts_changed;
  } else {
    // Published by the host behind the API's back: its time and texts are unknown here.
    j["loaded_at"] = nullptr;
    j["origin"] = "host";
    rec.documents.clear();
  }
  j["files"] = p->source().files;
  j["summary"] = summaryJson(*p);
  j["timeouts"] = timeoutsJson(p->timeouts());
  j["unprotected"] = p->unprotectedAllow() ? "allow" : "deny";
  j["strict"] = p->strict();
  json rules = json::array();
  for (size_t i = 0; i < p->ruleCount(); ++i)
    rules.push_back(ruleJson(*p, static_cast<rules::RuleId>(i)));
  j["rules"] = std::move(rules);
  json acl = json::array();
  for (size_t i = 0; i < p->aclEntryCount(); ++i)
    acl.push_back(aclEntryJson(*p, static_cast<rules::AclEntryId>(i)));
  j["acl_entries"] = std::move(acl);
  json ifaces = json::array();
  for (size_t i = 0; i < p->ifaceCount(); ++i) {
    const rules::InterfaceInfo& f = p->iface(static_cast<rules::IfaceId>(i));
    json addrs = json::array();
    for (const auto& a : f.addresses)
      addrs.push_back(a.str());
    json it = {{"name", f.name}, {"addresses", std::move(addrs)}, {"groups", f.group_names}};
    if (!f.id.empty()) it["id"] = f.id;
    if (f.subnet != rules::kNoSubnet) it["subnet"] = p->subnet(f.subnet).name;
    ifaces.push_back(std::move(it));
  }
  j["interfaces"] = std::move(ifaces);
  json docs = json::array();
  for (const auto& d : rec.documents)
    docs.push_back({{"name", d.name}, {"text", d.text}});
  j["documents"] = std::move(docs);
  return jsonResponse(200, j);
}

// ---- timeouts -----------------------------------------------------------------------------------

ApiResponse putTimeouts(const Ctx& c) {
  LoadCount counted(c.st);
  Status s = rejectParams(c.target, {});
  if (!s.ok()) return errorResponse(400, "bad request", s.message());
  json body;
  s = parseJsonBody(c.req.body, &body);
  if (!s.ok()) return errorResponse(400, "bad json", "body: " + s.message());
  if (!body.is_object() || body.empty())
    return errorResponse(400, "invalid timeouts",
                         "expected an object such as {\"tcp_established\": 3600}");

  std::optional<rules::TimeoutProfile> profile;
  std::vector<std::pair<size_t, uint32_t>> values;
  for (const auto& [key, v] : body.items()) {
    if (key == "profile") {
      if (v == "aws") {
        profile = rules::TimeoutProfile::kAws;
      } else if (v == "linux") {
        profile = rules::TimeoutProfile::kLinux;
      } else {
        return errorResponse(400, "invalid timeouts", "profile: expected \"aws\" or \"linux\"");
      }
      continue;
    }
    size_t k = 0;
    while (k < rules::kTimeoutKeyCount &&
           rules::timeoutKeyName(static_cast<rules::TimeoutKey>(k)) != key)
      ++k;
    if (k == rules::kTimeoutKeyCount)
      return errorResponse(400, "invalid timeouts", "unknown timeout key: " + key);
    if (!v.is_number_unsigned() || v.get<uint64_t>() > UINT32_MAX)
      return errorResponse(
          400, "invalid timeouts",
          key + ": expected a whole number of seconds, got " + dump(v).substr(0, 64));
    values.emplace_back(k, static_cast<uint32_t>(v.get<uint64_t>()));
  }

  uint64_t version;
  rules::Timeouts t;
  {
    std::lock_guard lock(c.st.publish_mu);
    rules::CompiledPolicyPtr running = c.engine.policy();
    if (!running) return errorResponse(409, "no policy", "no policy is running");
    rules::Policy copy = running->source();
    t = copy.timeouts;
    if (profile) {
      // A profile resets every key to its defaults before the explicit values apply.
      t = rules::Timeouts::defaults(*profile);
    }
    for (auto [k, secs] : values)
      t.seconds[k] = secs;
    std::string err = t.validate();
    if (!err.empty()) return errorResponse(400, "invalid timeouts", err);
    copy.timeouts = t;
    rules::CompileResult cr = rules::compile(copy);
    if (!cr.policy)
      return errorResponse(500, "internal error",
                           "recompiling the running policy failed: " + firstError(cr.diagnostics));
    LoadRecord rec;
    {
      std::lock_guard rlock(c.st.record_mu);
      if (c.st.record.policy.lock() == running) rec = c.st.record;
    }
    if (rec.origin.empty()) rec.origin = "host";
    rec.timeouts_changed = true;
    version = publishLocked(c, std::move(cr.policy), std::move(rec));
  }
  if (c.st.hooks.on_publish) c.st.hooks.on_publish(version);
  json j = {{"version", version}, {"timeouts", timeoutsJson(t)}};
  if (!c.st.options.runtime_change_warning.empty())
    j["warning"] = c.st.options.runtime_change_warning;
  return jsonResponse(200, j);
}

// ---- connections --------------------------------------------------------------------------------

json connectionJson(const dataplane::ConnectionInfo& ci, uint64_t number,
                    const rules::CompiledPolicy* p, uint64_t now_ns,
                    const std::vector<uint64_t>* earlier_ids) {
  json j = {{"id", ci.id},
            {"number", number},
            {"proto", rules::protoName(ci.proto)},
            {"src", ci.orig_src.str()},
            {"dst", ci.orig_dst.str()}};
  if (rules::protoIsIcmp(ci.proto)) {
    j["echo_id"] = ci.orig_sport;
  } else if (rules::protoHasPorts(ci.proto)) {
    j["sport"] = ci.orig_sport;
    j["dport"] = ci.orig_dport;
  }
  j["state"] = stateName(ci);
  j["replied"] = ci.replied;
  j["src_side_tracked"] = ci.src_side_tracked;
  j["dst_side_tracked"] = ci.dst_side_tracked;
  // What the entry is (docs/design.md): a tracked connection (its packets pass by it), an
  // untracked flow (a protected side, none tracking: every packet meets the rules, and the entry
  // is kept for the log; its state and expiry are the log's, not a tracking's), or unprotected.
  j["tracking"] = ci.src_side_tracked || ci.dst_side_tracked       ? "tracked"
                  : ci.src_side_protected || ci.dst_side_protected ? "untracked"
                                                                   : "unprotected";
  j["expires_ns"] = ci.expires_ns;
  j["expires_in_s"] =
      ci.expires_ns > now_ns ? static_cast<double>(ci.expires_ns - now_ns) / 1e9 : 0.0;
  // The rule id is that of the policy which opened the connection; its text is only shown while
  // the same policy runs (the current one may number its rules differently).
  if (ci.opened_by != rules::kNoRule) j["opened_by"] = ci.opened_by;
  const bool earlier =
      earlier_ids != nullptr && std::binary_search(earlier_ids->begin(), earlier_ids->end(), ci.id);
  if (ci.opened_by != rules::kNoRule) j["opened_by_policy"] = earlier ? "earlier" : "running";
  if (p && !earlier && ci.opened_by != rules::kNoRule && ci.opened_by < p->ruleCount()) {
    const rules::RuleInfo& r = p->rule(ci.opened_by);
    j["rule"] = rules::ruleLabel(r) + ": " + r.text;
  }
  return j;
}

Status parseFilter(const Target& t, ConnectionFilter* f, std::optional<uint64_t>* limit,
                   std::optional<uint64_t>* after, bool* all, size_t max_page) {
  for (const auto& [k, v] : t.params) {
    Status s;
    if (parseFilterParam(k, v, f, &s)) {
      if (!s.ok()) return s;
      continue;
    }
    if (k == "limit" && limit) {
      *limit = parseUnsigned(v, 1, max_page);
      if (!*limit) return Status::failure(fmt::format("limit: expected 1..{}", max_page));
    } else if (k == "after" && after) {
      *after = parseUnsigned(v, 0, UINT64_MAX);
      if (!*after) return Status::failure("after: expected a connection id");
    } else if (k == "all" && all) {
      if (v != "true" && v != "1") return Status::failure("all: expected true");
      *all = true;
    } else {
      return Status::failure("unknown query parameter: " + k);
    }
  }
  return Status::success();
}

ApiResponse getConnections(const Ctx& c) {
  ConnectionFilter f;
  std::optional<uint64_t> limit, after;
  Status s = parseFilter(c.target, &f, &limit, &after, nullptr, c.st.options.max_page_size);
  if (!s.ok()) return errorResponse(400, "bad request", s.message());
  size_t page = limit ? *limit : c.st.options.default_page_size;

  // Keep the `page` smallest ids above the cursor in a max-heap: memory stays O(page) however
  // many connections the table holds.
  auto byId = [](const dataplane::ConnectionInfo& a, const dataplane::ConnectionInfo& b) {
    return a.id < b.id;
  };
  std::priority_queue<dataplane::ConnectionInfo, std::vector<dataplane::ConnectionInfo>,
                      decltype(byId)>
      heap(byId);
  uint64_t matched = 0;
  uint64_t beyond = 0;  // matched with id > after
  c.engine.forEachConnection([&](const dataplane::ConnectionInfo& ci) {
    if (!f.matches(ci)) return;
    ++matched;
    if (after && ci.id <= *after) return;
    ++beyond;
    if (heap.size() < page) {
      heap.push(ci);
    } else if (ci.id < heap.top().id) {
      heap.pop();
      heap.push(ci);
    }
  });
  std::vector<dataplane::ConnectionInfo> rows;
  rows.reserve(heap.size());
  while (!heap.empty()) {
    rows.push_back(heap.top());
    heap.pop();
  }
  std::reverse(rows.begin(), rows.end());

  rules::CompiledPolicyPtr p = c.engine.policy();
  uint64_t now = c.st.nowNs();
  std::shared_ptr<const std::vector<uint64_t>> earlier;
  {
    std::lock_guard lock(c.st.record_mu);
    earlier = c.st.earlier_ids;
  }
  json list = json::array();
  // Numbered as first shown, in id order; the prune walks the table only when the map is full.
  auto live = [&](const std::function<void(uint64_t)>& visit) {
    c.engine.forEachConnection([&](const dataplane::ConnectionInfo& x) { visit(x.id); });
  };
  for (const auto& ci : rows)
    list.push_back(
        connectionJson(ci, c.st.conn_numbers.numberOf(ci.id, live), p.get(), now, earlier.get()));
  json j = {{"connections", std::move(list)}, {"matched", matched}};
  if (beyond > rows.size() && !rows.empty())
    j["next_after"] = rows.back().id;
  else
    j["next_after"] = nullptr;
  return jsonResponse(200, j);
}

ApiResponse deleteConnections(const Ctx& c) {
  ConnectionFilter f;
  bool all = false;
  Status s = parseFilter(c.target, &f, nullptr, nullptr, &all, c.st.options.max_page_size);
  if (!s.ok()) return errorResponse(400, "bad request", s.message());
  if (f.empty() && !all)
    return errorResponse(400, "bad request",
                         "give at least one filter, or all=true to flush every connection");
  size_t n =
      c.engine.eraseConnections([&](const dataplane::ConnectionInfo& ci) { return f.matches(ci); });
  return jsonResponse(200, {{"deleted", n}});
}

// ---- stats --------------------------------------------------------------------------------------

StatsSnapshot takeSnapshot(const Ctx& c) {
  StatsSnapshot s;
  // Hit vectors are indexed by the rules of the policy running when they were read; retry if a
  // swap happened in between so that hits are never shown against another policy's rules.
  for (int attempt = 0; attempt < 4; ++attempt) {
    dataplane::Engine::Published pub = c.engine.publishedPolicy();
    s.policy = std::move(pub.policy);
    s.policy_version = pub.version;
    s.rule_hits = c.engine.ruleHits();
    s.acl_hits = c.engine.aclHits();
    if (c.engine.policy() == s.policy) break;
  }
  if (s.policy) {
    s.rule_hits.resize(std::min(s.rule_hits.size(), s.policy->ruleCount()));
    s.acl_hits.resize(std::min(s.acl_hits.size(), s.policy->aclEntryCount()));
  } else {
    s.rule_hits.clear();
    s.acl_hits.clear();
  }
  s.counters = c.engine.counters();
  s.connections = c.engine.connectionCount();
  s.capacity = c.engine.capacity();
  {
    std::lock_guard lock(c.st.rates_mu);
    if (c.st.prev && c.st.last) {
      double secs = std::chrono::duration<double>(c.st.last->at - c.st.prev->at).count();
      if (secs > 0) {
        Rates r;
        r.interval_seconds = secs;
        r.packets_per_second = static_cast<double>(c.st.last->packets - c.st.prev->packets) / secs;
        r.bytes_per_second = static_cast<double>(c.st.last->bytes - c.st.prev->bytes) / secs;
        s.rates = r;
      }
    }
  }
  if (c.st.hooks.lcore_rates) s.lcores = c.st.hooks.lcore_rates();
  s.loads_running = c.st.loads_running.load(std::memory_order_relaxed);
  s.loads_completed = c.st.loads_completed.load(std::memory_order_relaxed);
  if (c.st.hooks.io) s.io = c.st.hooks.io();
  s.uptime_seconds = c.st.uptimeSeconds();
  s.dpdk_version = c.st.options.dpdk_version;
  return s;
}

json hostIoJson(const HostIo& io) {
  json ports = json::array();
  for (const PortIo& p : io.ports)
    ports.push_back({{"role", p.role},
                     {"name", p.name},
                     {"rx_packets", p.rx_packets},
                     {"rx_bytes", p.rx_bytes},
                     {"tx_packets", p.tx_packets},
                     {"tx_bytes", p.tx_bytes},
                     {"rx_missed", p.rx_missed},
                     {"rx_errors", p.rx_errors},
                     {"tx_errors", p.tx_errors},
                     {"rx_nombuf", p.rx_nombuf}});
  json out = {{"ports", std::move(ports)},
              {"tx_dropped", io.tx_dropped},
              {"oversize", io.oversize},
              {"mbufs", {{"capacity", io.mbufs_capacity}, {"in_use", io.mbufs_in_use}}}};
  if (io.flow_log)
    out["flow_log"] = {{"records", io.flow_log_records}, {"dropped", io.flow_log_dropped}};
  if (io.gwlb)
    out["gwlb"] = {{"geneve", io.gwlb_geneve},
                   {"returned", io.gwlb_returned},
                   {"malformed", io.gwlb_malformed},
                   {"not_geneve", io.gwlb_not_geneve},
                   {"to_kernel", io.gwlb_to_kernel},
                   {"from_kernel", io.gwlb_from_kernel},
                   {"kernel_dropped", io.gwlb_kernel_dropped}};
  return out;
}

ApiResponse getStats(const Ctx& c) {
  Status st = rejectParams(c.target, {});
  if (!st.ok()) return errorResponse(400, "bad request", st.message());
  StatsSnapshot s = takeSnapshot(c);
  json reasons = json::object();
  uint64_t packets = 0, bytes = 0;
  for (size_t r = 0; r < dataplane::kReasonCount; ++r) {
    reasons[std::string(dataplane::kReasonCodes[r])] = {{"packets", s.counters.packets[r]},
                                                        {"bytes", s.counters.bytes[r]}};
    packets += s.counters.packets[r];
    bytes += s.counters.bytes[r];
  }
  json j = {{"policy_version", s.policy_version},
            {"packets", packets},
            {"bytes", bytes},
            {"reasons", std::move(reasons)},
            {"tcp_invalid", s.counters.tcp_invalid}};
  j["connections"] = {
      {"live", s.connections},
      {"capacity", s.capacity},
      {"fill",
       s.capacity ? static_cast<double>(s.connections) / static_cast<double>(s.capacity) : 0.0},
      {"created", s.counters.connections_created},
      {"expired", s.counters.connections_expired},
      {"evicted", s.counters.connections_evicted}};
  json rules = json::array();
  for (size_t i = 0; i < s.rule_hits.size(); ++i) {
    json r = ruleJson(*s.policy, static_cast<rules::RuleId>(i));
    r["hits"] = s.rule_hits[i];
    rules.push_back(std::move(r));
  }
  j["rules"] = std::move(rules);
  json acl = json::array();
  for (size_t i = 0; i < s.acl_hits.size(); ++i) {
    json e = aclEntryJson(*s.policy, static_cast<rules::AclEntryId>(i));
    e["hits"] = s.acl_hits[i];
    acl.push_back(std::move(e));
  }
  j["acl_entries"] = std::move(acl);
  if (s.rates) {
    j["rates"] = {{"interval_s", s.rates->interval_seconds},
                  {"packets_per_second", s.rates->packets_per_second},
                  {"bytes_per_second", s.rates->bytes_per_second}};
  } else {
    j["rates"] = nullptr;
  }
  json lcores = json::array();
  for (const auto& l : s.lcores)
    lcores.push_back({{"lcore", l.lcore},
                      {"packets_per_second", l.packets_per_second},
                      {"bytes_per_second", l.bytes_per_second}});
  j["lcores"] = std::move(lcores);
  j["policy_loads"] = {{"running", s.loads_running}, {"completed", s.loads_completed}};
  j["uptime_s"] = s.uptime_seconds;
  j["io"] = s.io ? hostIoJson(*s.io) : json(nullptr);
  return jsonResponse(200, j);
}

ApiResponse getMetrics(const Ctx& c) {
  Status st = rejectParams(c.target, {});
  if (!st.ok()) return errorResponse(400, "bad request", st.message());
  ApiResponse r;
  r.content_type = "text/plain; version=0.0.4; charset=utf-8";
  r.body = renderMetrics(takeSnapshot(c));
  return r;
}

// ---- drops --------------------------------------------------------------------------------------

constexpr size_t kMaxDropsPage = 1000;

// What decided a denied packet, or the nearest thing to it: the interface and direction whose
// groups have no allowing rule (deny-sg), the ACL entry (deny-acl), else the detail. Names are
// looked up in the running policy only when it is the one that judged the packet.
json dropRuleJson(const DropEvent& d, const rules::CompiledPolicy* p, uint64_t version) {
  const bool same = p != nullptr && d.policy_version == version;
  const auto reason = static_cast<dataplane::Reason>(d.reason);
  if (reason == dataplane::Reason::kDenySg && d.deny_iface != rules::kNoIface) {
    if (!same || d.deny_iface >= p->ifaceCount())
      return fmt::format("no allowing rule (policy version {}, since replaced)", d.policy_version);
    const rules::InterfaceInfo& f = p->iface(static_cast<rules::IfaceId>(d.deny_iface));
    std::string groups;
    for (const auto& g : f.group_names)
      groups += (groups.empty() ? "" : ", ") + g;
    return fmt::format("no {} rule of {} (groups {}) allows it", rules::directionName(d.deny_dir),
                       f.name, groups);
  }
  if (reason == dataplane::Reason::kDenyAcl && d.acl_entry != rules::kNoAclEntry) {
    if (!same || d.acl_entry >= p->aclEntryCount())
      return fmt::format("ACL entry {} of policy version {}, since replaced", d.acl_entry,
                         d.policy_version);
    const rules::AclEntryInfo& e = p->aclEntry(static_cast<rules::AclEntryId>(d.acl_entry));
    return fmt::format("{} {}: {}", rules::aclEntryLabel(e), e.allow ? "allow" : "deny", e.text);
  }
  if (!d.why.empty()) return d.why;
  return nullptr;
}

// One drop log event as GET /v1/drops lists it (and the stream sends it, one per line).
json dropJson(const DropEvent& d, const rules::CompiledPolicy* p, uint64_t version, uint64_t now) {
  json j = {{"seq", d.seq},
            {"age_s", d.time_ns < now ? static_cast<double>(now - d.time_ns) / 1e9 : 0.0},
            {"port", d.port},
            {"reason", dataplane::kReasonCodes[d.reason < dataplane::kReasonCount ? d.reason : 0]},
            {"policy_version", d.policy_version}};
  if (d.ip) {
    j["proto"] = rules::protoName(d.proto);
    j["src"] = d.src.str();
    j["dst"] = d.dst.str();
    if (rules::protoIsIcmp(d.proto)) {
      j["icmp_type"] = d.sport;
      j["icmp_code"] = d.dport;
    } else if (rules::protoHasPorts(d.proto)) {
      j["sport"] = d.sport;
      j["dport"] = d.dport;
    }
  }
  j["rule"] = dropRuleJson(d, p, version);
  return j;
}

// Events of a streamed drop log sent in one piece at most (what a slow client costs the server:
// one such piece; the rest stays in the host's log, which a client that falls behind skips).
constexpr size_t kDropStreamBatch = 256;

std::string dropLinesOf(ControlApi::State& st, dataplane::Engine& engine, uint64_t* after,
                        size_t max) {
  if (!st.hooks.drops) return {};
  const DropsPage page = st.hooks.drops(*after, max);
  if (page.drops.empty()) return {};
  const auto [p, version] = engine.publishedPolicy();
  const uint64_t now = st.nowNs();
  std::string out;
  if (page.drops.front().seq > *after + 1)
    out += dump({{"skipped", page.drops.front().seq - *after - 1}});
  for (const DropEvent& d : page.drops)
    out += dump(dropJson(d, p.get(), version, now));
  *after = page.drops.back().seq;
  return out;
}

ApiResponse getDrops(const Ctx& c) {
  if (!c.st.hooks.drops)
    return errorResponse(404, "not found", "this host keeps no drop log (statewalld does)");
  uint64_t after = 0;
  size_t limit = 100;
  bool follow = false;
  for (const auto& [k, v] : c.target.params) {
    if (k == "after") {
      auto n = parseUnsigned(v, 0, UINT64_MAX);
      if (!n) return errorResponse(400, "bad request", "after: expected a sequence number");
      after = *n;
    } else if (k == "limit") {
      auto n = parseUnsigned(v, 1, kMaxDropsPage);
      if (!n)
        return errorResponse(400, "bad request",
                             fmt::format("limit: expected 1..{}", kMaxDropsPage));
      limit = *n;
    } else if (k == "follow") {
      if (v != "1" && v != "true" && v != "0" && v != "false")
        return errorResponse(400, "bad request", "follow: expected 1, true, 0 or false");
      follow = v == "1" || v == "true";
    } else {
      return errorResponse(400, "bad request", "unknown query parameter: " + k);
    }
  }
  if (follow) {
    ApiResponse r;
    r.content_type = "application/x-ndjson";
    r.drops_stream_after = after;
    return r;
  }
  const DropsPage page = c.st.hooks.drops(after, limit);
  const auto [p, version] = c.engine.publishedPolicy();
  const uint64_t now = c.st.nowNs();
  json list = json::array();
  for (const DropEvent& d : page.drops)
    list.push_back(dropJson(d, p.get(), version, now));
  return jsonResponse(200, {{"drops", std::move(list)},
                            {"next_after", page.drops.empty() ? after : page.drops.back().seq},
                            {"unlogged", page.unlogged},
                            {"overwritten", page.overwritten}});
}

ApiResponse getHealth(const Ctx& c) {
  Status st = rejectParams(c.target, {});
  if (!st.ok()) return errorResponse(400, "bad request", st.message());
  HostHealth h;
  if (c.st.hooks.health) h = c.st.hooks.health();
  json j = {{"status", h.ok ? "ok" : "unhealthy"},
            {"uptime_s", c.st.uptimeSeconds()},
            {"policy_version", c.engine.policyVersion()}};
  if (!h.detail.empty()) j["detail"] = h.detail;
  return jsonResponse(h.ok ? 200 : 503, j);
}

ApiResponse getVersion(const Ctx& c) {
  Status st = rejectParams(c.target, {});
  if (!st.ok()) return errorResponse(400, "bad request", st.message());
  json j = {
      {"version", build::kVersion}, {"commit", build::kCommit}, {"build_type", build::kBuildType}};
  j["dpdk_version"] =
      c.st.options.dpdk_version.empty() ? json(nullptr) : json(c.st.options.dpdk_version);
  return jsonResponse(200, j);
}

ApiResponse route(const Ctx& c) {
  const std::string& path = c.target.path;
  const std::string& m = c.req.method;
  if (path == "/v1/policy") {
    if (m == "GET") return getPolicy(c);
    if (m == "PUT") return putPolicy(c, /*publish=*/true);
  } else if (path == "/v1/policy/check") {
    if (m == "POST") return putPolicy(c, /*publish=*/false);
  } else if (path == "/v1/connections") {
    if (m == "GET") return getConnections(c);
    if (m == "DELETE") return deleteConnections(c);
  } else if (path == "/v1/stats") {
    if (m == "GET") return getStats(c);
  } else if (path == "/metrics") {
    if (m == "GET") return getMetrics(c);
  } else if (path == "/v1/timeouts") {
    if (m == "PUT") return putTimeouts(c);
  } else if (path == "/v1/drops") {
    if (m == "GET") return getDrops(c);
  } else if (path == "/v1/health" || path == "/healthz") {  // /healthz: what probes expect
    if (m == "GET") return getHealth(c);
  } else if (path == "/v1/version") {
    if (m == "GET") return getVersion(c);
  }
  for (const auto& r : kRoutes) {
    if (r.path == path) {
      ApiResponse resp =
          errorResponse(405, "method not allowed", fmt::format("{} accepts {}", path, r.allow));
      resp.allow = std::string(r.allow);
      return resp;
    }
  }
  return errorResponse(404, "not found", "no such endpoint: " + path);
}

}  // namespace

bool compilesPolicy(std::string_view method, std::string_view target) {
  std::string_view path = target.substr(0, target.find('?'));
  return (path == "/v1/policy" && method == "PUT") ||
         (path == "/v1/policy/check" && method == "POST") ||
         (path == "/v1/timeouts" && method == "PUT");
}

std::string ControlApi::dropLines(uint64_t* after, size_t max) {
  try {
    return dropLinesOf(*state_, engine_, after, std::min(max, kDropStreamBatch));
  } catch (const std::exception&) {  // out of memory: nothing sent now, the cursor stays
    return {};
  }
}

ApiResponse ControlApi::handle(const ApiRequest& request) {
  Target target;
  Status s = parseTarget(request.target, &target);
  if (!s.ok()) return errorResponse(400, "bad request", s.message());
  Ctx ctx{engine_, *state_, request, target};
  // The JSON library and the policy loaders report some failures by throwing; this is the
  // boundary where they become an error response instead of a dead control thread.
  try {
    return route(ctx);
  } catch (const std::bad_alloc&) {
    return errorResponse(503, "out of memory", "the request needed more memory than available");
  } catch (const std::exception& e) {
    return errorResponse(500, "internal error", e.what());
  }
}

}  // namespace statewall::control
