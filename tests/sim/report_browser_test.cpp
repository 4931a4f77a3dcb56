// The report page in headless Chromium: a driver script (report_driver.js) injected into a copy of
// the page checks that no script error occurs, that every connection shown has one ladder whose
// arrows match the verdicts, and that the search box filters; then a screenshot of the page is
// decoded and checked not to be blank. Skipped (with a message) only when chromium is missing.
#include <sys/stat.h>
#include <sys/wait.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/png.hpp"
#include "common/run_command.hpp"
#include "sim_test_util.hpp"
#include "statewall/rules/compiled.hpp"
#include "statewall/rules/loader.hpp"
#include "statewall/sim/report.hpp"

namespace statewall::sim {
namespace {

using testing::readBytes;
using testing::readText;
using testing::TempDir;
using testing::writeText;

const std::string kExamples = STATEWALL_EXAMPLES_DIR;
const std::string kHostile = "</script><img src=x onerror=window.__pwned=true>";

std::string findChromium() {
  for (const char* p : {"/usr/bin/chromium", "/usr/bin/chromium-browser", "/snap/bin/chromium"}) {
    if (::access(p, X_OK) == 0) return p;
  }
  return "";
}

std::string replaceAll(std::string s, const std::string& from, const std::string& to) {
  for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size()))
    s.replace(p, from.size(), to);
  return s;
}

// Runs a shell command (its output passed on to the test's log); returns its exit status.
int run(const std::string& cmd) {
  const auto r = statewall::testing::runShell(cmd);
  std::fputs(r.out.c_str(), stdout);
  std::fputs(r.err.c_str(), stderr);
  return r.exit_code;
}

// The chromium command line shared by the DOM dump and the screenshot: its own profile and HOME
// in the test's temporary directory, nothing from the network, generous timeouts (a loaded
// 2-core machine can take many seconds to start a browser).
std::string chromiumCmd(const std::string& chromium, const TempDir& tmp, const std::string& args) {
  return "HOME='" + tmp.path() + "' XDG_CONFIG_HOME='" + tmp.path() + "/xdg' XDG_CACHE_HOME='" +
         tmp.path() + "/xdg-cache' timeout 300 '" + chromium +
         "' --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking "
         "--disable-extensions --disable-sync --disable-default-apps --mute-audio "
         "--no-default-browser-check --user-data-dir='" +
         tmp.path() + "/profile' --enable-logging=stderr --v=0 " + args;
}

std::string unescapeHtmlText(std::string s) {
  s = replaceAll(s, "&lt;", "<");
  s = replaceAll(s, "&gt;", ">");
  s = replaceAll(s, "&quot;", "\"");
  s = replaceAll(s, "&#39;", "'");
  s = replaceAll(s, "&nbsp;", "\xc2\xa0");
  return replaceAll(s, "&amp;", "&");
}

// The search semantics the page documents (see report_assets.cpp): a connection's terms are its
// protocol, addresses, ports and endpoints (TCP/UDP), conn_state, uid, end, number, "allow" /
// "deny" when it has such packets, its reasons; every token must equal a term, or begin one
// when it ends in '.' or ':'.
std::vector<std::string> termsOf(const ReportConnection& c) {
  const ConnRecord& r = c.rec;
  const bool ported = r.proto == 6 || r.proto == 17;
  std::string proto = r.proto == 6    ? "tcp"
                      : r.proto == 17 ? "udp"
                      : r.proto == 1  ? "icmp"
                      : r.proto == 58 ? "icmpv6"
                                      : "proto " + std::to_string(r.proto);
  std::vector<std::string> t = {proto,
                                r.orig_h.str(),
                                r.resp_h.str(),
                                std::string(r.connState()),
                                r.uid(),
                                std::string(connEndName(r.end)),
                                std::to_string(r.seq + 1),
                                "#" + std::to_string(r.seq + 1)};
  auto ep = [](const rules::IpAddr& a, uint16_t p) {
    return a.isV4() ? a.str() + ":" + std::to_string(p) : "[" + a.str() + "]:" + std::to_string(p);
  };
  if (ported) {
    t.push_back(std::to_string(r.orig_p));
    t.push_back(std::to_string(r.resp_p));
    t.push_back(ep(r.orig_h, r.orig_p));
    t.push_back(ep(r.resp_h, r.resp_p));
  }
  if (c.allowed() > 0) t.insert(t.end(), {"allow", "allowed"});
  if (c.denied() > 0) t.insert(t.end(), {"deny", "denied"});
  if (c.stateless_changed > 0) t.push_back("stateless");
  for (size_t k = 0; k < dataplane::kReasonCount; ++k) {
    if (c.by_reason[k] > 0) t.emplace_back(dataplane::kReasonCodes[k]);
  }
  for (auto& s : t)
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char ch) { return std::tolower(ch); });
  return t;
}

