// AWS VPC Flow Logs records, one owner for `statewall replay --flow-log`, `statewall gen
// --flow-log` and statewalld's --flow-log: the fields, the record, the writer (AWS's version 5
// text with its header line, or JSON lines with the deciding rule and reason), and the
// aggregation key of a judged packet (per interface, direction, 5-tuple and action, as AWS
// aggregates) with the plain, fixed-size aggregate a forwarding lcore can fill without
// allocating and a ring can carry. Depends on rules and the dataplane's verdict only; no DPDK.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "statewall/base/status.hpp"
#include "statewall/dataplane/engine.hpp"
#include "statewall/dataplane/packet.hpp"
#include "statewall/rules/compiled.hpp"
#include "statewall/rules/ip.hpp"

namespace statewall::flowlog {

// X(enumerator, name as AWS spells it, version that introduced it)
#define STATEWALL_FLOWLOG_FIELDS(X)                            \
  X(kVersion, "version", 2)                                    \
  X(kAccountId, "account-id", 2)                               \
  X(kInterfaceId, "interface-id", 2)                           \
  X(kSrcAddr, "srcaddr", 2)                                    \
  X(kDstAddr, "dstaddr", 2)                                    \
  X(kSrcPort, "srcport", 2)                                    \
  X(kDstPort, "dstport", 2)                                    \
  X(kProtocol, "protocol", 2)                                  \
  X(kPackets, "packets", 2)                                    \
  X(kBytes, "bytes", 2)                                        \
  X(kStart, "start", 2)                                        \
  X(kEnd, "end", 2)                                            \
  X(kAction, "action", 2)                                      \
  X(kLogStatus, "log-status", 2)                               \
  X(kVpcId, "vpc-id", 3)                                       \
  X(kSubnetId, "subnet-id", 3)                                 \
  X(kInstanceId, "instance-id", 3)                             \
  X(kTcpFlags, "tcp-flags", 3)                                 \
  X(kType, "type", 3)                                          \
  X(kPktSrcAddr, "pkt-srcaddr", 3)                             \
  X(kPktDstAddr, "pkt-dstaddr", 3)                             \
  X(kRegion, "region", 4)                                      \
  X(kAzId, "az-id", 4)                                         \
  X(kSublocationType, "sublocation-type", 4)                   \
  X(kSublocationId, "sublocation-id", 4)                       \
  X(kPktSrcAwsService, "pkt-src-aws-service", 5)               \
  X(kPktDstAwsService, "pkt-dst-aws-service", 5)               \
  X(kFlowDirection, "flow-direction", 5)                       \
  X(kTrafficPath, "traffic-path", 5)                           \
  X(kEcsClusterArn, "ecs-cluster-arn", 7)                      \
  X(kEcsClusterName, "ecs-cluster-name", 7)                    \
  X(kEcsContainerInstanceArn, "ecs-container-instance-arn", 7) \
  X(kEcsContainerInstanceId, "ecs-container-instance-id", 7)   \
  X(kEcsContainerId, "ecs-container-id", 7)                    \
  X(kEcsSecondContainerId, "ecs-second-container-id", 7)       \
  X(kEcsServiceName, "ecs-service-name", 7)                    \
  X(kEcsTaskDefinitionArn, "ecs-task-definition-arn", 7)       \
  X(kEcsTaskArn, "ecs-task-arn", 7)                            \
  X(kEcsTaskId, "ecs-task-id", 7)                              \
  X(kRejectReason, "reject-reason", 8)

enum class FlowLogField : uint8_t {
#define STATEWALL_FLOWLOG_ENUM(e, name, version) e,
  STATEWALL_FLOWLOG_FIELDS(STATEWALL_FLOWLOG_ENUM)
#undef STATEWALL_FLOWLOG_ENUM
      kUnknown,  // a name this reader does not know (a newer AWS field): read and ignored
};
inline constexpr size_t kFlowLogFieldCount = static_cast<size_t>(FlowLogField::kUnknown);
std::string_view flowLogFieldName(FlowLogField f);
// nullopt for a name that is not a known field.
std::optional<FlowLogField> parseFlowLogField(std::string_view name);

enum class FlowAction : uint8_t { kNone, kAccept, kReject };
enum class LogStatus : uint8_t { kOk, kNoData, kSkipData };
enum class FlowDirection : uint8_t { kUnknown, kIngress, kEgress };
std::string_view flowActionName(FlowAction a);        // "ACCEPT", "REJECT", "-"
std::string_view flowDirectionName(FlowDirection d);  // "ingress", "egress", "-"

// AWS's tcp-flags bits: only these are logged, OR-ed over the window (SYN-ACK is 18 = SYN | ACK).
inline constexpr uint8_t kFlowTcpFin = 1, kFlowTcpSyn = 2, kFlowTcpRst = 4, kFlowTcpSynAck = 18;

// One record. String fields view the reader's buffer: valid until the reader's next call.
struct FlowLogRecord {
  uint32_t version = 2;
  std::string_view account_id, interface_id, vpc_id, subnet_id, instance_id, type;
  rules::IpAddr src, dst;          // srcaddr / dstaddr (the interface's view)
  rules::IpAddr pkt_src, pkt_dst;  // the packet's own addresses: pkt-* when logged, else src/dst
  bool has_addrs = false;          // false on NODATA/SKIPDATA records ('-')
  uint16_t sport = 0, dport = 0;
  uint8_t proto = 0;
  uint64_t packets = 0, bytes = 0;
  uint64_t start = 0, end = 0;  // seconds since 1970
  FlowAction action = FlowAction::kNone;
  LogStatus status = LogStatus::kOk;
  int tcp_flags = -1;  // -1: not logged
  FlowDirection direction = FlowDirection::kUnknown;
  int traffic_path = -1;
};

// The fields of a log, in order.
struct FlowLogFormat {
  std::vector<FlowLogField> fields;
  std::vector<std::string> names;  // as written (unknown names kept for messages)

