// AWS VPC Flow Logs: the record, a streaming reader and a writer (statewall flowlogs, gen).
// --flow-log`).
//
// A record is one interface's view of one direction of a flow over an aggregation window: the
// packets and bytes it saw, the first and last second, the TCP flags OR-ed over the window, and
// its action, AWS's combined security-group and network-ACL verdict at that interface.
//
// Reader: the default format (version 2, 14 fields) and custom formats of any version (the fields
// of versions 3 to 8 are known by name; other names are read and ignored), described by the
// header line S3 delivery writes ("version account-id interface-id ..."), or by the format string
// the console and the API take ("${version} ${srcaddr} ..."). Plain or gzip files (S3 delivers
// `.log.gz`; several gzip members one after another are read as one stream). One record at a
// time: memory does not grow with the file.
//
// Writer: AWS's own text format (a header line, then space-separated fields, '-' for absent
// values) or JSON lines with the deciding rule and reason added; and an aggregator that turns
// judged packets into per-interface, per-direction records over fixed windows, as AWS does.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "statewall/dataplane/engine.hpp"
#include "statewall/dataplane/packet.hpp"
#include "statewall/rules/compiled.hpp"
#include "statewall/rules/ip.hpp"

namespace statewall::sim {

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
  // header line). nullopt + *err for an empty format or one without interface-id, addresses,
  // ports, protocol, start and action.
  static std::optional<FlowLogFormat> parse(std::string_view text, std::string* err);
  std::string headerLine() const;  // "version account-id ..."
};

struct FlowLogError {
  std::string path;
  uint64_t line = 0;  // 1-based; 0 when the file as a whole failed (cannot open, bad gzip)
  std::string message;
  std::string str() const;  // "FILE:LINE: MESSAGE"
};

// Reads one log file record by record. Lines that are empty are skipped; a line that starts with
// a field name (not a digit) is a header line and sets the format of the lines after it. Without
// a header the `fallback` format is used (the default version 2 format unless --format says
// otherwise).
class FlowLogReader {
 public:
  // nullptr + *err when the file cannot be opened. "-" reads standard input.
  static std::unique_ptr<FlowLogReader> open(const std::string& path, const FlowLogFormat& fallback,
                                             FlowLogError* err);
  ~FlowLogReader();
  FlowLogReader(const FlowLogReader&) = delete;
  FlowLogReader& operator=(const FlowLogReader&) = delete;

  enum class Result : uint8_t { kRecord, kEnd, kError };
  // The next record into *out. kError: error() says where and what; the reader stops there.
  Result next(FlowLogRecord* out);
  const FlowLogError& error() const { return error_; }
  uint64_t line() const { return line_; }  // of the record just read
  const std::string& path() const { return path_; }
  bool gzip() const { return gzip_; }
  const FlowLogFormat& format() const { return format_; }

 private:
  FlowLogReader() = default;
  bool fill();  // more bytes into buf_; false at the end or on error (error_ set)
  bool parseLine(std::string_view line, FlowLogRecord* out);
  bool fail(std::string message);

  std::string path_;
  FlowLogFormat format_;
  FlowLogError error_;
  int fd_ = -1;
  void* gz_ = nullptr;  // gzFile when gzip
  bool gzip_ = false;
  bool eof_ = false;
  std::vector<char> buf_;
  size_t begin_ = 0, end_ = 0;  // unread bytes buf_[begin_, end_)
  uint64_t line_ = 0;
  std::vector<std::string_view> tokens_;
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
  // nullptr + *err when the file cannot be created.
  static std::unique_ptr<FlowLogWriter> open(const std::string& path, Format format,
                                             std::string* err,
                                             FlowLogFormat fields = FlowLogFormat::v5());
  ~FlowLogWriter();
  FlowLogWriter(const FlowLogWriter&) = delete;
  FlowLogWriter& operator=(const FlowLogWriter&) = delete;

  // `rule` and `reason` go to JSON lines only ("" leaves them out): the deciding rule's label and
  // the verdict's reason code.
  void write(const FlowLogRecord& r, std::string_view rule = {}, std::string_view reason = {});
  uint64_t records() const { return records_; }
  // Flushes and closes; false + *err on a write error.
  bool close(std::string* err);

 private:
  FlowLogWriter() = default;
  FILE* f_ = nullptr;
  bool owned_ = false;
  Format format_ = Format::kText;
  FlowLogFormat fields_;
  std::string line_;
  uint64_t records_ = 0;
};

// Turns judged packets into flow-log records as AWS aggregates them: per interface, direction,
// 5-tuple and action, over windows of `window_s` seconds aligned to the epoch. Records of a
// window are written (in order of first packet) when a packet of a later window arrives, or at
// finish(): memory holds the flows of one window. Feed packets in time order.
// JSON lines add the first packet's deciding rule (the engine's: a security-group rule or ACL
// entry label, as `replay --verdicts` names them) and reason. Replay and statewalld can feed it
// from their verdict observers; a connection-end event can write its own records through
// FlowLogWriter directly.
class FlowLogAggregator {
 public:
  FlowLogAggregator(const rules::CompiledPolicy& policy, FlowLogWriter* writer,
                    uint32_t window_s = 60, std::string account_id = "123456789012");
  ~FlowLogAggregator();
  FlowLogAggregator(const FlowLogAggregator&) = delete;
  FlowLogAggregator& operator=(const FlowLogAggregator&) = delete;

  // One judged packet at ts_ns (its IP length counts as its bytes, as AWS counts them). Packets
  // no ENI would log (non-IP, ARP and neighbour discovery, the AWS services flow logs do not
  // capture, traffic between two unprotected addresses) are ignored.
  void add(uint64_t ts_ns, const dataplane::Verdict& v, const dataplane::ParsedPacket& p);
  void finish();  // writes every pending record
  uint64_t records() const { return records_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  uint64_t records_ = 0;
};

}  // namespace statewall::sim
