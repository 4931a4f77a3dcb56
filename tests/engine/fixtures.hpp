// The engine's packet fixture table (issue 3, "Tests"): scenarios of frames with the verdict each
// one must get according to docs/design.md. The same table runs through the Engine here, and
// through `statewall replay` and the DPDK appliance in their own tests, which compare their
// verdicts with the same expectations.
//
// A fixture is plain data: a policy (YAML text), frames with injected-clock timestamps, policy
// changes between frames, and per packet the expected reason and, where it matters, the TCP state
// after the packet, the text of the rule named by the verdict, flags, and where a deny happened.
// Expectations come from docs/design.md, not from the implementation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "statewall/dataplane/engine.hpp"
#include "statewall/dataplane/packet.hpp"
#include "statewall/dataplane/tcp_tracker.hpp"
#include "statewall/dataplane/verdict.hpp"
#include "statewall/rules/compiled.hpp"

namespace statewall::fixtures {

using dataplane::LinkType;
using dataplane::Reason;
using dataplane::TcpState;

// Flags whose presence is part of the expectation in both directions: a packet must carry exactly
// those of them that its flags_set names (unless flags_unset says otherwise). The other flags
// (new connection, reply, connection closed) are checked only where flags_set names them.
inline constexpr uint16_t kExclusiveFlags = dataplane::kFlagTcpInvalid | dataplane::kFlagUntracked |
                                            dataplane::kFlagControl | dataplane::kFlagFragment |
                                            dataplane::kFlagMidStream | dataplane::kFlagReopened;

struct FixturePacket {
  std::string note;            // what the packet is, for failure messages
  std::vector<uint8_t> frame;  // the whole frame, in the fixture's link type
  uint64_t at_ns = 0;          // injected clock; never decreases within a fixture
  Reason reason = Reason::kDenyMalformed;
  std::optional<TcpState> tcp_before;  // TCP state the packet found; unset = not checked
  std::optional<TcpState> tcp_after;   // TCP state after the packet; unset = not checked
  // The rule the verdict names, as ruleLabel() prints it ("srv inbound tcp 80 from 0.0.0.0/0,
  // ::/0"); unset = not checked. Checked against the policy in force when the packet ran.
  std::optional<std::string> rule_text;
  uint16_t flags_set = 0;                  // VerdictFlag bits that must be set
  uint16_t flags_unset = kExclusiveFlags;  // bits that must be clear unless in flags_set
  // Where a deny happened, as denyWhere() prints it: deny-sg "IFACE inbound|outbound" (or "none"
  // when no interface is involved), deny-acl "ACL RULE" ("pub-acl 90", "pub-acl *"),
  // deny-malformed the layer name ("fragment"). Unset = not checked.
  std::optional<std::string> where;
};

// Publish `policy_yaml` (compiled afresh) just before packet `before_packet` is processed.
struct PolicyChange {
  size_t before_packet;
  std::string policy_yaml;
};

struct Fixture {
  std::string name;  // [a-z0-9_]; unique
  std::string description;
  std::string policy_yaml;
  std::vector<FixturePacket> packets;
  std::vector<PolicyChange> changes;  // sorted by before_packet
  size_t table_capacity = 0;          // 0 = kFixtureTableCapacity
  LinkType link = LinkType::kEthernet;
};

// Table capacity for fixtures that do not set one: enough for every fixture, small enough that a
// fresh engine per fixture is cheap.
inline constexpr size_t kFixtureTableCapacity = 1024;

// All fixtures, built once (thread-safe static initialisation).
const std::vector<Fixture>& allFixtures();

// Rows of tcpTransitions() for which the table has no fixture (should be none).
std::vector<size_t> transitionRowsWithoutFixture();

// Loads and compiles policy YAML; prints the diagnostics and aborts when it does not compile
// (a broken fixture is a bug in the table, not a test result).
rules::CompiledPolicyPtr compileFixturePolicy(const std::string& yaml);

// The engine configuration a fixture runs with.
dataplane::EngineConfig fixtureEngineConfig(const Fixture& f);

// Runs a fixture through a fresh Engine with one worker: bursts of at most `burst` packets
// (1..kMaxBurst); a burst never spans a policy change or a change of timestamp (process() takes
// one time per burst). Returns one verdict per packet. If `engine_out` is given, the engine is
// handed back for counter checks; `policies_out` receives the policy in force for each packet.
// fast_paths: EngineConfig::fast_paths (false: the general algorithm for every packet).
std::vector<dataplane::Verdict> runFixture(
    const Fixture& f, unsigned burst, std::unique_ptr<dataplane::Engine>* engine_out = nullptr,
    std::vector<rules::CompiledPolicyPtr>* policies_out = nullptr, bool fast_paths = true);

// "GROUP DIRECTION TEXT" of a rule, e.g. "srv inbound tcp 80 from 0.0.0.0/0, ::/0";
// "none" for kNoRule, "?" for an id the policy does not have.
std::string ruleLabel(const rules::CompiledPolicy& policy, rules::RuleId rule);
// See FixturePacket::where.
std::string denyWhere(const rules::CompiledPolicy& policy, const dataplane::Verdict& v);
// "allow-rule" plus flags, state and rule, for failure messages.
std::string describeVerdict(const rules::CompiledPolicy& policy, const dataplane::Verdict& v);
std::string describeFlags(uint16_t flags);

// Compares one verdict with its expectation; returns an empty string when it matches, else what
// differs (one line per mismatch).
std::string checkPacket(const FixturePacket& p, const dataplane::Verdict& v,
                        const rules::CompiledPolicy& policy);

}  // namespace statewall::fixtures
