// parsePacket() throughput on frames already in memory (L1/L2 resident), one core.
//   build/release/bench/statewall_bench_parser --benchmark_repetitions=10
//       --benchmark_report_aggregates_only=true
// items_per_second is packets parsed per second.
#include <benchmark/benchmark.h>

#include <vector>

#include "statewall/dataplane/packet.hpp"
#include "statewall/dataplane/packet_builder.hpp"

namespace statewall::dataplane {
namespace {

struct Frames {
  std::vector<Bytes> frames;
  LinkType link = LinkType::kEthernet;
};

// 1024 frames of one kind with varying addresses and ports, Ethernet padded to 60 bytes (64 with
// the FCS a capture does not keep) where shorter.
template <typename Make>
Frames makeFrames(Make make) {
  Frames f;
  for (uint32_t i = 0; i < 1024; ++i) {
    Bytes b = make(i);
    if (b.size() < 60) b.resize(60, 0);
    f.frames.push_back(std::move(b));
  }
  return f;
}

IpAddr v4(uint32_t i) {
  return IpAddr::v4(0x0a000000u + i);
}
IpAddr v6(uint32_t i) {
  return IpAddr::v6(0x20010db800000000ull, i);
}

void runParse(benchmark::State& state, const Frames& f) {
  ParsedPacket p;
  size_t i = 0;
  const size_t n = f.frames.size();
  for (auto _ : state) {
    // A burst of 32, as the engine sees them.
    for (int k = 0; k < 32; ++k) {
      const Bytes& b = f.frames[i];
      benchmark::DoNotOptimize(parsePacket(b.data(), static_cast<uint32_t>(b.size()), f.link, &p));
      benchmark::DoNotOptimize(p);
      i = (i + 1) & (n - 1);
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * 32);
}

void BM_ParseTcp4Ack(benchmark::State& state) {
  static const Frames f = makeFrames([](uint32_t i) {
    return buildTcp({.src = v4(i),
                     .dst = v4(i + 7),
                     .sport = static_cast<uint16_t>(1024 + i),
                     .dport = 443,
                     .seq = i,
                     .ack = i * 3});
  });
  runParse(state, f);
}

void BM_ParseTcp4Timestamps(benchmark::State& state) {
  static const Frames f = makeFrames([](uint32_t i) {
    return buildTcp({.src = v4(i),
                     .dst = v4(i + 7),
                     .sport = static_cast<uint16_t>(1024 + i),
                     .ts = std::pair<uint32_t, uint32_t>{i, i + 1}});
  });
  runParse(state, f);
}

void BM_ParseTcp4Syn(benchmark::State& state) {
  static const Frames f = makeFrames([](uint32_t i) {
    return buildTcp({.src = v4(i),
                     .dst = v4(i + 7),
                     .sport = static_cast<uint16_t>(1024 + i),
                     .flags = kSyn,
                     .mss = 1460,
                     .wscale = 7,
                     .sack_permitted = true,
                     .ts = std::pair<uint32_t, uint32_t>{i, 0}});
  });
  runParse(state, f);
}

void BM_ParseUdp4(benchmark::State& state) {
  static const Frames f = makeFrames([](uint32_t i) {
    return buildUdp({.src = v4(i),
                     .dst = v4(i + 7),
                     .sport = static_cast<uint16_t>(1024 + i),
                     .payload_len = 18});
  });
  runParse(state, f);
}

void BM_ParseTcp6Ack(benchmark::State& state) {
  static const Frames f = makeFrames([](uint32_t i) {
    return buildTcp({.src = v6(i), .dst = v6(i + 7), .sport = static_cast<uint16_t>(1024 + i)});
  });
  runParse(state, f);
}

void BM_ParseVlanTcp4(benchmark::State& state) {
  static const Frames f = makeFrames([](uint32_t i) {
    return buildTcp({.src = v4(i), .dst = v4(i + 7), .sport = static_cast<uint16_t>(1024 + i)},
                    {.vlans = {{.vid = static_cast<uint16_t>(i & 0xfff)}}});
  });
  runParse(state, f);
}

void BM_ParseIcmp4Error(benchmark::State& state) {
  static const Frames f = makeFrames([](uint32_t i) {
    return buildIcmpError({.src = v4(i + 7), .dst = v4(i), .max_quote = 28},
                          buildUdp({.src = v4(i), .dst = v4(i + 7)}, rawIp()));
  });
  runParse(state, f);
}

// A mix in unpredictable order: TCP v4/v6, UDP, ICMP echo, VLAN.
void BM_ParseMix(benchmark::State& state) {
  static const Frames f = makeFrames([](uint32_t i) {
    const uint32_t h = (i * 2654435761u) >> 29;  // 0..7, scrambled
    const auto port = static_cast<uint16_t>(1024 + i);
    switch (h) {
      case 0:
      case 1:
      case 2:
        return buildTcp({.src = v4(i), .dst = v4(i + 7), .sport = port});
      case 3:
        return buildTcp({.src = v6(i), .dst = v6(i + 7), .sport = port});
      case 4:
        return buildUdp({.src = v4(i), .dst = v4(i + 7), .sport = port});
      case 5:
        return buildIcmpEcho({.src = v4(i), .dst = v4(i + 7)});
      case 6:
        return buildTcp({.src = v4(i),
                         .dst = v4(i + 7),
                         .sport = port,
                         .ts = std::pair<uint32_t, uint32_t>{i, i}});
      default:
        return buildUdp({.src = v4(i), .dst = v4(i + 7), .sport = port}, {.vlans = {{.vid = 9}}});
    }
  });
  runParse(state, f);
}

BENCHMARK(BM_ParseTcp4Ack);
BENCHMARK(BM_ParseTcp4Timestamps);
BENCHMARK(BM_ParseTcp4Syn);
BENCHMARK(BM_ParseUdp4);
BENCHMARK(BM_ParseTcp6Ack);
BENCHMARK(BM_ParseVlanTcp4);
BENCHMARK(BM_ParseIcmp4Error);
BENCHMARK(BM_ParseMix);

}  // namespace
}  // namespace statewall::dataplane

BENCHMARK_MAIN();
