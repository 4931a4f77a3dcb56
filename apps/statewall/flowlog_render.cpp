#include "flowlog_render.hpp"
#include "statewall/rules/vocab.hpp"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <map>

#include <fmt/format.h>

namespace statewall::cli {
namespace {

using sim::FlowLogReport;

// Per rule change: connections broken and opened, their records, bytes, first and last seen.
struct ChangeTotals {
  uint64_t breaks = 0, opens = 0, records = 0, bytes = 0, first = UINT64_MAX, last = 0;
};
std::map<long, ChangeTotals> changeTotals(const FlowLogReport& r) {
  std::map<long, ChangeTotals> out;
  for (const auto& c : r.changed) {
    ChangeTotals& t = out[c.change];
    (c.breaks ? t.breaks : t.opens)++;
    t.records += c.records;
    t.bytes += c.bytes;
    t.first = std::min(t.first, c.first);
    t.last = std::max(t.last, c.last);
  }
  return out;
}

std::string changeText(const FlowLogReport& r, long c, const std::string& note) {
  if (c < 0) return "no single rule change (" + note + ")";
  return r.diff.changes[static_cast<size_t>(c)].str();
}

}  // namespace

std::optional<sim::FlowLogFormat> logFormatOption(std::string_view command,
                                                  const std::string& text) {
  if (text.empty()) return sim::FlowLogFormat::defaultV2();
  auto f = sim::FlowLogFormat::parse(text);
  if (!f) {
    std::fprintf(stderr, "statewall %.*s: --format: %s\n", static_cast<int>(command.size()),
                 command.data(), f.message().c_str());
    return std::nullopt;
  }
  return std::move(*f);
}

// Flow-log times are whole seconds.
std::string utcSeconds(uint64_t s) {
  return rules::utcText(s * 1000000000ull, 0);
}

std::string where(const sim::FlowKey& f, const std::string& iface, bool egress) {
  return fmt::format("{} at {} ({})", f.str(), iface, egress ? "egress" : "ingress");
}

nlohmann::ordered_json flowLogFlowJson(const sim::FlowKey& f) {
  nlohmann::ordered_json j;
  j["proto"] = f.proto;
  j["src"] = f.src.str();
  j["dst"] = f.dst.str();
  j["sport"] = f.sport;
  j["dport"] = f.dport;
  return j;
}

std::string flowLogChangesText(const sim::FlowLogReport& r, size_t max_flows) {
  std::string out;
  long cur = -2;
  size_t in_group = 0;
  const auto totals = changeTotals(r);
  for (const auto& c : r.changed) {
    if (c.change != cur) {
      cur = c.change;
      in_group = 0;
      const ChangeTotals& t = totals.at(c.change);
      out += "  " + changeText(r, c.change, c.note) + "\n";
      out += fmt::format("    {} connections break, {} open: {} records, {} bytes, {} .. {}\n",
                         t.breaks, t.opens, t.records, t.bytes, utcSeconds(t.first),
                         utcSeconds(t.last));
    }
    if (in_group++ == max_flows) {
      out += "    ... (--json lists all)\n";
      continue;
    }
    if (in_group > max_flows) continue;
    out += fmt::format(
        "    {}  {}  {} records, {} packets, {} bytes, {} .. {}\n      old: {}\n      new: {}\n",
        c.breaks ? "breaks" : "opens ", where(c.flow, c.interface, false), c.records, c.packets,
        c.bytes, utcSeconds(c.first), utcSeconds(c.last), c.old_detail, c.new_detail);
  }
  out += fmt::format(
      "  {} logged connections would break ({} records ACCEPTed, NEW rejects), {} would open "
      "({} records REJECTed, NEW accepts){}\n",
      r.break_connections, r.break_records, r.open_connections, r.open_records,
      r.break_connections + r.open_connections > 0 ? " (exit 1)" : "");
  return out;
}

void addFlowLogChangesJson(const sim::FlowLogReport& r, nlohmann::ordered_json* out) {
  nlohmann::ordered_json& av = *out;
  av["break_connections"] = r.break_connections;
  av["break_records"] = r.break_records;
  av["open_connections"] = r.open_connections;
  av["open_records"] = r.open_records;
  auto& changes = av["changes"] = nlohmann::ordered_json::array();
  const auto totals = changeTotals(r);
  long cur = -2;
  for (const auto& c : r.changed) {
    if (changes.empty() || c.change != cur) {
      cur = c.change;
      nlohmann::ordered_json g;
      g["change"] = c.change < 0 ? nlohmann::ordered_json(nullptr)
                                 : nlohmann::ordered_json(changeText(r, c.change, c.note));
      if (c.change < 0) g["note"] = c.note;
      const ChangeTotals& t = totals.at(c.change);
      g["break_connections"] = t.breaks;
      g["open_connections"] = t.opens;
      g["records"] = t.records;
      g["bytes"] = t.bytes;
      g["first"] = t.first;
      g["last"] = t.last;
      g["connections"] = nlohmann::ordered_json::array();
      changes.push_back(std::move(g));
    }
    nlohmann::ordered_json x;
    x["effect"] = c.breaks ? "breaks" : "opens";
    x["interface"] = c.interface;
    x["flow"] = flowLogFlowJson(c.flow);
    x["records"] = c.records;
    x["packets"] = c.packets;
    x["bytes"] = c.bytes;
    x["first"] = c.first;
    x["last"] = c.last;
    x["old"] = c.old_detail;
    x["new"] = c.new_detail;
    x["where"] = c.where;
    changes.back()["connections"].push_back(std::move(x));
  }
  av["unlisted"] = r.changed_unlisted;
}

}  // namespace statewall::cli
