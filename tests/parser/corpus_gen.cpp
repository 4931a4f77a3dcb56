// Writes the fuzz_parser seed corpus: parser_corpus_gen DIR. Each file is one byte of link type
// (LinkType order; bit 7 set: parse with decapsulation) followed by a builder-made frame; the name
// says how it must parse (see corpus_test.cpp). Rerun after changing the builder and commit the
// result.
#include <cstdio>
#include <fstream>
#include <string>

#include "statewall/dataplane/packet_builder.hpp"

using namespace statewall::dataplane;  // NOLINT: a small tool

namespace {

std::string g_dir;
int g_count = 0;

void write(const std::string& name, LinkType link, const Bytes& frame, bool decap = false) {
  std::ofstream out(g_dir + "/" + name, std::ios::binary | std::ios::trunc);
  const char link_byte = static_cast<char>(static_cast<unsigned>(link) | (decap ? 0x80u : 0u));
  out.write(&link_byte, 1);
  out.write(reinterpret_cast<const char*>(frame.data()),
            static_cast<std::streamsize>(frame.size()));
  ++g_count;
}

void ok(const std::string& name, const Bytes& frame, const FrameOptions& opts = {}) {
  write("ok__" + name, opts.link, frame);
}

void bad(Layer layer, const std::string& name, const Bytes& frame, LinkType link) {
  write("bad__" + std::string(layerName(layer)) + "__" + name, link, frame);
}

// Seeds parsed with decapsulation (docs/design.md "Encapsulation and tunnels").
void okDecap(const std::string& name, const Bytes& frame, LinkType link = LinkType::kEthernet) {
  write("ok__decap-" + name, link, frame, true);
}

void badDecap(Layer layer, const std::string& name, const Bytes& frame) {
  write("bad__" + std::string(layerName(layer)) + "__decap-" + name, LinkType::kEthernet, frame,
        true);
}

Bytes udpTo(uint16_t port, const Bytes& payload) {
  return buildUdp({.sport = port, .dport = port, .payload = payload});
}

Bytes greWith(const Bytes& payload) {
  return buildOtherProto({.proto = kIpProtoGre, .payload_len = payload.size(), .payload = payload});
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  g_dir = argv[1];
  const IpAddr a4 = ipAddr("192.0.2.10");
  const IpAddr b4 = ipAddr("198.51.100.20");
  const IpAddr a6 = ipAddr("2001:db8::10");
  const IpAddr b6 = ipAddr("2001:db8::20");
  const auto ts = std::pair<uint32_t, uint32_t>{1000, 0};

  // Every link type with TCP carrying every option.
  const TcpSpec syn4{.src = a4,
                     .dst = b4,
                     .dport = 443,
                     .flags = kSyn,
                     .mss = 1460,
                     .wscale = 7,
                     .sack_permitted = true,
                     .ts = ts};
  const TcpSpec syn6{.src = a6,
                     .dst = b6,
                     .dport = 22,
                     .flags = kSyn,
                     .mss = 1440,
                     .wscale = 9,
                     .sack_permitted = true,
                     .ts = ts};
  for (auto [name, opts] : std::initializer_list<std::pair<const char*, FrameOptions>>{
           {"eth", {}},
           {"raw", {.link = LinkType::kRawIp}},
           {"sll", {.link = LinkType::kLinuxSll}},
           {"sll2", {.link = LinkType::kLinuxSll2}},
           {"null", {.link = LinkType::kNull}},
           {"loop", {.link = LinkType::kLoop}},
           {"ppp", {.link = LinkType::kPpp}},
           {"ppp-hdlc", {.link = LinkType::kPppHdlc}},
           {"vlan", {.vlans = {{.vid = 100}}}},
           {"qinq", {.vlans = {{.vid = 10, .tpid = kEtherTypeQinQ}, {.vid = 20}}}},
           {"vlan3", {.vlans = {{.vid = 1, .tpid = kEtherTypeQinQ}, {.vid = 2}, {.vid = 3}}}},
           {"mpls2",
            {.shims = {{.kind = Shim::Kind::kMpls, .value = 16},
                       {.kind = Shim::Kind::kMpls, .value = 17}}}},
           {"mpls-pw",
            {.shims = {{.kind = Shim::Kind::kMpls, .value = 18},
                       {.kind = Shim::Kind::kEthernetPw},
                       {.kind = Shim::Kind::kVlan, .value = 5}}}},
           {"pppoe", {.shims = {{.kind = Shim::Kind::kPppoe, .value = 7}}}},
           {"pbb", {.shims = {{.kind = Shim::Kind::kPbb, .value = 0x10203}}}},
           {"vntag", {.shims = {{.kind = Shim::Kind::kVnTag, .value = 0x80000001}}}},
           {"fabricpath", {.shims = {{.kind = Shim::Kind::kFabricPath, .value = 1}}}},
           {"fabricpath-vlan",
            {.shims = {{.kind = Shim::Kind::kFabricPath, .value = 2},
                       {.kind = Shim::Kind::kVlan, .value = 12}}}},
           {"cmd", {.shims = {{.kind = Shim::Kind::kCmd, .value = 42}}}}}) {
    ok(std::string(name) + "-tcp4-syn", buildTcp(syn4, opts), opts);
    ok(std::string(name) + "-tcp6-syn", buildTcp(syn6, opts), opts);
  }
  // A tag naming type 0xffff as the frame ends (the layer-2.5 walk once read past it).
  ok("eth-vlan-type-ffff", Bytes{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x81, 0, 0, 5, 0xff, 0xff});
  ok("eth-tcp4-sack-data",
     buildTcp({.src = a4, .dst = b4, .sack = {{100, 200}, {300, 400}}, .payload_len = 20}));
  ok("eth-udp4", buildUdp({.src = a4, .dst = b4, .payload_len = 12}, {.trailer_len = 10}));
  ok("sll2-udp6",
     buildUdp({.src = a6, .dst = b6, .payload_len = 5}, {.link = LinkType::kLinuxSll2}),
     {.link = LinkType::kLinuxSll2});
  ok("eth-icmp4-echo", buildIcmpEcho({.src = a4, .dst = b4, .payload_len = 8}));
  // The packet inside a Gateway Load Balancer's GENEVE: the parser's raw IP fast path.
  ok("raw-tcp4-ack-ts",
     buildTcp({.src = a4, .dst = b4, .dport = 443, .flags = kAck, .ts = ts, .payload_len = 20},
              rawIp()),
     rawIp());
  ok("raw-icmp6-echo-reply",
     buildIcmpEcho({.src = a6, .dst = b6, .reply = true, .payload_len = 8}, rawIp()), rawIp());
  ok("eth-arp", buildArp({.sender_ip = a4, .target_ip = b4}));
  ok("eth-lldp-other", buildEthertype(0x88cc, Bytes(20, 2)));
  ok("eth-gre4-other-proto", buildOtherProto({.src = a4, .dst = b4}));
  ok("eth-ipv4-options-tcp", buildTcp(syn4, {.ipv4_options = {0x94, 4, 0, 0, 1, 1, 1, 0}}));
  const FrameOptions chain{.ipv6_ext = {{.type = kIpv6HopByHop, .body = {5, 2, 0, 0}},
                                        {.type = kIpv6Routing, .body = {4, 0}},
                                        {.type = kIpProtoAh},
                                        {.type = kIpv6DestOpts}}};
  ok("eth-ipv6-ext-chain-udp", buildUdp({.src = a6, .dst = b6}, chain));
  FrameOptions raw_chain = chain;
  raw_chain.link = LinkType::kRawIp;
  ok("eth-ipv6-atomic-fragment",
     buildUdp({.src = a6, .dst = b6},
              {.ipv6_ext = {{.type = kIpv6Fragment, .body = {0, 0, 0, 0, 0, 9}}}}));
  ok("eth-esp6", buildOtherProto({.src = a6, .dst = b6, .proto = kIpProtoEsp, .payload_len = 16}));
  const auto frags4 = fragment(buildUdp({.src = a4, .dst = b4, .payload_len = 100}), 60);
  ok("eth-frag4-first", frags4.front());
  ok("eth-frag4-last", frags4.back());
  const auto frags6 = fragment(buildTcp({.src = a6, .dst = b6, .payload_len = 100}), 96);
  ok("eth-frag6-first", frags6.front());
  ok("eth-frag6-last", frags6.back());
  ok("eth-icmp4-unreach-tcp", buildIcmpError({.src = b4, .dst = a4}, buildTcp(syn4, rawIp()), {}));
  ok("eth-icmp4-ttl-echo",
     buildIcmpError({.src = b4, .dst = a4, .type = kIcmpTimeExceeded, .code = 0, .max_quote = 28},
                    buildIcmpEcho({.src = a4, .dst = b4}, rawIp())));
  ok("eth-icmp6-ptb-udp",
     buildIcmpError({.src = b6, .dst = a6, .type = kIcmpv6PacketTooBig, .code = 0, .rest = 1280},
                    buildUdp({.src = a6, .dst = b6, .payload_len = 30}, raw_chain)));
  ok("eth-nd-ns", buildNd({.link_addr = MacAddr{2, 0, 0, 0, 0, 1}}));
  ok("eth-nd-ra", buildNd({.type = kIcmpv6RouterAdvert}));

  // Malformed ones, one or more per layer.
  bad(Layer::kLink, "eth-short", Bytes(10, 0xff), LinkType::kEthernet);
  bad(Layer::kLink, "raw-version-9", Bytes(30, 0x90), LinkType::kRawIp);
  bad(Layer::kSll, "sll2-short", Bytes(12, 0), LinkType::kLinuxSll2);
  Bytes vlan_cut = buildUdp({}, {.vlans = {{.vid = 1, .tpid = kEtherTypeQinQ}, {.vid = 2}}});
  vlan_cut.resize(20);
  bad(Layer::kVlan, "second-tag-cut", vlan_cut, LinkType::kEthernet);
  Bytes mpls_cut = buildUdp({}, {.shims = {{.kind = Shim::Kind::kMpls, .value = 1}}});
  mpls_cut.resize(17);
  bad(Layer::kMpls, "label-cut", mpls_cut, LinkType::kEthernet);
  Bytes pppoe_long = buildUdp({}, {.shims = {{.kind = Shim::Kind::kPppoe, .value = 1}}});
  pppoe_long[18] = 0x40;  // payload length past the frame
  bad(Layer::kPppoe, "length-past-frame", pppoe_long, LinkType::kEthernet);
  bad(Layer::kLink, "null-short", Bytes(3, 2), LinkType::kNull);
  Bytes ihl4 = buildTcp({});
  ihl4[14] = 0x44;
  bad(Layer::kIpv4, "ihl-4", ihl4, LinkType::kEthernet);
  Bytes cut4 = buildTcp({.payload_len = 40});
  cut4.resize(60);
  bad(Layer::kIpv4, "snaplen-cut", cut4, LinkType::kEthernet);
  bad(Layer::kIpv4Options, "option-len-1", buildTcp({}, {.ipv4_options = {7, 1, 0, 0}}),
      LinkType::kEthernet);
  Bytes v6len = buildUdp({.src = a6, .dst = b6});
  v6len[14 + 5] += 1;
  bad(Layer::kIpv6, "payload-length", v6len, LinkType::kEthernet);
  FrameOptions nine;
  for (int i = 0; i < 9; ++i)
    nine.ipv6_ext.push_back({.type = kIpv6DestOpts});
  bad(Layer::kIpv6Ext, "nine-headers", buildUdp({.src = a6, .dst = b6}, nine), LinkType::kEthernet);
  Bytes tiny = addLinkHeader(buildIpPacket(a4, b4, kIpProtoTcp, Bytes(8, 0)), kEtherTypeIpv4);
  tiny[14 + 6] = 0x20;  // MF
  bad(Layer::kFragment, "tiny-tcp-first-fragment", tiny, LinkType::kEthernet);
  Bytes doff = buildTcp({});
  doff[14 + 20 + 12] = 0xf0;
  bad(Layer::kTcp, "data-offset-past-segment", doff, LinkType::kEthernet);
  bad(Layer::kTcpOptions, "mss-length-3", buildTcp({.raw_options = {2, 3, 1, 0}}),
      LinkType::kEthernet);
  Bytes ulen = buildUdp({});
  ulen[14 + 20 + 5] = 9;
  bad(Layer::kUdp, "length-past-payload", ulen, LinkType::kEthernet);
  bad(Layer::kIcmp, "seven-bytes",
      addLinkHeader(buildIpPacket(a4, b4, kIpProtoIcmp, Bytes(7, 0)), kEtherTypeIpv4),
      LinkType::kEthernet);
  bad(Layer::kIcmpv6, "five-bytes",
      addLinkHeader(buildIpPacket(a6, b6, kIpProtoIcmpv6, Bytes(5, 0)), kEtherTypeIpv6),
      LinkType::kEthernet);
  bad(Layer::kIcmpQuoted, "quote-19-bytes",
      buildIcmpError({.src = b4, .dst = a4, .max_quote = 19}, buildTcp({}, rawIp())),
      LinkType::kEthernet);
  bad(Layer::kPpp, "ppp-hdlc-bad-address", Bytes{0x12, 0x03, 0x00, 0x21, 0x45}, LinkType::kPppHdlc);
  bad(Layer::kPpp, "ppp-short", Bytes{0x00}, LinkType::kPpp);
  bad(Layer::kFabricPath, "header-cut",
      Bytes{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x89, 0x03, 0, 0x7f, 2, 0, 0, 0, 0, 2, 2, 0},
      LinkType::kEthernet);
  bad(Layer::kCmd, "header-cut", Bytes{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x89, 0x09, 1, 1, 0, 1},
      LinkType::kEthernet);
  bad(Layer::kCmd, "version-2",
      Bytes{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x89, 0x09, 2, 1, 0, 1, 0, 42, 0x08, 0x00, 0x45},
      LinkType::kEthernet);

  // Tunnels, parsed with decapsulation: each kind around TCP over IPv4 and IPv6.
  using Kind = EncapHeader::Kind;
  const IpAddr o6a = ipAddr("2001:db8:ffff::1");
  const IpAddr o6b = ipAddr("2001:db8:ffff::2");
  for (const auto& [name, t] : std::initializer_list<std::pair<const char*, TunnelSpec>>{
           {"vxlan", {.kind = Kind::kVxlan, .value = 42}},
           {"geneve-options", {.kind = Kind::kGeneve, .value = 7, .geneve_options = Bytes(8, 1)}},
           {"gtp-u-ext",
            {.kind = Kind::kGtpU,
            .value = 0x1234,
            .gtp_sequence = true,
            .gtp_extensions = {Bytes{0, 1}}}},
           {"ayiya", {.kind = Kind::kAyiya}},
           {"gre-key-csum-seq",
            {.kind = Kind::kGre, .value = 5, .aux = 1, .gre_checksum = true, .gre_sequence = true}},
           {"gre-ethernet", {.kind = Kind::kGre, .ethernet = true}},
           {"gre-udp", {.kind = Kind::kGre, .dport = 4754}},
           {"erspan-1", {.kind = Kind::kErspan, .aux = 1}},
           {"erspan-2", {.kind = Kind::kErspan, .value = 3, .aux = 2}},
           {"erspan-3", {.kind = Kind::kErspan, .value = 3, .aux = 3}},
           {"ip-in-ip", {.kind = Kind::kIpIp}},
           {"ip-in-ip6", {.kind = Kind::kIpIp, .outer_src = o6a, .outer_dst = o6b}},
           {"aruba", {.kind = Kind::kAruba}},
           {"aruba-qos-4addr",
            {.kind = Kind::kAruba,
            .value = 0x8210,
            .wlan_qos = true,
            .wlan_four_address = true}}}) {
    okDecap(std::string(name) + "-tcp4", buildTcp(syn4, {.tunnels = {t}}));
    okDecap(std::string(name) + "-tcp6", buildTcp(syn6, {.tunnels = {t}}));
  }
  okDecap(
      "teredo-auth-origin-tcp6",
      buildTcp(syn6,
               {.tunnels = {{.kind = Kind::kTeredo, .teredo_auth = true, .teredo_origin = true}}}));
  TunnelSpec vx_vlan{.kind = Kind::kVxlan, .value = 1};
  vx_vlan.inner_shims = {{.kind = Shim::Kind::kVlan, .value = 7}};
  okDecap("vlan-vxlan-vlan-udp4",
          buildUdp({.src = a4, .dst = b4}, {.vlans = {{.vid = 100}}, .tunnels = {vx_vlan}}));
  okDecap("nested-4-tcp4", buildTcp(syn4, {.tunnels = {{.kind = Kind::kGeneve},
                                                       {.kind = Kind::kIpIp},
                                                       {.kind = Kind::kGre},
                                                       {.kind = Kind::kVxlan}}}));
  okDecap("ppp-gre-tcp4",
          buildTcp(syn4, {.link = LinkType::kPpp, .tunnels = {{.kind = Kind::kGre}}}),
          LinkType::kPpp);
  okDecap("teredo-not-teredo-udp", udpTo(3544, Bytes{0x12, 0x34, 1, 0, 0, 1}));

  badDecap(Layer::kVxlan, "short", udpTo(4789, {0x08, 0, 0, 0}));
  badDecap(Layer::kGeneve, "options-past", udpTo(6081, {0x3f, 0, 0x65, 0x58, 0, 0, 1, 0}));
  badDecap(Layer::kGtpU, "length-past", udpTo(2152, {0x30, 0xff, 0x10, 0, 0, 0, 0, 1, 0x45}));
  badDecap(Layer::kGtpU, "ext-zero",
           udpTo(2152, {0x34, 0xff, 0, 8, 0, 0, 0, 1, 0, 1, 0, 0x85, 0, 0, 0, 0}));
  badDecap(Layer::kTeredo, "auth-past", udpTo(3544, {0x00, 0x01, 200, 0, 0x60}));
  badDecap(Layer::kAyiya, "identity-past", udpTo(5072, {0xf1, 0x52, 0x21, 4, 0, 0, 0, 0, 1}));
  badDecap(Layer::kGre, "key-past", greWith({0x20, 0x00, 0x08, 0x00, 0, 0}));
  badDecap(Layer::kGre, "udp-key-past", udpTo(4754, {0x20, 0x00, 0x08, 0x00, 0, 0}));
  badDecap(Layer::kErspan, "type-2-short", greWith({0x10, 0x00, 0x88, 0xbe, 0, 0, 0, 1, 0x10}));
  badDecap(Layer::kErspan, "type-3-short",
           greWith({0x10, 0x00, 0x22, 0xeb, 0, 0, 0, 1, 0x20, 0, 0, 3}));
  badDecap(Layer::kWlan, "aruba-header-short",
           greWith({0x00, 0x00, 0x82, 0x00, 0x08, 0x02, 0, 0, 2, 0, 0, 0, 0x11, 0}));
  badDecap(Layer::kWlan, "aruba-4addr-past",
           greWith({0x00, 0x00, 0x82, 0x10, 0x08, 0x03, 0, 0, 2, 0,    0, 0, 0x11, 0,    2,
                    0,    0,    0,    0x11, 1,    2,    0, 0, 0, 0x11, 2, 0, 0,    0xaa, 0xaa}));
  badDecap(Layer::kWlan, "aruba-llc-short",
           greWith({0x00, 0x00, 0x82, 0x00, 0x08, 0x02, 0, 0, 2,    0, 0, 0, 0x11, 0,    2,   0,
                    0,    0,    0x11, 1,    2,    0,    0, 0, 0x11, 2, 0, 0, 0xaa, 0xaa, 0x03}));
  badDecap(Layer::kTunnelDepth, "ip-in-ip-x6",
           buildTcp(syn4, {.tunnels = std::vector<TunnelSpec>(6, {.kind = Kind::kIpIp})}));
  badDecap(Layer::kTunnelDepth, "vxlan-x5",
           buildTcp(syn4, {.tunnels = std::vector<TunnelSpec>(5, {.kind = Kind::kVxlan})}));
  std::printf("wrote %d seeds to %s\n", g_count, g_dir.c_str());
  return 0;
}
