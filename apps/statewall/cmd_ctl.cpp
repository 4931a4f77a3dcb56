// `statewall ctl`: the client of the control API (control/) served by statewalld and by
// `statewall replay --control-socket`. Human tables by default, the server's JSON with --json.
//
// Exit codes: 0 success; 1 a negative answer (the policy is invalid); 2 usage or input errors,
// unreachable server, or any other error response.
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "statewall/control/api.hpp"
#include "statewall/control/client.hpp"
#include "statewall/control/http.hpp"
#include "statewall/control/server.hpp"
#include "statewall/dataplane/verdict.hpp"
#include "statewall/rules/files.hpp"
#include "statewall/rules/policy.hpp"

namespace statewall::cli {
namespace {

using nlohmann::json;

struct CtlOptions {
  std::string socket;
  std::string url;
  std::string token_file;
  bool json = false;
  double timeout_s = 30;

  // connections / flush
  std::string proto, src, dst, addr, state;
  int port = -1, sport = -1, dport = -1;
  uint64_t id = 0;
  bool has_id = false;
  size_t limit = 0;
  uint64_t after = 0;
  bool has_after = false;
  bool all = false;

  bool follow = false;  // drops

  std::vector<std::string> files;
  bool source = false;
  std::vector<std::string> assignments;
  std::string profile;
};

std::string encode(std::string_view s) {
  return control::percentEncode(s);
}

// A policy file goes in one request body, so it may not exceed the server's default body limit.
constexpr size_t kMaxPolicyBytes = control::HttpLimits{}.max_body_bytes;

// Reads a policy file; prints why it cannot (missing, too large, endless) and returns false.
bool readPolicyFile(const std::string& path, std::string* out) {
  auto text =
      rules::readFileCapped(path, kMaxPolicyBytes, "the most the control API takes in one request");
  if (!text) {
    fmt::print(stderr, "statewall ctl: {}: {}\n", path, text.message());
    return false;
  }
  *out = std::move(*text);
  return true;
}

// The client options `o` names (socket or URL, token, timeout); false after saying why not.
bool clientOptions(const CtlOptions& o, control::ClientOptions* co) {
  co->timeout = std::chrono::milliseconds(static_cast<int64_t>(o.timeout_s * 1000));
  if (o.url.empty()) {
    co->unix_socket = o.socket;
    return true;
  }
  co->url = o.url;
  if (o.token_file.empty()) return true;
  std::string warning;
  control::Status s = control::readTokenFile(o.token_file, &co->token, &warning);
  if (!s.ok()) {
    fmt::print(stderr, "statewall ctl: {}\n", s.message());
    return false;
  }
  if (!warning.empty()) fmt::print(stderr, "statewall ctl: warning: {}\n", warning);
  return true;
}

// Sends one request; prints transport errors. Returns false when no response came back.
bool call(const CtlOptions& o, std::string_view method, const std::string& target,
          std::string_view body, std::string_view content_type, control::ClientResponse* res) {
  control::ClientOptions co;
  if (!clientOptions(o, &co)) return false;
  control::Status s = control::ControlClient(co).request(method, target, body, content_type, res);
  if (!s.ok()) {
    fmt::print(stderr, "statewall ctl: {}\n", s.message());
    return false;
  }
  return true;
}

json parseBody(const control::ClientResponse& res) {
  return json::parse(res.body, nullptr, /*allow_exceptions=*/false);
}

std::string dumpPretty(const json& j) {
  return j.dump(2, ' ', false, json::error_handler_t::replace);
}

// Prints an error response ({"error", "detail"}) and returns the exit code for it.
int reportError(const control::ClientResponse& res) {
  json j = parseBody(res);
  if (j.is_object() && j.contains("error")) {
    fmt::print(stderr, "statewall ctl: HTTP {}: {}: {}\n", res.status,
               j.value("error", std::string()), j.value("detail", std::string()));
  } else {
    fmt::print(stderr, "statewall ctl: HTTP {}: {}\n", res.status, res.body);
  }
  return 2;
}

// Column-aligned table; the last column is not padded.
void printTable(const std::vector<std::string>& head,
                const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> w(head.size());
  for (size_t i = 0; i < head.size(); ++i)
    w[i] = head[i].size();
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size() && i < w.size(); ++i)
      w[i] = std::max(w[i], r[i].size());
  auto line = [&](const std::vector<std::string>& r) {
    std::string out;
    for (size_t i = 0; i < r.size(); ++i) {
      out += r[i];
      if (i + 1 < r.size()) out += std::string(w[i] - r[i].size() + 2, ' ');
    }
    fmt::print("{}\n", out);
  };
  line(head);
  for (const auto& r : rows)
    line(r);
}

std::string str(const json& j, const char* key) {
  if (!j.contains(key) || j[key].is_null()) return "-";
  const json& v = j[key];
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}

void printDiagnostics(const json& diags) {
  if (!diags.is_array()) return;
  for (const auto& d : diags)
    fmt::print(stderr, "{}\n", str(d, "text"));
}

// The timeout keys in the order of the policy format (tcp_syn_sent ... other).
std::vector<std::string> timeoutKeys() {
  std::vector<std::string> keys;
  for (size_t k = 0; k < rules::kTimeoutKeyCount; ++k)
    keys.emplace_back(rules::timeoutKeyName(static_cast<rules::TimeoutKey>(k)));
  return keys;
}

std::string summaryLine(const json& s) {
  return fmt::format("{} groups, {} rules, {} ACLs, {} interfaces, {} subnets", str(s, "groups"),
                     str(s, "rules"), str(s, "acls"), str(s, "interfaces"), str(s, "subnets"));
}

// ---- policy -------------------------------------------------------------------------------------

// What the host says about a change made at run time (statewalld: not kept across a restart).
void printRuntimeWarning(const json& j) {
  if (j.contains("warning") && j["warning"].is_string())
    fmt::print(stderr, "warning: {}\n", j["warning"].get<std::string>());
}

int policyPut(const CtlOptions& o, bool publish) {
  std::string body;
  std::string target = publish ? "/v1/policy" : "/v1/policy/check";
  std::string ctype;
  if (o.files.size() == 1) {
    if (!readPolicyFile(o.files[0], &body)) return 2;
    target += "?name=" + encode(o.files[0]);
    ctype = "application/octet-stream";
  } else {
    json docs = json::array();
    size_t total = 0;
    for (const auto& f : o.files) {
      std::string text;
      if (!readPolicyFile(f, &text)) return 2;
      total += text.size();
      if (total > kMaxPolicyBytes) {
        fmt::print(stderr,
                   "statewall ctl: the policy files are together larger than {}, the most the "
                   "control API takes in one request\n",
                   rules::sizeText(kMaxPolicyBytes));
        return 2;
      }
      docs.push_back({{"name", f}, {"text", std::move(text)}});
    }
    body =
        json{{"documents", std::move(docs)}}.dump(-1, ' ', false, json::error_handler_t::replace);
    ctype = std::string(control::kBundleContentType);
  }
  control::ClientResponse res;
  if (!call(o, publish ? "PUT" : "POST", target, body, ctype, &res)) return 2;
  json j = parseBody(res);
  bool invalid = (res.status == 400 && j.is_object() && j.value("error", "") == "invalid policy") ||
                 (res.status == 200 && j.is_object() && j.value("valid", true) == false);
  if (res.status != 200 && !invalid) return reportError(res);
  if (o.json) {
    fmt::print("{}\n", res.body.empty() ? "" : dumpPretty(j));
    return invalid ? 1 : 0;
  }
  printDiagnostics(j.value("diagnostics", json::array()));
  if (invalid) {
    fmt::print(stderr, "{}\n",
               publish ? "policy rejected; the running policy stays" : "policy is invalid");
    return 1;
  }
  if (publish) {
    fmt::print("policy loaded: version {} ({})\n", str(j, "version"), summaryLine(j["summary"]));
    printRuntimeWarning(j);
  } else
    fmt::print("policy is valid ({})\n", summaryLine(j["summary"]));
  return 0;
}

int policyShow(const CtlOptions& o) {
  control::ClientResponse res;
  if (!call(o, "GET", "/v1/policy", "", "", &res)) return 2;
  if (res.status != 200) return reportError(res);
  json j = parseBody(res);
  if (o.json) {
    fmt::print("{}\n", dumpPretty(j));
    return 0;
  }
  if (o.source) {
    const json& docs = j.value("documents", json::array());
    if (docs.empty()) {
      fmt::print(stderr, "statewall ctl: the server does not know the running policy's source\n");
      return 2;
    }
    for (const auto& d : docs) {
      if (docs.size() > 1) fmt::print("# ---- {}\n", str(d, "name"));
      std::string text = str(d, "text");
      fmt::print("{}{}", text, !text.empty() && text.back() == '\n' ? "" : "\n");
    }
    return 0;
  }
  if (!j.contains("summary")) {
    fmt::print("no policy is running (version {})\n", str(j, "version"));
    return 0;
  }
  fmt::print("version      {}\n", str(j, "version"));
  fmt::print("loaded at    {} ({})\n", str(j, "loaded_at"), str(j, "origin"));
  std::string files;
  for (const auto& f : j.value("files", json::array()))
    files += (files.empty() ? "" : ", ") + f.get<std::string>();
  fmt::print("files        {}\n", files.empty() ? "-" : files);
  fmt::print("summary      {}\n", summaryLine(j["summary"]));
  const json timeouts = j.value("timeouts", json::object());
  std::string t = "profile " + str(timeouts, "profile");
  for (const auto& k : timeoutKeys())
    t += ", " + k + " " + str(timeouts, k.c_str());
  fmt::print("timeouts     {}{}\n", t,
             j.value("timeouts_changed", false) ? " (changed at run time)" : "");
  fmt::print("unprotected  {}, strict {}\n\n", str(j, "unprotected"), str(j, "strict"));
  std::vector<std::vector<std::string>> rows;
  for (const auto& r : j.value("rules", json::array()))
    rows.push_back(
        {str(r, "id"), str(r, "group"), str(r, "direction"), str(r, "index"), str(r, "text")});
  printTable({"RULE", "GROUP", "DIRECTION", "INDEX", "TEXT"}, rows);
  rows.clear();
  for (const auto& e : j.value("acl_entries", json::array()))
    rows.push_back(
        {str(e, "acl"), str(e, "direction"), str(e, "number"), str(e, "action"), str(e, "text")});
  if (!rows.empty()) {
    fmt::print("\n");
    printTable({"ACL", "DIRECTION", "RULE", "ACTION", "TEXT"}, rows);
  }
  rows.clear();
  for (const auto& i : j.value("interfaces", json::array())) {
    std::string addrs, groups;
    for (const auto& a : i.value("addresses", json::array()))
      addrs += (addrs.empty() ? "" : ",") + a.get<std::string>();
    for (const auto& g : i.value("groups", json::array()))
      groups += (groups.empty() ? "" : ",") + g.get<std::string>();
    rows.push_back({str(i, "name"), addrs, groups, str(i, "subnet")});
  }
  if (!rows.empty()) {
    fmt::print("\n");
    printTable({"INTERFACE", "ADDRESSES", "GROUPS", "SUBNET"}, rows);
  }
  return 0;
}

// ---- connections --------------------------------------------------------------------------------

std::string filterQuery(const CtlOptions& o, bool paging) {
  std::vector<std::string> q;
  auto add = [&](const char* k, const std::string& v) {
    if (!v.empty()) q.push_back(std::string(k) + "=" + encode(v));
  };
  add("proto", o.proto);
  add("src", o.src);
  add("dst", o.dst);
  add("addr", o.addr);
  add("state", o.state);
  if (o.port >= 0) add("port", std::to_string(o.port));
  if (o.sport >= 0) add("sport", std::to_string(o.sport));
  if (o.dport >= 0) add("dport", std::to_string(o.dport));
  if (o.has_id) add("id", std::to_string(o.id));
  if (paging) {
    if (o.limit) add("limit", std::to_string(o.limit));
    if (o.has_after) add("after", std::to_string(o.after));
  } else if (o.all) {
    add("all", "true");
  }
  std::string out;
  for (const auto& s : q)
    out += (out.empty() ? "?" : "&") + s;
  return out;
}

std::string endpoint(const json& c, const char* addr, const char* port) {
  std::string a = str(c, addr);
  if (a.find(':') != std::string::npos) a = "[" + a + "]";
  if (c.contains(port)) return a + ":" + str(c, port);
  return a;
}

// The RULE column: the rule's text while the policy that opened the connection runs; after a
// policy with other rules was loaded, its number belongs to that earlier policy.
std::string connectionRule(const json& c) {
  if (c.contains("rule")) return str(c, "rule");
  if (!c.contains("opened_by")) return "-";
  if (c.value("opened_by_policy", "") == "earlier")
    return "rule " + str(c, "opened_by") + " of an earlier policy";
  return str(c, "opened_by");
}

int connections(const CtlOptions& o) {
  control::ClientResponse res;
  if (!call(o, "GET", "/v1/connections" + filterQuery(o, true), "", "", &res)) return 2;
  if (res.status != 200) return reportError(res);
  json j = parseBody(res);
  if (o.json) {
    fmt::print("{}\n", dumpPretty(j));
    return 0;
  }
  std::vector<std::vector<std::string>> rows;
  const json& list = j.value("connections", json::array());
  for (const auto& c : list) {
    std::string proto = str(c, "proto");
    if (c.contains("echo_id")) proto += " id " + str(c, "echo_id");
    std::string tracked =
        std::string(c.value("src_side_tracked", false) ? "src" : "") +
        (c.value("src_side_tracked", false) && c.value("dst_side_tracked", false) ? "+" : "") +
        (c.value("dst_side_tracked", false) ? "dst" : "");
    // An untracked flow's entry lets nothing through (docs/design.md): its TCP state and expiry
    // would read as tracking, so the row says what the entry is instead.
    const bool untracked = c.value("tracking", "") == "untracked";
    rows.push_back({c.contains("number") ? "#" + str(c, "number") : "-", proto,
                    endpoint(c, "src", "sport"), endpoint(c, "dst", "dport"),
                    untracked ? "untracked: entry kept for the log" : str(c, "state"),
                    untracked ? "-" : fmt::format("{:.0f}s", c.value("expires_in_s", 0.0)),
                    tracked.empty() ? "-" : tracked, connectionRule(c), str(c, "id")});
  }
  // CONN: the short number the control plane gives a connection when it first shows it;
  // ENGINE ID: what --id, --after and `flush --id` take (control/README.md "Connection ids").
  printTable({"CONN", "PROTO", "SOURCE", "DESTINATION", "STATE", "EXPIRES", "TRACKED", "RULE",
              "ENGINE ID"},
             rows);
  fmt::print("{} shown, {} matching\n", list.size(), str(j, "matched"));
  if (j.contains("next_after") && !j["next_after"].is_null())
    fmt::print("more: add --after {}\n", str(j, "next_after"));
  return 0;
}

int flush(const CtlOptions& o) {
  std::string q = filterQuery(o, false);
  if (q.empty()) {
    fmt::print(stderr, "statewall ctl flush: give a filter, or --all to remove every connection\n");
    return 2;
  }
  control::ClientResponse res;
  if (!call(o, "DELETE", "/v1/connections" + q, "", "", &res)) return 2;
  if (res.status != 200) return reportError(res);
  json j = parseBody(res);
  if (o.json)
    fmt::print("{}\n", dumpPretty(j));
  else
    fmt::print("deleted {} connections\n", str(j, "deleted"));
  return 0;
}

// ---- stats --------------------------------------------------------------------------------------

// One drop as a row: SEQ, PORT, PROTO, SOURCE, DESTINATION, REASON, RULE.
std::vector<std::string> dropRow(const json& d) {
  std::string proto = str(d, "proto");
  if (d.contains("icmp_type"))
    proto += fmt::format(" {}/{}", str(d, "icmp_type"), str(d, "icmp_code"));
  return {str(d, "seq"),
          str(d, "port"),
          proto,
          endpoint(d, "src", "sport"),
          endpoint(d, "dst", "dport"),
          str(d, "reason"),
          str(d, "rule")};
}

// drops --follow: the server's held stream (GET /v1/drops?follow=1), one line per denied packet
// as it is logged, until the server ends it (it stops) or the user interrupts.
int followDrops(const CtlOptions& o) {
  control::ClientOptions co;
  if (!clientOptions(o, &co)) return 2;
  control::ClientResponse res;
  int code = 0;
  const std::string target = fmt::format("/v1/drops?follow=1&after={}", o.has_after ? o.after : 0);
  control::Status s = control::ControlClient(co).stream(
      target,
      [&](std::string_view line) {
        const json d = json::parse(line, nullptr, /*allow_exceptions=*/false);
        if (o.json) {
          fmt::print("{}\n", line);
        } else if (!d.is_object()) {
          fmt::print(stderr, "statewall ctl: the server sent a line that is not JSON: {}\n", line);
          code = 2;
          return false;
        } else if (d.contains("skipped")) {
          fmt::print("({} denied packets pushed out of the log before they were read)\n",
                     str(d, "skipped"));
        } else if (d.contains("end")) {
          fmt::print("(the stream ended: {})\n", str(d, "end"));
        } else {
          // One line per packet as it comes: columns cannot be aligned ahead of time.
          const std::vector<std::string> r = dropRow(d);
          fmt::print("{} {} {} {} -> {} {}: {}\n", r[0], r[1], r[2], r[3], r[4], r[5], r[6]);
        }
        std::fflush(stdout);
        return true;
      },
      &res);
  if (!s.ok()) {
    fmt::print(stderr, "statewall ctl: {}\n", s.message());
    return 2;
  }
  if (res.status != 200) return reportError(res);
  return code;
}

// Recent denied packets (GET /v1/drops); --follow holds a stream of them (followDrops).
int drops(const CtlOptions& o) {
  if (o.follow) return followDrops(o);
  const uint64_t after = o.has_after ? o.after : 0;
  const size_t limit = o.limit != 0 ? o.limit : 100;
  control::ClientResponse res;
  if (!call(o, "GET", fmt::format("/v1/drops?after={}&limit={}", after, limit), "", "", &res))
    return 2;
  if (res.status != 200) return reportError(res);
  json j = parseBody(res);
  if (o.json) {
    fmt::print("{}\n", dumpPretty(j));
    return 0;
  }
  std::vector<std::vector<std::string>> rows;
  const json& list = j.value("drops", json::array());
  for (const auto& d : list)
    rows.push_back(dropRow(d));
  printTable({"SEQ", "PORT", "PROTO", "SOURCE", "DESTINATION", "REASON", "RULE"}, rows);
  fmt::print("{} shown; {} denied packets not logged (rate limit), {} pushed out\n", list.size(),
             str(j, "unlogged"), str(j, "overwritten"));
  return 0;
}

int stats(const CtlOptions& o) {
  control::ClientResponse res;
  if (!call(o, "GET", "/v1/stats", "", "", &res)) return 2;
  if (res.status != 200) return reportError(res);
  json j = parseBody(res);
  if (o.json) {
    fmt::print("{}\n", dumpPretty(j));
    return 0;
  }
  fmt::print("policy version {}\n", str(j, "policy_version"));
  fmt::print("packets {}, bytes {}, tcp invalid {}\n\n", str(j, "packets"), str(j, "bytes"),
             str(j, "tcp_invalid"));
  std::vector<std::vector<std::string>> rows;
  // In the order of the reason table (allows first), not alphabetically as JSON objects come.
  const json reasons = j.value("reasons", json::object());
  for (std::string_view code : dataplane::kReasonCodes) {
    const json v = reasons.value(std::string(code), json::object());
    rows.push_back({std::string(code), str(v, "packets"), str(v, "bytes")});
  }
  printTable({"REASON", "PACKETS", "BYTES"}, rows);
  const json& c = j.value("connections", json::object());
  fmt::print("\nconnections {} live of {} ({:.2f} % full), {} created, {} expired, {} evicted\n",
             str(c, "live"), str(c, "capacity"), c.value("fill", 0.0) * 100, str(c, "created"),
             str(c, "expired"), str(c, "evicted"));
  if (j.contains("rates") && j["rates"].is_object())
    fmt::print("rate {:.1f} packets/s, {:.1f} bytes/s\n",
               j["rates"].value("packets_per_second", 0.0),
               j["rates"].value("bytes_per_second", 0.0));
  if (j.contains("io") && j["io"].is_object() && j["io"].contains("flow_log"))
    fmt::print("flow log {} records written, {} dropped (ring full)\n",
               str(j["io"]["flow_log"], "records"), str(j["io"]["flow_log"], "dropped"));
  rows.clear();
  for (const auto& l : j.value("lcores", json::array()))
    rows.push_back({str(l, "lcore"), fmt::format("{:.1f}", l.value("packets_per_second", 0.0)),
                    fmt::format("{:.1f}", l.value("bytes_per_second", 0.0))});
  if (!rows.empty()) {
    fmt::print("\n");
    printTable({"LCORE", "PACKETS/S", "BYTES/S"}, rows);
  }
  rows.clear();
  for (const auto& r : j.value("rules", json::array()))
    rows.push_back(
        {str(r, "id"), str(r, "group"), str(r, "direction"), str(r, "hits"), str(r, "text")});
  if (!rows.empty()) {
    fmt::print("\n");
    printTable({"RULE", "GROUP", "DIRECTION", "HITS", "TEXT"}, rows);
  }
  rows.clear();
  for (const auto& e : j.value("acl_entries", json::array()))
    rows.push_back(
        {str(e, "acl"), str(e, "direction"), str(e, "number"), str(e, "action"), str(e, "hits")});
  if (!rows.empty()) {
    fmt::print("\n");
    printTable({"ACL", "DIRECTION", "RULE", "ACTION", "HITS"}, rows);
  }
  return 0;
}

// ---- timeouts -----------------------------------------------------------------------------------

int timeoutsSet(const CtlOptions& o) {
  json body = json::object();
  if (!o.profile.empty()) body["profile"] = o.profile;
  for (const auto& a : o.assignments) {
    size_t eq = a.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == a.size()) {
      fmt::print(stderr, "statewall ctl timeouts set: expected KEY=SECONDS, got {}\n", a);
      return 2;
    }
    std::string v = a.substr(eq + 1);
    char* end = nullptr;
    unsigned long long n = std::strtoull(v.c_str(), &end, 10);
    if (*end != '\0' || v[0] == '-' || v[0] == '+') {
      fmt::print(stderr, "statewall ctl timeouts set: {}: not a number of seconds\n", a);
      return 2;
    }
    body[a.substr(0, eq)] = n;
  }
  if (body.empty()) {
    fmt::print(stderr, "statewall ctl timeouts set: give KEY=SECONDS or --profile\n");
    return 2;
  }
  control::ClientResponse res;
  if (!call(o, "PUT", "/v1/timeouts", body.dump(), "application/json", &res)) return 2;
  if (res.status != 200) return reportError(res);
  json j = parseBody(res);
  if (o.json) {
    fmt::print("{}\n", dumpPretty(j));
    return 0;
  }
  fmt::print("timeouts changed: policy version {}\n", str(j, "version"));
  printRuntimeWarning(j);
  const json timeouts = j.value("timeouts", json::object());
  std::vector<std::vector<std::string>> rows = {{"profile", str(timeouts, "profile")}};
  for (const auto& k : timeoutKeys())
    rows.push_back({k, str(timeouts, k.c_str())});
  printTable({"KEY", "SECONDS"}, rows);
  return 0;
}

