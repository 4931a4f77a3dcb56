// The control-plane API of statewall, independent of sockets: requests in, JSON (or Prometheus
// text) out. ControlServer feeds it requests from its listeners; tests and the fuzzer call it
// directly.
//
// Endpoints (all JSON unless noted; errors are 4xx/5xx with {"error": ..., "detail": ...}):
//   PUT  /v1/policy            load a policy (YAML or AWS JSON body, or a bundle of several
//                              documents, see kBundleContentType), validate and compile it here,
//                              then publish it with one atomic swap. A bad policy is rejected
//                              (400, with diagnostics) and the running one stays.
//   GET  /v1/policy            the running policy: version, load time, rules, sources if known
//   POST /v1/policy/check      validate and compile without publishing
//   GET  /v1/connections       tracked connections, filtered and paged (see README)
//   DELETE /v1/connections     remove the matching connections (filters required, or all=true)
//   GET  /v1/stats             counters by reason, rule hits, table fill, rates
//   GET  /metrics              the same in Prometheus text format
//   PUT  /v1/timeouts          change idle timeouts: republishes the running policy with them
//   GET  /v1/drops             recent denied packets after ?after=SEQ (poll with next_after);
//                              with follow=1 a held stream of JSON lines (ControlServer)
//   GET  /v1/health            200 {"status": "ok"} while the host says it forwards, else 503
//   GET  /v1/version           version, commit, build type (and the host's DPDK version)
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "statewall/rules/loader.hpp"

namespace statewall::dataplane {
class Engine;
}

namespace statewall::control {

// Content type of a request body holding several policy documents at once:
//   {"documents": [{"name": "groups.yaml", "text": "..."}, ...]}
// Any other content type means the body is one document (YAML or AWS JSON, detected from its
// content) named by the `name` query parameter (default "policy").
inline constexpr std::string_view kBundleContentType = "application/vnd.statewall.bundle+json";

struct ApiRequest {
  std::string method;  // "GET", "PUT", ...
  std::string target;  // origin-form: path and optional query, e.g. "/v1/connections?proto=tcp"
  std::string content_type;
  std::string body;
};

struct ApiResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::string allow;  // 405 only: the methods the path accepts, e.g. "GET, PUT"
  // GET /v1/drops?follow=1 (status 200): the transport holds the connection and sends the drop
  // log after this cursor as JSON lines (ControlApi::dropLines()) as drops happen; `body` is
  // empty. Without a held connection (handleRawRequest) the lines available now are the body.
  std::optional<uint64_t> drops_stream_after;
};

// Packet rate of one packet-processing thread (a DPDK lcore, or the replay thread).
struct LcoreRate {
  unsigned lcore = 0;
  double packets_per_second = 0;
  double bytes_per_second = 0;
};

// What the host (statewalld, statewall replay) tells the control plane. Every member is optional.
// The callbacks run on a control thread, concurrently with packet processing.
// One port of the host (statewalld): its device counters (rte_eth_stats).
struct PortIo {
  std::string role;  // "inside" / "outside"
  std::string name;  // device name
  uint64_t rx_packets = 0, rx_bytes = 0, tx_packets = 0, tx_bytes = 0;
  uint64_t rx_missed = 0;  // imissed: dropped by the device, no free rx descriptor
  uint64_t rx_errors = 0, tx_errors = 0;
  uint64_t rx_nombuf = 0;  // rx descriptors the device could not refill: the mbuf pool ran dry
};

// The host's I/O side, for /metrics and GET /v1/stats. statewalld has it; a replay does not.
struct HostIo {
  std::vector<PortIo> ports;
  uint64_t tx_dropped = 0;    // allowed, but the other port's tx queue stayed full
  uint64_t oversize = 0;      // frames the appliance could not judge as a whole (too long)
  size_t mbufs_capacity = 0;  // the mbuf pool
  size_t mbufs_in_use = 0;    // in rings, lcores' hands and per-lcore caches
  // --flow-log (statewalld): records written, and dropped for a full lcore ring.
  bool flow_log = false;
  uint64_t flow_log_records = 0, flow_log_dropped = 0;
  // statewalld --gwlb (one port, GENEVE in and out): its frames by kind.
  bool gwlb = false;
  uint64_t gwlb_geneve = 0;      // GENEVE to the appliance, judged on the inner packet
  uint64_t gwlb_returned = 0;    // of those, allowed and sent back to the load balancer
  uint64_t gwlb_malformed = 0;   // UDP 6081 to the appliance that is not well-formed GENEVE
  uint64_t gwlb_not_geneve = 0;  // other frames, dropped (other addresses; without the exception
                                 // path also ARP, ICMP and health checks to the appliance)
  // The exception path (--exception-tap): frames given to the kernel, the kernel's frames sent
  // out of the port, and frames either way lost to a full ring or queue.
  uint64_t gwlb_to_kernel = 0, gwlb_from_kernel = 0, gwlb_kernel_dropped = 0;
};