  static FlowLogFormat defaultV2();  // the 14 fields of the default format
  static FlowLogFormat v5();         // what the writer writes: version 5 fields
  // "${version} ${srcaddr} ..." (the console and API form) or "version srcaddr ..." (the S3
  // header line). A failure for an empty format or one without interface-id, addresses, ports,
  // protocol, start and action.
  static base::Expected<FlowLogFormat> parse(std::string_view text);
  std::string headerLine() const;  // "version account-id ..."
};

// The action at one interface of a packet the engine judged (docs/design.md "Direction": a packet
// meets its source's groups and ACL, then its destination's ACL and groups; the first that denies
// decides): kAccept where that side let it through, kReject where that side denied it, kNone at
// the destination when the source side denied it (it never arrived: AWS logs nothing there).
// `source_side`: the interface is the packet's source (egress) rather than its destination.
FlowAction actionAtSide(const dataplane::Verdict& v, const rules::CompiledPolicy& policy,
                        bool source_side);

// Writes records: AWS text (header line first) or JSON lines. "-" writes standard output.
class FlowLogWriter {
 public:
  enum class Format : uint8_t { kText, kJsonl };
  // A failure ("PATH: cannot create: ...") when the file cannot be created.
  static base::Expected<std::unique_ptr<FlowLogWriter>> open(
      const std::string& path, Format format, FlowLogFormat fields = FlowLogFormat::v5());
  // The same with the older error out-parameter, for dataplane/dpdk/src/flow_log.cpp until it
  // moves to the one above; delete then.
  static std::unique_ptr<FlowLogWriter> open(const std::string& path, Format format,
                                             std::string* err,
                                             FlowLogFormat fields = FlowLogFormat::v5()) {
    auto w = open(path, format, std::move(fields));
    if (!w) {
      *err = w.message();
      return nullptr;
    }
    return std::move(*w);
  }
  // Writes to an open stream and closes it at close() (statewalld: its standard output, once its
  // own messages were moved to standard error).
  static std::unique_ptr<FlowLogWriter> adopt(FILE* f, Format format,
                                              FlowLogFormat fields = FlowLogFormat::v5());
  ~FlowLogWriter();
  FlowLogWriter(const FlowLogWriter&) = delete;
  FlowLogWriter& operator=(const FlowLogWriter&) = delete;

  // `rule` and `reason` go to JSON lines only ("" leaves them out): the deciding rule's label and
  // the verdict's reason code.
  void write(const FlowLogRecord& r, std::string_view rule = {}, std::string_view reason = {});
  uint64_t records() const { return records_; }
  // Flushes and closes; a failure ("write error: ...") on a write error.
  base::Status close();
  // The same with the older error out-parameter, for dataplane/dpdk/src/flow_log.cpp until it
  // moves to the one above; delete then.
  bool close(std::string* err) {
    const base::Status s = close();
    if (!s.ok()) *err = s.message();
    return s.ok();
  }

