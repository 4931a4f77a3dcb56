// The replay's outputs as observers of its driver (sim/src/replay.cpp): the driver reads traces,
// assembles bursts, keeps the clock, paces, takes policy changes and runs the engine; each output
// (the summary's tallies and top denied flows, the --allowed/--denied captures, the stateless
// comparison, --verdicts, the connection log, the expectations) subscribes to what it needs.
//
// Observers get a whole burst per call, so the driver pays one virtual call per output and burst,
// never per packet. They run on the replay thread, in the order they were added (an output may
// read what an earlier one wrote into the burst: the verdict log reads the stateless reasons).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "describe.hpp"
#include "statewall/dataplane/engine.hpp"
#include "statewall/dataplane/packet.hpp"
#include "statewall/dataplane/verdict.hpp"
#include "statewall/rules/compiled.hpp"
#include "statewall/sim/conn_log.hpp"
#include "statewall/sim/replay.hpp"

namespace statewall::sim::detail {

class ConnNumbers;

// What the driver knows of a packet besides its bytes.
struct PacketMeta {
  uint64_t index;    // 1-based position in the input
  uint64_t ts;       // capture time, ns
  uint32_t wirelen;  // length on the wire
  int dlt;           // the packet's link type as its trace names it
};

// One judged burst: parallel arrays of n packets, in input order.
struct JudgedBurst {
  unsigned n = 0;
  uint64_t clock = 0;  // the engine time the burst was judged at
  const dataplane::PacketRef* refs = nullptr;
  const PacketMeta* meta = nullptr;
  const dataplane::Verdict* verdicts = nullptr;
  // Valid for every packet when an observer asked for parsed packets (see ReplayContext), and
  // for every denied packet in any case.
  const dataplane::ParsedPacket* parsed = nullptr;
  // With --stateless: the rules-alone reason of each packet, written by the stateless comparison
  // (which runs before the outputs that read it); null otherwise.
  dataplane::Reason* stateless = nullptr;
  // With a Replay::DetailObserver: each packet's connection as the engine's facts after it
  // (Engine::process's conn_out); null otherwise.
  const dataplane::ConnectionInfo* conns = nullptr;
};

// The run as the outputs see it. The driver owns it and updates it between bursts.
struct ReplayContext {
  const ReplayOptions* options = nullptr;
  ReplaySummary* summary = nullptr;           // each output fills its part
  rules::CompiledPolicyPtr policy;            // the policy that judges the current burst
  std::shared_ptr<const PolicyTexts> texts;   // its names and texts
  const ConnNumbers* numbers = nullptr;       // connection numbers (#N) of engine ids
  const dataplane::Engine* engine = nullptr;  // null before the first run
  size_t table_capacity = 0;                  // the engine's (IPv4) table capacity
  bool nano = true;                           // timestamps with 9 decimals (else 6)
};

class ReplayObserver {
 public:
  virtual ~ReplayObserver() = default;
  // A burst was judged.
  virtual void packetsJudged(const JudgedBurst& b) = 0;
  // Connection records that ended (or, at the end of the run, that were still open), from the
  // connection log's attribution (sim/src/conn_tracker.hpp), in order of first packet.
  virtual void connectionsEnded(const ConnRecord* records, size_t n) {
    (void)records;
    (void)n;
  }
  // The run is over (the driver's last burst and the connection log's last records are in):
  // complete the summary, close files. false with *err on a write error.
  virtual bool finish(std::string* err) {
    (void)err;
    return true;
  }
};

}  // namespace statewall::sim::detail