void addFilterOptions(CLI::App* cmd, CtlOptions* o) {
  cmd->add_option("--proto", o->proto, "tcp, udp, icmp, icmpv6 or a protocol number");
  cmd->add_option("--src", o->src, "originator address or CIDR");
  cmd->add_option("--dst", o->dst, "responder address or CIDR");
  cmd->add_option("--addr", o->addr, "either address (address or CIDR)");
  cmd->add_option("--port", o->port, "either port")->check(CLI::Range(0, 65535));
  cmd->add_option("--sport", o->sport, "originator port (ICMP: echo id)")
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--dport", o->dport, "responder port")->check(CLI::Range(0, 65535));
  cmd->add_option("--state", o->state,
                  "TCP state (syn_sent, established, time_wait, ...) or replied/unreplied");
  cmd->add_option_function<uint64_t>(
      "--id",
      [o](const uint64_t& v) {
        o->id = v;
        o->has_id = true;
      },
      "connection id");
}

// Runs `fn` as the leaf command's action: no exception leaves it (a library that throws on an
// unexpected response shape, an allocation that fails); each becomes an error message, exit 2.
template <class Fn>
void action(CLI::App* cmd, int* exit_code, Fn fn) {
  cmd->callback([exit_code, fn] {
    try {
      *exit_code = fn();
    } catch (const std::bad_alloc&) {
      std::fputs("statewall ctl: out of memory\n", stderr);
      *exit_code = 2;
    } catch (const std::exception& e) {
      fmt::print(stderr, "statewall ctl: {}\n", e.what());
      *exit_code = 2;
    } catch (...) {
      std::fputs("statewall ctl: unexpected error\n", stderr);
      *exit_code = 2;
    }
  });
}

}  // namespace

