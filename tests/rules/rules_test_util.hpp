// Helpers for the loader tests: load in-memory documents, find diagnostics, dump a policy in a
// canonical text form (sorted by name, locations and ids left out) to compare two policies.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "common/temp_dir.hpp"
#include "statewall/rules/loader.hpp"

namespace statewall::rules::testutil {

inline LoadResult loadYamlText(const std::string& text, const std::string& name = "p.yaml") {
  return loadPolicyTexts({SourceText{name, text}});
}

// All diagnostics, one per line, for failure messages.
inline std::string dumpDiagnostics(const LoadResult& r) {
  std::string s;
  for (const auto& d : r.diagnostics)
    s += d.str() + "\n";
  return s;
}

inline size_t errorCount(const LoadResult& r) {
  return static_cast<size_t>(
      std::count_if(r.diagnostics.begin(), r.diagnostics.end(),
                    [](const Diagnostic& d) { return d.severity == Severity::kError; }));
}

// The first diagnostic of `severity` at `loc` (SourceLoc::str()) whose message contains
// `fragment`, or nullptr.
inline const Diagnostic* findDiagnostic(const LoadResult& r, Severity severity,
                                        const std::string& loc, const std::string& fragment) {
  for (const auto& d : r.diagnostics) {
    if (d.severity == severity && d.loc.str() == loc &&
        d.message.find(fragment) != std::string::npos) {
      return &d;
    }
  }
  return nullptr;
}

// Asserts that the load failed as a whole and reported `fragment` at `loc`, formatted as
// "LOC: error: MESSAGE".
inline ::testing::AssertionResult failsWith(const LoadResult& r, const std::string& loc,
                                            const std::string& fragment) {
  if (r.policy) return ::testing::AssertionFailure() << "policy loaded; expected an error";
  const Diagnostic* d = findDiagnostic(r, Severity::kError, loc, fragment);
  if (!d) {
    return ::testing::AssertionFailure()
           << "no error at '" << loc << "' containing '" << fragment << "'; got:\n"
           << dumpDiagnostics(r);
  }
  std::string prefix = loc + ": error: ";
  if (d->str().compare(0, prefix.size(), prefix) != 0) {
    return ::testing::AssertionFailure() << "bad format: " << d->str();
  }
  return ::testing::AssertionSuccess();
}

// Canonical text of a policy, sorted by object name; ids, descriptions and locations are left
// out, so a YAML policy and its AWS JSON twin give the same text.
inline std::string canonical(const Policy& p) {
  std::vector<std::string> lines;
  lines.push_back("timeouts profile=" +
                  std::string(p.timeouts.profile == TimeoutProfile::kAws ? "aws" : "linux"));
  for (size_t i = 0; i < kTimeoutKeyCount; ++i) {
    lines.push_back("timeouts " + std::string(timeoutKeyName(static_cast<TimeoutKey>(i))) + "=" +
                    std::to_string(p.timeouts.seconds[i]));
  }
  lines.push_back(std::string("unprotected ") + (p.unprotected_allow ? "allow" : "deny"));
  lines.push_back(std::string("strict ") + (p.strict ? "true" : "false"));
  for (const auto& pl : p.prefix_lists) {
    std::string s = "prefix-list " + pl.name + ":";
    for (const auto& c : pl.cidrs)
      s += " " + c.str();
    lines.push_back(s);
  }
  for (const auto& g : p.groups) {
    lines.push_back("group " + g.name + " inbound-rules=" + std::to_string(g.inbound.size()) +
                    " outbound-rules=" + std::to_string(g.outbound.size()));
    for (Direction d : {Direction::kInbound, Direction::kOutbound}) {
      const auto& rules = d == Direction::kInbound ? g.inbound : g.outbound;
      for (size_t i = 0; i < rules.size(); ++i) {
        lines.push_back("group " + g.name + " " + std::string(directionName(d)) + "[" +
                        std::to_string(i) + "] " + rules[i].str(d));
      }
    }
  }
  for (const auto& a : p.acls) {
    lines.push_back("acl " + a.name);
    for (Direction d : {Direction::kInbound, Direction::kOutbound}) {
      const auto& entries = d == Direction::kInbound ? a.inbound : a.outbound;
      for (size_t i = 0; i < entries.size(); ++i) {
        lines.push_back("acl " + a.name + " " + std::string(directionName(d)) + "[" +
                        std::to_string(i) + "] " + entries[i].str(d));
      }
    }
  }
  for (const auto& s : p.subnets) {
    std::string line = "subnet " + s.name + " acl=" + s.acl + ":";
    for (const auto& c : s.cidrs)
      line += " " + c.str();
    lines.push_back(line);
  }
  for (const auto& i : p.interfaces) {
    std::string line = "interface " + i.name + ":";
    for (const auto& a : i.addresses)
      line += " " + a.str();
    line += " groups";
    for (const auto& g : i.groups)
      line += " " + g;
    lines.push_back(line);
  }
  // Objects may come in any order; rules keep theirs (the index is part of the line).
  std::sort(lines.begin(), lines.end());
  std::string out;
  for (const auto& l : lines)
    out += l + "\n";
  return out;
}

// The tests' one temporary directory (common/temp_dir.hpp).
using ::statewall::testing::TempDir;

}  // namespace statewall::rules::testutil
