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
#include "statewall/flowlog/flow_log.hpp"
#include "statewall/rules/compiled.hpp"
#include "statewall/rules/ip.hpp"

namespace statewall::sim {

// The record, fields and writer are shared with statewalld (statewall/flowlog/flow_log.hpp).
using flowlog::actionAtSide;
using flowlog::FlowAction;
using flowlog::flowActionName;
using flowlog::FlowDirection;
using flowlog::flowDirectionName;
using flowlog::FlowLogField;
using flowlog::flowLogFieldName;
using flowlog::FlowLogFormat;
using flowlog::FlowLogRecord;
using flowlog::FlowLogWriter;
using flowlog::kFlowLogFieldCount;
using flowlog::kFlowTcpFin;
using flowlog::kFlowTcpRst;
using flowlog::kFlowTcpSyn;
using flowlog::kFlowTcpSynAck;
using flowlog::LogStatus;
using flowlog::parseFlowLogField;

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