void addCtlCommand(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<CtlOptions>();
  if (const char* env = std::getenv("STATEWALL_CONTROL_SOCKET"); env && *env)
    o->socket = env;
  else
    o->socket = std::string(control::kDefaultSocketPath);

  CLI::App* ctl = app.add_subcommand(
      "ctl",
      "Talk to a running engine's control API (statewalld, statewall replay --control-socket)");
  ctl->require_subcommand(1);
  auto* sock = ctl->add_option("--socket", o->socket,
                               "control Unix socket (default $STATEWALL_CONTROL_SOCKET or " +
                                   std::string(control::kDefaultSocketPath) + ")");
  auto* url = ctl->add_option("--url", o->url, "http://127.0.0.1:PORT of a TCP control listener");
  ctl->add_option("--token-file", o->token_file, "file holding the bearer token (with --url)")
      ->needs(url);
  url->excludes(sock);
  ctl->add_flag("--json", o->json, "print the server's JSON instead of tables");
  ctl->add_option("--timeout", o->timeout_s, "seconds to wait for the server")
      ->check(CLI::Range(0.001, 3600.0));

  CLI::App* policy = ctl->add_subcommand("policy", "load, show or check the policy");
  policy->require_subcommand(1);
  policy->fallthrough();
  CLI::App* load = policy->add_subcommand("load", "validate, compile and publish a policy");
  load->add_option("files", o->files, "policy files (YAML or AWS JSON)")->required();
  load->fallthrough();
  action(load, exit_code, [o] { return policyPut(*o, true); });
  CLI::App* check = policy->add_subcommand("check", "validate and compile without publishing");
  check->add_option("files", o->files, "policy files (YAML or AWS JSON)")->required();
  check->fallthrough();
  action(check, exit_code, [o] { return policyPut(*o, false); });
  CLI::App* show = policy->add_subcommand("show", "show the running policy");
  show->add_flag("--source", o->source, "print the documents it was loaded from");
  show->fallthrough();
  action(show, exit_code, [o] { return policyShow(*o); });

  CLI::App* conns = ctl->add_subcommand("connections", "list tracked connections");
  addFilterOptions(conns, o.get());
  conns->add_option("--limit", o->limit, "page size")->check(CLI::Range(1, 1000000));
  conns->add_option_function<uint64_t>(
      "--after",
      [o](const uint64_t& v) {
        o->after = v;
        o->has_after = true;
      },
      "show connections with ids above this (the previous page's last id)");
  conns->fallthrough();
  action(conns, exit_code, [o] { return connections(*o); });

  CLI::App* fl = ctl->add_subcommand("flush", "remove tracked connections (filtered)");
  addFilterOptions(fl, o.get());
  fl->add_flag("--all", o->all, "remove every connection");
  fl->fallthrough();
  action(fl, exit_code, [o] { return flush(*o); });

  CLI::App* dr = ctl->add_subcommand(
      "drops", "recent denied packets: addresses, reason, deciding or nearest rule");
  dr->add_flag("--follow,-f", o->follow,
               "keep printing new ones as they are logged (a held stream) until interrupted or the "
               "server stops");
  dr->add_option("--limit", o->limit, "at most this many per request")->check(CLI::Range(1, 1000));
  dr->add_option("--after", o->after, "only those after this sequence number")
      ->each([o](const std::string&) { o->has_after = true; });
  dr->fallthrough();
  action(dr, exit_code, [o] { return drops(*o); });

  CLI::App* st = ctl->add_subcommand("stats", "counters by reason, rule hits, table fill, rates");
  st->fallthrough();
  action(st, exit_code, [o] { return stats(*o); });

  CLI::App* to = ctl->add_subcommand("timeouts", "change idle timeouts at run time");
  to->require_subcommand(1);
  to->fallthrough();
  CLI::App* set = to->add_subcommand("set", "set KEY=SECONDS (tcp_established=3600 udp=45 ...)");
  set->add_option("assignments", o->assignments, "KEY=SECONDS");
  set->add_option("--profile", o->profile, "reset to a profile's defaults first")
      ->check(CLI::IsMember({"aws", "linux"}));
  set->fallthrough();
  action(set, exit_code, [o] { return timeoutsSet(*o); });
}

}  // namespace statewall::cli
