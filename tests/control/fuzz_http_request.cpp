// libFuzzer target: arbitrary bytes as one HTTP request to the control API, through the same
// parser limits, authentication and router as the server, without sockets. The first byte
// chooses whether the request must carry a bearer token.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string_view>

#include "statewall/control/api.hpp"
#include "statewall/control/http.hpp"
#include "statewall/dataplane/engine.hpp"
#include "statewall/rules/compiled.hpp"
#include "statewall/rules/loader.hpp"

namespace {

using namespace statewall;

constexpr std::string_view kPolicy = R"(version: 1
groups:
  web:
    inbound:
      - {proto: tcp, ports: 443, from: 10.9.0.0/16}
      - {proto: udp, ports: 53, from: 0.0.0.0/0}
interfaces:
  web-1: {addresses: [10.0.1.10], groups: [web]}
)";

constexpr std::string_view kToken = "fuzz-token-0123456789";

struct Fixture {
  std::unique_ptr<dataplane::Engine> engine;
  std::unique_ptr<control::ControlApi> api;

  Fixture() {
    rules::LoadResult lr = rules::loadPolicyTexts({{"fuzz.yaml", std::string(kPolicy)}});
    if (!lr.ok()) std::abort();
    rules::CompileResult cr = rules::compile(*lr.policy);
    if (!cr.policy) std::abort();
    dataplane::EngineConfig config;
    config.table_capacity = 1024;
    config.fragment_capacity = 16;
    engine = std::make_unique<dataplane::Engine>(config, cr.policy);
    control::HostHooks hooks;
    hooks.now_ns = [] { return uint64_t{1'000'000'000}; };
    hooks.lcore_rates = [] { return std::vector<control::LcoreRate>{{0, 1.0, 2.0}}; };
    api = std::make_unique<control::ControlApi>(*engine, hooks);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Fixture f;
  if (size == 0) return 0;
  control::HttpLimits limits;
  limits.max_header_bytes = 4096;
  limits.max_body_bytes = 64 * 1024;
  std::string_view token = (data[0] & 1) ? kToken : std::string_view();
  std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::string out = control::handleRawRequest(*f.api, bytes, limits, token);
  // Every complete request gets a status line and a JSON or text body.
  if (!out.empty() && out.rfind("HTTP/1.", 0) != 0) std::abort();
  return 0;
}
