// What `statewall flowlogs` and `statewall diff --flow-logs` share: the --format option, and how
// they print what a new policy changes on logged traffic (sim::FlowLogReport's changed
// connections), so both say it alike.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "statewall/sim/flowlog.hpp"
#include "statewall/sim/flowlog_judge.hpp"

namespace statewall::cli {

// The fields of logs without a header line from a --format option ("${version} ${srcaddr} ..."),
// the default format (version 2) when `text` is empty; nullopt after printing
// "statewall COMMAND: --format: WHAT IS WRONG" on stderr.
std::optional<sim::FlowLogFormat> logFormatOption(std::string_view command,
                                                  const std::string& text);

// "2023-11-14 22:13:20 UTC"
std::string utcSeconds(uint64_t s);
// "tcp 10.0.2.10:45168 -> 10.0.3.10:5432 at db-1 (ingress)"
std::string where(const sim::FlowKey& f, const std::string& iface, bool egress);
// A logged flow in JSON: {proto, src, dst, sport, dport}.
nlohmann::ordered_json flowLogFlowJson(const sim::FlowKey& f);
// The connections that break or open, grouped by rule change (at most `max_flows` listed per
// change), and the summary line ending " (exit 1)" when any does. Lines indented by two spaces.
std::string flowLogChangesText(const sim::FlowLogReport& r, size_t max_flows);
// The same into *out: break_connections, break_records, open_connections, open_records,
// changes [{change, ..., connections: [...]}], unlisted.
void addFlowLogChangesJson(const sim::FlowLogReport& r, nlohmann::ordered_json* out);

}  // namespace statewall::cli