 private:
  FlowLogWriter() = default;
  FILE* f_ = nullptr;
  bool owned_ = false;
  Format format_ = Format::kText;
  FlowLogFormat fields_;
  std::string line_;
  uint64_t records_ = 0;
};

// ---- aggregation: one owner of what a packet adds to which record ----

// A record's identity within a window: one interface's view of one direction of a flow.
struct FlowLogKey {
  rules::IpAddr src, dst;
  rules::IfaceId iface = rules::kNoIface;
  uint16_t sport = 0, dport = 0;  // 0 for ICMP, as AWS logs it
  uint8_t proto = 0;
  bool egress = false;
  FlowAction action = FlowAction::kNone;
  friend bool operator==(const FlowLogKey&, const FlowLogKey&) = default;
};

// A record being aggregated: plain data (a forwarding lcore fills it in place and copies it
// through a ring). The first packet's deciding rule, ACL entry and reason go to JSON lines.
struct FlowLogAgg {
  FlowLogKey key;
  uint64_t first_ns = 0, last_ns = 0;  // seconds since 1970, in ns
  uint64_t packets = 0, bytes = 0;
  rules::RuleId rule = rules::kNoRule;
  rules::AclEntryId acl_entry = rules::kNoAclEntry;
  dataplane::Reason reason = dataplane::Reason::kDenyMalformed;
  uint8_t flags = 0;  // AWS tcp-flags, OR-ed
};

// Whether a judged packet counts in any record: not for non-IP, nor for the AWS services flow
// logs do not capture and ARP and neighbour discovery (allow-exempt). flowLogKeys() asks it first.
inline bool flowLogCounted(const dataplane::Verdict& v, const dataplane::ParsedPacket& p) noexcept {
  return (p.l3 == dataplane::L3::kIpv4 || p.l3 == dataplane::L3::kIpv6) &&
         v.reason != dataplane::Reason::kAllowExempt;
}
// A record's ports for the packet: 0 for ICMP, as AWS logs it.
inline void flowLogPorts(const dataplane::ParsedPacket& p, uint16_t* sport,
                         uint16_t* dport) noexcept {
  const bool icmp = p.proto == dataplane::kIpProtoIcmp || p.proto == dataplane::kIpProtoIcmpv6;
  *sport = icmp ? 0 : p.sport;
  *dport = icmp ? 0 : p.dport;
}
// One record's side of a packet: the interface, its direction there and the action.
struct FlowLogSide {
  rules::IfaceId iface = rules::kNoIface;
  bool egress = false;
  FlowAction action = FlowAction::kNone;
};
// The sides flowLogKeys() makes keys for, given the interfaces of the packet's source and
// destination addresses (CompiledPolicy::interfaceOf): for a caller that keeps them per flow.
unsigned flowLogSides(const dataplane::Verdict& v, const rules::CompiledPolicy& policy,
                      rules::IfaceId src_iface, rules::IfaceId dst_iface,
                      FlowLogSide sides[2]) noexcept;

// The records a judged packet counts in: up to two (its source interface's egress, its
// destination interface's ingress), written to keys[0..n); 0 for packets no ENI logs (non-IP,
// ARP and neighbour discovery, the AWS services flow logs do not capture, traffic between two
// unprotected addresses). No allocation.
unsigned flowLogKeys(const dataplane::Verdict& v, const dataplane::ParsedPacket& p,
                     const rules::CompiledPolicy& policy, FlowLogKey keys[2]) noexcept;
// Starts an aggregate with the packet that opened it (count it with flowLogCount()).
void flowLogBegin(FlowLogAgg* a, const FlowLogKey& k, uint64_t ts_ns,
                  const dataplane::Verdict& v) noexcept;
// Counts one packet at ts_ns (its IP length as its bytes, as AWS counts them).
void flowLogCount(FlowLogAgg* a, uint64_t ts_ns, const dataplane::ParsedPacket& p) noexcept;

// What a policy names in records: interface and subnet ids, rule and ACL entry labels (as
// `replay --verdicts` names them). Built once per policy, off the packet path.
class FlowLogNames {
 public:
  explicit FlowLogNames(const rules::CompiledPolicy& policy,
                        std::string account_id = "123456789012");
  // Writes the record of `a` (ids out of this policy's range are written without a name).
  void write(FlowLogWriter& w, const FlowLogAgg& a) const;

 private:
  std::string account_;
  std::vector<std::string> iface_ids_, subnet_ids_, rule_labels_, acl_labels_;
};

}  // namespace statewall::flowlog
