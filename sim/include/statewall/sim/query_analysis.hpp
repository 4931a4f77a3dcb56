// `statewall query`'s answer as data: the first packet of one flow judged with a policy, every
// check on each side, and what happens to its replies (tracked, untracked and needing their own
// rule, or dropped by a stateless network ACL). The CLI renders it as text and JSON.
//
// Pure; may be called from any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "statewall/base/status.hpp"
#include "statewall/rules/compiled.hpp"
#include "statewall/rules/evaluate.hpp"
#include "statewall/rules/exemption.hpp"

namespace statewall::sim {

// Source port of a query flow written without one.
inline constexpr uint16_t kQueryDefaultSourcePort = 49152;

// "PROTO SRC[:PORT] -> DST[:PORT] [type=T[,code=C]]" (sim/flow_text.hpp's syntax) as the one
// packet `statewall query` judges: tcp/udp need a destination port (source port
// kQueryDefaultSourcePort unless given), ICMP defaults to an echo request. A failure saying what
// is wrong otherwise.
base::Expected<rules::Flow5> parseQueryFlow(std::string_view text);

// The reply of a flow's first packet, or nullopt when the protocol has no reply (ICMP errors,
// ICMP types without a reply).
std::optional<rules::Flow5> replyOf(const rules::Flow5& f);

// What the reply meets on one side of the connection.
struct ReplySide {
  bool is_source = false;  // the side of the first packet's source
  rules::IfaceId iface = rules::kNoIface;
  bool untracked = false;
  rules::SgVerdict sg;  // untracked only: the reply's own rule
};

struct ReplyAnalysis {
  rules::Flow5 flow;
  std::vector<ReplySide> sides;  // one per security-group check of the first packet
  rules::Evaluation acl;         // the reply's ACL checks (stateless)
  bool allowed = true;
};

// Whether the replies of the first packet pass.
enum class Replies : uint8_t { kPass, kDropped, kNoneExpected, kNoConnection };
std::string_view repliesName(Replies r);  // "pass", "dropped", "none expected", "no connection"

// What a person must know about an ICMP error before reading how the rules judge it: an error
// about a tracked connection passes as related without a rule (docs/design.md "Connection
// tracking"), so the rules decide only errors about nothing tracked; and denying the errors that
// path-MTU discovery needs makes large transfers hang.
struct IcmpErrorNote {
  std::string what;  // "icmp destination unreachable, fragmentation needed"
  bool may_be_related = false;
  bool path_mtu = false;
  std::string related;  // the note on relatedness
  std::string warning;  // empty unless a path-MTU error is denied
};

struct QueryAnalysis {
  rules::Flow5 flow;
  // Traffic with the VPC's own services passes before any rule (docs/design.md, Tracking): when
  // set, nothing below is.
  rules::Exemption exemption = rules::Exemption::kNone;
  rules::Evaluation first;                      // the first packet, every check of both sides
  std::string reason;                           // "allow-rule", "allow-untracked", "deny-acl", ...
  std::optional<rules::Flow5> reply;            // nullopt: the protocol has no reply
  std::optional<ReplyAnalysis> reply_analysis;  // allowed, a reply, and a protected side
  Replies replies = Replies::kNoConnection;
  std::string reply_dropper;  // when dropped: "network ACL public-acl (inbound)", ...
  std::optional<IcmpErrorNote> icmp_error;

  bool allowed() const { return exemption != rules::Exemption::kNone || first.allowed; }
  // Indexes into first.checks of one side's checks (source: the outbound ones), in order.
  std::vector<int> checksOfSide(bool source) const;
};

QueryAnalysis analyseQuery(const rules::CompiledPolicy& policy, const rules::Flow5& flow);

}  // namespace statewall::sim
