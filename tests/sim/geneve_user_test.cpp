// tests/tools/geneve_user.py `gwlb` against an appliance that misbehaves on purpose (root): two
// network namespaces, the load balancer in one, in the other a Python appliance that returns what
// it gets with the outer addresses swapped and, depending on the inner packet's UDP port, leaves
// it as it came (9001), flips a bit of the flow cookie (9002), changes the outer UDP source port
// (9003) or sets the GENEVE version to 1 (9004). The load balancer writes back only the first
// and counts the others as bad options, a bad port and not GENEVE; the GENEVE header it sends
// carries AWS's three options (class 0x0108: endpoint id, attachment id, flow cookie) as
// docs/deploy-gwlb.md describes them. (The fleet test relies on these checks finding nothing.)
#include <unistd.h>

#include <chrono>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "../common/netns_pair.hpp"
#include "../common/run_command.hpp"
#include "../common/wait_for.hpp"
#include "sim_test_util.hpp"

namespace statewall::sim {
namespace {

using json = nlohmann::json;

// The appliance: HTTP 200 on 8081 for the health check; GENEVE from the load balancer back to it
// (geneve_user.py's own datagram builder), altered by the inner UDP destination port. It writes
// the first GENEVE header it gets to DIR/first_header, in hex.
constexpr const char* kAppliance = R"(import http.server, os, socket, struct, sys, threading
sys.path.insert(0, os.path.dirname(sys.argv[1]))
import geneve_user
me, out = sys.argv[2], sys.argv[3]
class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
    def log_message(self, *args):
        pass
srv = http.server.HTTPServer(("0.0.0.0", 8081), Health)
threading.Thread(target=srv.serve_forever, daemon=True).start()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind((me, 6081))
tx = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
print("ready", flush=True)
n = 0
while True:
    data, (peer, sport) = u.recvfrom(65535)
    hlen = 8 + (data[0] & 0x3F) * 4
    if not os.path.exists(out):
        open(out + ".tmp", "w").write(data[:hlen].hex())
        os.replace(out + ".tmp", out)
    inner = data[hlen:]
    ihl = (inner[0] & 0x0F) * 4
    dport = struct.unpack("!H", inner[ihl + 2:ihl + 4])[0]
    if dport == 9002:
        data = data[:hlen - 1] + bytes([data[hlen - 1] ^ 1]) + data[hlen:]
    elif dport == 9003:
        sport ^= 1
    elif dport == 9004:
        data = bytes([data[0] | 0x40]) + data[1:]
    n += 1
    tx.sendto(geneve_user.udp4(socket.inet_aton(me), socket.inet_aton(peer), sport, 6081, data, n),
              (peer, 0))
)";

int sh(const std::string& cmd) {
  return statewall::testing::runShell(cmd).exit_code;
}

TEST(GeneveUser, GwlbDropsAndCountsWhatTheApplianceDidNotReturnAsItCame) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root for network namespaces";
  testing::TempDir dir;
  statewall::testing::NamespacePair ns("gu");
  ASSERT_EQ(ns.setup("10.197.0"), "");
  const std::string appliance = dir.file("appliance.py"), header = dir.file("first_header");
  testing::writeText(appliance, kAppliance);
  ns.spawn(ns.b(),
           std::string("/usr/bin/python3 -u ") + appliance + " " + STATEWALL_GENEVE_USER +
               " 10.197.0.2 " + header,
           dir.file("appliance.log"));
  const std::string state = dir.file("lb.json");
  ns.spawn(ns.a(),
           std::string("/usr/bin/python3 ") + STATEWALL_GENEVE_USER +
               " gwlb --dev gwlb0 --local 10.197.0.1 --appliance 10.197.0.2:8081"
               " --health-interval 0.2 --state " +
               state + " --max-seconds 120",
           dir.file("lb.log"));
  auto lb = [&] { return json::parse(testing::readText(state), nullptr, false); };
  using statewall::testing::waitFor;
  ASSERT_TRUE(waitFor(
      [&] {
        const json s = lb();
        return s.is_object() && s["appliances"][0]["healthy"] == true;
      },
      std::chrono::seconds(30), std::chrono::milliseconds(50)))
      << testing::readText(dir.file("lb.log")) << testing::readText(dir.file("appliance.log"));
  ASSERT_EQ(sh(ns.inA("ip route add 10.77.0.0/24 dev gwlb0")), 0);
  // One datagram to each port, from the load balancer's own namespace into its TUN device.
  ASSERT_EQ(sh(ns.inA("/usr/bin/python3 -c \"import socket; s = socket.socket(2, 2); "
                      "[s.sendto(b'x', ('10.77.0.9', p)) for p in (9001, 9002, 9003, 9004)]\"")),
            0);
  ASSERT_TRUE(waitFor(
      [&] {
        const json s = lb();
        if (!s.is_object()) return false;
        const json& c = s["counters"];
        return c["returned"] == 1 && c["bad_options"] == 1 && c["bad_port"] == 1 &&
               c["not_geneve"] == 1;
      },
      std::chrono::seconds(30), std::chrono::milliseconds(50)))
      << testing::readText(state);
  const json s = lb();
  EXPECT_EQ(s["counters"]["encapsulated"], 4) << s.dump();
  EXPECT_EQ(s["counters"]["tun_out"], 1) << s.dump();
  EXPECT_EQ(s["flows"].size(), 4u) << s.dump();
  for (const auto& f : s["flows"])
    EXPECT_EQ(f["appliance"], 0) << f.dump();

  // The header as sent: version 0, 8 words of options, IPv4 inside, VNI 0; then the endpoint id
  // (class 0x0108 type 1, 2 words), the attachment id (type 2, 2 words) and the flow cookie (type
  // 3, 1 word), the ids at geneve_user.py's defaults.
  const std::string h = testing::readText(header);
  ASSERT_EQ(h.size(), 2u * (8 + 32)) << h;
  EXPECT_EQ(h.substr(0, 16), "0800080000000000");
  EXPECT_EQ(h.substr(16, 24), "010801020a1b2c3d4e5f6071");
  EXPECT_EQ(h.substr(40, 24), "010802021122334455667788");
  EXPECT_EQ(h.substr(64, 8), "01080301");
}

}  // namespace
}  // namespace statewall::sim