// One denied packet from the host's drop log (statewalld's lcores record them, rate-limited),
// for GET /v1/drops.
struct DropEvent {
  uint64_t seq = 0;             // the host's running number, from 1
  uint64_t time_ns = 0;         // the engine's clock when it was judged
  uint64_t policy_version = 0;  // the policy that judged it (rule and ACL ids are its)
  bool ip = false;
  rules::IpAddr src{}, dst{};
  uint16_t sport = 0, dport = 0;  // TCP/UDP ports; ICMP type and code
  uint8_t proto = 0;
  std::string port;                                        // received on: "inside" / "outside"
  uint8_t reason = 0;                                      // dataplane::Reason
  rules::Direction deny_dir = rules::Direction::kInbound;  // deny-sg
  uint32_t deny_iface = 0xFFFF;                            // deny-sg: rules::IfaceId
  uint32_t acl_entry = 0xFFFFFFFF;                         // deny-acl: rules::AclEntryId
  std::string why;                                         // malformed, invalid: the detail
};

// The drop log after a cursor.
struct DropsPage {
  std::vector<DropEvent> drops;  // seq > after, oldest first
  uint64_t unlogged = 0;         // denied packets never logged (rate limit, full rings)
  uint64_t overwritten = 0;      // logged but pushed out of the log before being read
};

// The host's answer to GET /v1/health: ok, or what is wrong.
struct HostHealth {
  bool ok = true;
  std::string detail;
};

struct HostHooks {
  // The engine's clock (the now_ns the host passes to Engine::process(): monotonic time, or trace
  // time in a replay). Used to report how long a connection has left. Default: CLOCK_MONOTONIC.
  std::function<uint64_t()> now_ns;
  // Per-lcore packet rates, measured by the host. Without it the stats list no lcores.
  std::function<std::vector<LcoreRate>()> lcore_rates;
  // Called after the API published a new policy (a load or a timeout change).
  std::function<void(uint64_t version)> on_publish;
  // Wraps each publication the API makes: called with a function that swaps the engine's policy,
  // which it must call exactly once before returning. A host that must know which policy judged
  // each burst (statewall replay) runs it between two of its bursts. Default: called directly.
  std::function<void(const std::function<void()>& publish)> publish_guard;
  // The host's I/O counters (ports, mbufs). Without it /metrics has no port series.
  std::function<HostIo()> io;
  // The drop log: events with seq > after, at most `limit`. Without it GET /v1/drops is 404.
  std::function<DropsPage(uint64_t after, size_t limit)> drops;
  // Whether the host forwards (e.g. every forwarding lcore makes progress). Without it
  // GET /v1/health says ok while the API answers.
  std::function<HostHealth()> health;
};

struct ApiOptions {
  size_t default_page_size = 100;  // GET /v1/connections without limit=
  size_t max_page_size = 10000;
  // The documents the running policy was loaded from, when the host loaded it from files; they
  // are returned by GET /v1/policy until the next load.
  std::vector<rules::SourceText> initial_sources;
  // The host's DPDK version (rte_version()), for GET /v1/version and statewall_build_info; empty
  // in hosts without DPDK.
  std::string dpdk_version;
  // Said ("warning" in the response) after each change made through the API (PUT /v1/policy,
  // PUT /v1/timeouts), e.g. that it is not kept across a restart. Empty: nothing said.
  std::string runtime_change_warning;
};

// Thread safety: handle() and sampleRates() may be called from any number of threads at once.
// Policy changes (PUT /v1/policy, PUT /v1/timeouts) are serialized among themselves; reads never
// wait for them. Nothing here runs on, or blocks, a packet thread.
class ControlApi {
 public:
  ControlApi(dataplane::Engine& engine, HostHooks hooks = {}, ApiOptions options = {});
  ~ControlApi();
  ControlApi(const ControlApi&) = delete;
  ControlApi& operator=(const ControlApi&) = delete;

  ApiResponse handle(const ApiRequest& request);

  // Takes a counter sample; the rates in /v1/stats are the difference between the last two
  // samples. ControlServer calls it once a second.
  void sampleRates(std::chrono::steady_clock::time_point now);

  dataplane::Engine& engine() { return engine_; }

  // The drop log after *after as JSON lines (each the object GET /v1/drops lists, and a line
  // {"skipped": N} where events after the cursor were pushed out of the log before being read),
  // at most `max` events; *after moves past them. Empty when there is nothing new (or the host
  // keeps no drop log). Any thread.
  std::string dropLines(uint64_t* after, size_t max);

  struct State;  // opaque: defined in api.cpp

 private:
  dataplane::Engine& engine_;
  std::unique_ptr<State> state_;
};

// True for the requests that compile a policy (PUT /v1/policy, POST /v1/policy/check,
// PUT /v1/timeouts): they may take seconds, so ControlServer runs them off its io threads.
bool compilesPolicy(std::string_view method, std::string_view target);

// One JSON error body: {"error": error, "detail": detail}.
std::string errorBody(std::string_view error, std::string_view detail);

}  // namespace statewall::control