bool matchesQuery(const ReportConnection& c, const std::string& q) {
  std::vector<std::string> terms = termsOf(c);
  std::string tok;
  std::vector<std::string> tokens;
  for (char ch : q + " ") {
    if (ch == ' ' || ch == ',') {
      if (!tok.empty()) tokens.push_back(tok);
      tok.clear();
    } else {
      tok.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(ch))));
    }
  }
  for (const auto& k : tokens) {
    const bool prefix = k.back() == '.' || k.back() == ':';
    bool hit = false;
    for (const auto& t : terms)
      hit = hit || t == k || (prefix && t.rfind(k, 0) == 0);
    if (!hit) return false;
  }
  return true;
}

class ReportBrowser : public ::testing::Test {
 protected:
  void SetUp() override {
    chromium_ = findChromium();
    if (chromium_.empty()) {
      GTEST_SKIP() << "chromium is not installed (Debian package 'chromium'; ./test installs it): "
                      "the report page cannot be checked in a browser";
    }
    // The example policy with markup in a group's description: shown as text, never run.
    std::string yaml = readText(kExamples + "/three-tier.yaml");
    ASSERT_NE(yaml.find("description: public web tier"), std::string::npos);
    yaml = replaceAll(yaml, "description: public web tier", "description: \"" + kHostile + "\"");
    yaml = replaceAll(yaml, "  app:\n", "  \"app" + kHostile + "\":\n");
    yaml = replaceAll(yaml, "from: sg:app,", "from: \"sg:app" + kHostile + "\",");
    yaml = replaceAll(yaml, "groups: [app]", "groups: [\"app" + kHostile + "\"]");
    auto loaded = rules::loadPolicyTexts({{"three-tier-hostile.yaml", yaml}});
    for (const auto& d : loaded.diagnostics)
      ADD_FAILURE() << d.str();
    ASSERT_TRUE(loaded.ok());
    auto compiled = rules::compile(*loaded.policy);
    ASSERT_TRUE(compiled.policy);
    std::string err;
    ASSERT_TRUE(buildReport(compiled.policy, {kExamples + "/three-tier.pcap"}, {}, &data_, &err))
        << err;
    page_ = renderReportHtml(data_);
    writeText(tmp_.file("report.html"), page_);
  }

  std::string chromium_;
  TempDir tmp_;
  ReportData data_;
  std::string page_;
};

TEST_F(ReportBrowser, DriverChecksTheDom) {
  const std::string driver = readText(STATEWALL_REPORT_DRIVER);
  ASSERT_FALSE(driver.empty()) << STATEWALL_REPORT_DRIVER;
  std::string driven = page_;
  const size_t head = driven.find("<head>");
  ASSERT_NE(head, std::string::npos);
  driven.insert(head + 6, "<script>" + driver + "</script>");
  writeText(tmp_.file("driven.html"), driven);

  const std::string dom = tmp_.file("dom.html"), log = tmp_.file("chromium.log");
  const int rc =
      run(chromiumCmd(chromium_, tmp_,
                      "--virtual-time-budget=60000 --timeout=240000 --dump-dom 'file://" +
                          tmp_.file("driven.html") + "' > '" + dom + "' 2> '" + log + "'"));
  const std::string out = readText(dom);
  const std::string open = "<pre id=\"driver-result\">";
  // The last one: the driver source (in the DOM too) names the element in a comment.
  const size_t s = out.rfind(open);
  ASSERT_NE(s, std::string::npos) << "chromium exit " << rc << "; no driver result in the DOM ("
                                  << out.size() << " bytes). chromium log:\n"
                                  << readText(log);
  const size_t e = out.find("</pre>", s);
  ASSERT_NE(e, std::string::npos);
  const nlohmann::json r =
      nlohmann::json::parse(unescapeHtmlText(out.substr(s + open.size(), e - s - open.size())));

  EXPECT_TRUE(r["errors"].empty()) << r["errors"].dump(1);
  EXPECT_FALSE(r.contains("exception")) << r["exception"];
  EXPECT_EQ(r["ready"], "1");
  EXPECT_EQ(r["images"], 0);
  EXPECT_EQ(r["pwned"], false);
  EXPECT_EQ(r["initial_cards"], std::min<size_t>(10, data_.connections.size()));

  // One card and one ladder per connection (all fit on one page of 100), in order; the arrows of
  // each ladder are exactly the connection's packets with its verdicts.
  const auto& cards = r["cards"];
  ASSERT_EQ(cards.size(), data_.connections.size());
  ASSERT_GT(cards.size(), 10u);
  uint64_t arrows = 0, stateless_rows = 0;
  for (size_t i = 0; i < cards.size(); ++i) {
    const ReportConnection& c = data_.connections[i];
    const auto& card = cards[i];
    SCOPED_TRACE("connection " + c.rec.uid());
    EXPECT_EQ(card["uid"], c.rec.uid());
    EXPECT_EQ(card["ladders"], 1);
    EXPECT_EQ(card["allow"].get<uint64_t>(), c.allowed());
    EXPECT_EQ(card["deny"].get<uint64_t>(), c.denied());
    for (size_t k = 0; k < dataplane::kReasonCount; ++k) {
      const std::string code(dataplane::kReasonCodes[k]);
      const uint64_t shown =
          card["reasons"].contains(code) ? card["reasons"][code].get<uint64_t>() : 0;
      EXPECT_EQ(shown, c.by_reason[k]) << code;
    }
    std::vector<uint64_t> idx;
    uint64_t stateless = 0;
    for (const LadderArrow& a : c.arrows) {
      idx.push_back(a.index);
      stateless += a.stateless_differs;
    }
    EXPECT_EQ(card["stateless"].get<uint64_t>(), stateless);
    // A packet the ACL denies stops at a subnet edge, one the groups deny at an interface; the
    // verdict is written at the arrow's head (left of the originator for a reply); ICMP arrows
    // are named, not numbered.
    ASSERT_EQ(card["stops"].size(), c.arrows.size());
    for (size_t k = 0; k < c.arrows.size(); ++k) {
      const LadderArrow& a = c.arrows[k];
      const std::string want = a.reason == dataplane::Reason::kDenyAcl  ? "acl"
                               : a.reason == dataplane::Reason::kDenySg ? "groups"
                               : dataplane::reasonAllows(a.reason)      ? ""
                                                                        : "between";
      EXPECT_EQ(card["stops"][k], want) << "packet " << a.index;
      EXPECT_TRUE(card["heads"][k].get<bool>()) << "packet " << a.index;
      const std::string label = card["labels"][k];
      if (a.proto == dataplane::kIpProtoIcmp && a.icmp_type == 8) {
        EXPECT_EQ(label.rfind("echo request", 0), 0u) << label;
      }
      EXPECT_EQ(label.find("type 8 code"), std::string::npos) << label;
      EXPECT_EQ(label.find("type 0 code"), std::string::npos) << label;
    }
    EXPECT_EQ(card["gates"].size(), 4u);
    stateless_rows += stateless;
    EXPECT_EQ(card["indexes"].get<std::vector<uint64_t>>(), idx);
    arrows += card["indexes"].size();
  }
  // The example has tracked replies a stateless filter would drop: each is a tinted row.
  EXPECT_EQ(stateless_rows, data_.stateless_to_deny + data_.stateless_to_allow);
  EXPECT_GT(stateless_rows, 0u);
  // Every packet of the trace is an arrow somewhere, except those of no connection.
  EXPECT_EQ(arrows + data_.unattributed_packets, data_.summary.packets);

  // The search box.
  for (const auto& [q, res] : r["queries"].items()) {
    std::vector<std::string> expected;
    for (const ReportConnection& c : data_.connections) {
      if (matchesQuery(c, q)) expected.push_back(c.rec.uid());
    }
    EXPECT_EQ(res["uids"].get<std::vector<std::string>>(), expected) << "query '" << q << "'";
    EXPECT_EQ(res["matches"].get<size_t>(), expected.size()) << "query '" << q << "'";
    if (q == "no-such-thing") {
      EXPECT_TRUE(expected.empty());
    } else {
      EXPECT_FALSE(expected.empty()) << "query '" << q << "' should match something";
      EXPECT_LT(expected.size(), data_.connections.size()) << "query '" << q << "' filters";
    }
  }
  EXPECT_EQ(r["after_clear"].get<size_t>(), data_.connections.size());
  // The pager: ten per page, the second page continues the first.
  auto p1 = r["page1"].get<std::vector<std::string>>();
  auto p2 = r["page2"].get<std::vector<std::string>>();
  ASSERT_EQ(p1.size(), 10u);
  ASSERT_FALSE(p2.empty());
  EXPECT_EQ(p1.front(), data_.connections[0].rec.uid());
  EXPECT_EQ(p2.front(), data_.connections[10].rec.uid());

  // The static parts.
  EXPECT_EQ(r["tcp_nodes"], dataplane::kTcpStateCount);
  EXPECT_GT(r["tcp_edges"].get<int>(), 10);
  EXPECT_EQ(r["expiry_markers"].get<size_t>(), data_.expiries.size());
  size_t never = 0;
  for (uint64_t h : data_.summary.rule_hits)
    never += h == 0;
  for (uint64_t h : data_.summary.acl_hits)
    never += h == 0;
  EXPECT_EQ(r["never_hit_rows"].get<size_t>(), never);
  const auto groups = r["group_headings"].get<std::vector<std::string>>();
  EXPECT_NE(std::find(groups.begin(), groups.end(), "app" + kHostile), groups.end())
      << r["group_headings"].dump();
}

TEST_F(ReportBrowser, ScreenshotIsNotBlank) {
  const std::string png = tmp_.file("report.png"), log = tmp_.file("chromium.log");
  const int rc = run(chromiumCmd(chromium_, tmp_,
                                 "--hide-scrollbars --virtual-time-budget=30000 --timeout=240000 "
                                 "--window-size=1280,2000 --screenshot='" +
                                     png + "' 'file://" + tmp_.file("report.html") + "' > '" + log +
                                     "' 2>&1"));
  const std::vector<uint8_t> bytes = readBytes(png);
  ASSERT_FALSE(bytes.empty()) << "chromium exit " << rc << "; no screenshot. log:\n"
                              << readText(log);
  if (const char* keep = std::getenv("STATEWALL_REPORT_SCREENSHOT")) {
    testing::writeBytes(keep, bytes);  // for people: look at the page
  }
  auto decoded = statewall::testing::decodePng(bytes);
  ASSERT_TRUE(decoded) << decoded.message();
  const statewall::testing::Image& img = *decoded;
  EXPECT_EQ(img.width, 1280u);
  EXPECT_EQ(img.height, 2000u);
  const statewall::testing::Ink ink = statewall::testing::inkOf(img);
  // The header bar, cards, tables and charts: many colours, a fair share of ink.
  EXPECT_GT(ink.colours, 50u);
  EXPECT_GT(ink.non_white, ink.total / 20);
}

}  // namespace
}  // namespace statewall::sim
