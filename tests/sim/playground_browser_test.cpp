// The playground in headless Chromium, run from docs/teaching.md's playground chapter: the test
// starts `statewall playground` as the chapter's ```sh block says (on a free port), opens the page
// in Chromium driven over the DevTools protocol (--remote-debugging-pipe), and performs each line
// of the chapter's ```playground block through playground_driver.js: a policy edit with its error
// shown at its line, stepping a handshake, a what-if that cuts an untracked flow, a quiz answer.
// Each `screenshot` line captures the page, which is decoded and checked not to be blank.
// Skipped (with a message) only when chromium is missing. Every wait is for a condition, bounded.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/png.hpp"
#include "common/run_command.hpp"
#include "sim_test_util.hpp"

extern char** environ;

namespace statewall::sim {
namespace {

using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;

const std::string kRepo = std::string(STATEWALL_EXAMPLES_DIR) + "/..";
const std::string kDoc = kRepo + "/docs/teaching.md";
const std::string kStatewall = std::string(STATEWALL_BINARY_DIR) + "/apps/statewall/statewall";

std::string findChromium() {
  for (const char* p : {"/usr/bin/chromium", "/usr/bin/chromium-browser", "/snap/bin/chromium"}) {
    if (::access(p, X_OK) == 0) return p;
  }
  return "";
}

// ---- the chapter ----

struct Chapter {
  std::string command;             // the ```sh line that starts the playground
  std::vector<std::string> steps;  // the ```playground block's lines
  std::vector<std::string> quiz;   // the quiz ids its table lists (`id` in the first column)
};

Chapter readChapter(const std::string& doc) {
  Chapter c;
  std::stringstream ss(doc);
  std::string l, block;
  bool in = false;
  while (std::getline(ss, l)) {
    if (!in && l.rfind("## ", 0) == 0) {
      in = l.find("The playground") != std::string::npos;
      continue;
    }
    if (!in) continue;
    if (block.empty() && l.rfind("```", 0) == 0 && l.size() > 3) {
      block = l.substr(3);
      continue;
    }
    if (!block.empty() && l == "```") {
      block.clear();
      continue;
    }
    if (block == "sh" && l.rfind("statewall playground", 0) == 0) c.command = l;
    if (block == "playground" && !l.empty() && l[0] != '#') c.steps.push_back(l);
    if (block.empty() && l.rfind("| `", 0) == 0) {
      const size_t e = l.find('`', 3);
      if (e != std::string::npos) c.quiz.push_back(l.substr(3, e - 3));
    }
  }
  return c;
}

// ---- processes ----

struct Child {
  pid_t pid = -1;
  ~Child() { stop(); }
  void stop() {
    if (pid <= 0) return;
    ::kill(pid, SIGTERM);
    int st = 0;
    while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    pid = -1;
  }
};

// Reads what is available on fd into *buf until `done(*buf)` holds or the deadline passes.
template <class Done>
bool readUntil(int fd, std::string* buf, Clock::time_point deadline, Done done) {
  char tmp[65536];
  while (!done(*buf)) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 1000)));
    if (r < 0 && errno != EINTR) return false;
    if (r <= 0) continue;
    const ssize_t n = ::read(fd, tmp, sizeof tmp);
    if (n <= 0) return false;
    buf->append(tmp, static_cast<size_t>(n));
  }
  return true;
}

// The DevTools protocol over Chromium's pipe: fd 3 carries our commands, fd 4 its answers, each
// message a JSON text ended by a NUL byte.
class Cdp {
 public:
  bool launch(const std::string& chromium, const testing::TempDir& tmp, const std::string& url,
              std::string* err) {
    int to_chrome[2], from_chrome[2];
    if (::pipe2(to_chrome, O_CLOEXEC) != 0 || ::pipe2(from_chrome, O_CLOEXEC) != 0) {
      *err = "pipe failed";
      return false;
    }
    const int log =
        ::open(tmp.file("chromium.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, to_chrome[0], 3);
    posix_spawn_file_actions_adddup2(&fa, from_chrome[1], 4);
    posix_spawn_file_actions_adddup2(&fa, log, 1);
    posix_spawn_file_actions_adddup2(&fa, log, 2);
    std::vector<std::string> args = {chromium,
                                     "--headless",
                                     "--no-sandbox",
                                     "--disable-gpu",
                                     "--no-first-run",
                                     "--disable-background-networking",
                                     "--disable-extensions",
                                     "--disable-sync",
                                     "--disable-default-apps",
                                     "--mute-audio",
                                     "--no-default-browser-check",
                                     "--hide-scrollbars",
                                     "--window-size=1400,1700",
                                     "--remote-debugging-pipe",
                                     "--user-data-dir=" + tmp.file("profile"),
                                     url};
    std::vector<std::string> env_s = {"HOME=" + tmp.path(), "XDG_CONFIG_HOME=" + tmp.file("xdg"),
                                      "XDG_CACHE_HOME=" + tmp.file("xdg-cache")};
    for (char** e = environ; *e != nullptr; ++e) {
      const std::string s = *e;
      if (s.rfind("HOME=", 0) != 0 && s.rfind("XDG_", 0) != 0) env_s.push_back(s);
    }
    std::vector<char*> argv, envp;
    for (auto& a : args)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    for (auto& e : env_s)
      envp.push_back(e.data());
    envp.push_back(nullptr);
    const int rc =
        ::posix_spawn(&child_.pid, chromium.c_str(), &fa, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&fa);
    ::close(to_chrome[0]);
    ::close(from_chrome[1]);
    if (log >= 0) ::close(log);
    out_ = to_chrome[1];
    in_ = from_chrome[0];
    if (rc != 0) {
      child_.pid = -1;
      *err = "cannot start " + chromium;
      return false;
    }
    return true;
  }

  ~Cdp() {
    if (out_ >= 0) ::close(out_);
    if (in_ >= 0) ::close(in_);
  }

  // Sends one command and waits (bounded) for its answer; events in between are skipped.
  Json call(const std::string& method, const Json& params, const std::string& session = "",
            std::chrono::seconds limit = std::chrono::seconds(240)) {
    Json msg{{"id", ++id_}, {"method", method}, {"params", params}};
    if (!session.empty()) msg["sessionId"] = session;
    std::string text = msg.dump();
    text.push_back('\0');
    for (size_t done = 0; done < text.size();) {
      const ssize_t n = ::write(out_, text.data() + done, text.size() - done);
      if (n <= 0) return Json{{"error", {{"message", "write to chromium failed"}}}};
      done += static_cast<size_t>(n);
    }
    const auto deadline = Clock::now() + limit;
    for (;;) {
      size_t nul;
      if (!readUntil(in_, &buf_, deadline, [&](const std::string& b) {
            return (nul = b.find('\0')) != std::string::npos;
          })) {
        return Json{{"error", {{"message", method + ": no answer from chromium"}}}};
      }
      Json m = Json::parse(buf_.substr(0, nul), nullptr, false);
      buf_.erase(0, nul + 1);
      if (m.is_object() && m.value("id", -1) == id_) return m;
    }
  }

  // Evaluates an expression in the page (awaiting a promise); the value, or the error.
  Json eval(const std::string& session, const std::string& expr, std::string* err) {
    Json r = call("Runtime.evaluate",
                  {{"expression", expr}, {"awaitPromise", true}, {"returnByValue", true}}, session);
    if (r.contains("error")) {
      *err = r["error"].dump();
      return nullptr;
    }
    if (r["result"].contains("exceptionDetails")) {
      *err = r["result"]["exceptionDetails"].dump();
      return nullptr;
    }
    return r["result"]["result"].value("value", Json());
  }

 private:
  Child child_;
  int out_ = -1, in_ = -1;
  int id_ = 0;
  std::string buf_;
};

std::string decodeBase64(const std::string& s) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : s) {
    int v = c >= 'A' && c <= 'Z'   ? c - 'A'
            : c >= 'a' && c <= 'z' ? c - 'a' + 26
            : c >= '0' && c <= '9' ? c - '0' + 52
            : c == '+'             ? 62
            : c == '/'             ? 63
                                   : -1;
    if (v < 0) continue;
    acc = acc << 6 | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>(acc >> bits & 0xff));
    }
  }
  return out;
}

TEST(PlaygroundBrowser, RefusesANonLoopbackAddress) {
  const auto r =
      statewall::testing::runCommand({kStatewall, "playground", "--listen", "192.0.2.1:80"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("not a loopback address"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--allow-remote"), std::string::npos) << r.err;
}

TEST(PlaygroundBrowser, TheChapterRunsInChromium) {
  const Chapter ch = readChapter(testing::readText(kDoc));
  ASSERT_FALSE(ch.command.empty()) << kDoc << ": the playground chapter starts it in a ```sh block";
  ASSERT_GE(ch.steps.size(), 10u) << kDoc << ": the chapter's ```playground block";
  const std::string chromium = findChromium();
  if (chromium.empty()) {
    GTEST_SKIP() << "chromium is not installed (Debian package 'chromium'; ./test installs it): "
                    "the playground cannot be checked in a browser";
  }

  // The chapter's command, on a free port, from the repository (for examples/).
  std::vector<std::string> argv = {kStatewall};
  {
    std::stringstream ss(ch.command.substr(std::string("statewall ").size()));
    for (std::string w; ss >> w;)
      argv.push_back(w);
    for (size_t i = 0; i + 1 < argv.size(); ++i) {
      if (argv[i] == "--listen") argv[i + 1] = "127.0.0.1:0";
      if (argv[i] == "--policy") argv[i + 1] = kRepo + "/" + argv[i + 1];
    }
  }
  int out[2];
  ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  std::vector<char*> args;
  for (auto& a : argv)
    args.push_back(a.data());
  args.push_back(nullptr);
  Child server;
  ASSERT_EQ(::posix_spawn(&server.pid, args[0], &fa, nullptr, args.data(), environ), 0);
  posix_spawn_file_actions_destroy(&fa);
  ::close(out[1]);
  // Serving once it prints its address (the port is bound and listening by then).
  std::string banner;
  const bool up = readUntil(out[0], &banner, Clock::now() + std::chrono::seconds(60),
                            [](const std::string& b) { return b.find('\n') != std::string::npos; });
  ::close(out[0]);
  std::smatch m;
  ASSERT_TRUE(up &&
              std::regex_search(banner, m, std::regex("serving (http://127\\.0\\.0\\.1:[0-9]+/)")))
      << "statewall playground did not start: " << banner;
  const std::string url = m[1];

  testing::TempDir tmp;
  Cdp cdp;
  std::string err;
  ASSERT_TRUE(cdp.launch(chromium, tmp, url, &err)) << err;
  // The page's target, once Chromium has one, and a session on it.
  std::string target;
  for (auto deadline = Clock::now() + std::chrono::seconds(180); target.empty();) {
    Json t = cdp.call("Target.getTargets", Json::object());
    ASSERT_FALSE(t.contains("error")) << t.dump() << "\n"
                                      << testing::readText(tmp.file("chromium.log"));
    for (const Json& info : t["result"]["targetInfos"]) {
      if (info["type"] == "page") target = info["targetId"];
    }
    ASSERT_TRUE(!target.empty() || Clock::now() < deadline) << "no page target: " << t.dump();
  }
  Json att = cdp.call("Target.attachToTarget", {{"targetId", target}, {"flatten", true}});
  ASSERT_TRUE(att.contains("result")) << att.dump();
  const std::string session = att["result"]["sessionId"];
  // Until the page itself (not about:blank) has loaded: its document is then ours to drive.
  for (auto deadline = Clock::now() + std::chrono::seconds(180);;) {
    err.clear();
    Json v = cdp.eval(session,
                      "new Promise(function (r) { if (document.readyState === 'complete') "
                      "r(location.href); else addEventListener('load', function () { "
                      "r(location.href); }); })",
                      &err);
    if (v.is_string() && v.get<std::string>() == url) break;
    ASSERT_LT(Clock::now(), deadline) << "the page did not load: " << v << " " << err;
  }
  const std::string driver = testing::readText(STATEWALL_PLAYGROUND_DRIVER);
  ASSERT_FALSE(driver.empty());
  cdp.eval(session, driver, &err);
  ASSERT_TRUE(err.empty()) << err;

  auto runStep = [&](const std::string& verb, const std::string& arg, const std::string& line) {
    std::string e;
    Json r = cdp.eval(session,
                      "window.__pg.step(" + Json{{"verb", verb}, {"arg", arg}}.dump() + ")", &e);
    ASSERT_TRUE(e.empty()) << line << ": " << e;
    EXPECT_TRUE(r.value("ok", false))
        << "docs/teaching.md playground step '" << line << "': " << r.dump();
  };
  runStep("ready", "", "(the page loads)");
  std::set<std::string> verbs;
  int shots = 0;
  for (const std::string& line : ch.steps) {
    SCOPED_TRACE(line);
    if (line == "screenshot") {
      Json shot = cdp.call("Page.captureScreenshot", {{"format", "png"}}, session);
      ASSERT_TRUE(shot.contains("result")) << shot.dump();
      const std::string png = decodeBase64(shot["result"]["data"]);
      const std::vector<uint8_t> bytes(png.begin(), png.end());
      if (const char* keep = std::getenv("STATEWALL_PLAYGROUND_SCREENSHOTS")) {
        testing::writeBytes(std::string(keep) + "/playground-" + std::to_string(shots) + ".png",
                            bytes);
      }
      ++shots;
      auto decoded = statewall::testing::decodePng(bytes);
      ASSERT_TRUE(decoded) << decoded.message();
      const statewall::testing::Image& img = *decoded;
      EXPECT_GE(img.width, 1000u);
      const auto ink = statewall::testing::inkOf(img);
      // The editor, gates, tables and the state machine: many colours, a fair share of ink.
      EXPECT_GT(ink.colours, 50u);
      EXPECT_GT(ink.non_white, ink.total / 20);
      continue;
    }
    const size_t colon = line.find(": ");
    const std::string verb = colon == std::string::npos ? line : line.substr(0, colon);
    const std::string arg = colon == std::string::npos ? "" : line.substr(colon + 2);
    verbs.insert(verb);
    runStep(verb, arg, line);
    if (::testing::Test::HasFatalFailure()) return;
  }
  // What the issue asks the chapter (and so this test) to show.
  for (const char* v : {"edit policy", "see error at line", "step", "see TCP state", "what-if",
                        "see what-if stops", "quiz", "see quiz answer"}) {
    EXPECT_TRUE(verbs.count(v)) << "the chapter has no '" << v << "' step";
  }
  EXPECT_GE(shots, 4);

  // The chapter's quiz table lists exactly the questions the page asks.
  std::string e;
  Json ids = cdp.eval(session,
                      "Array.prototype.map.call(document.querySelectorAll('.quiz'), "
                      "function (q) { return q.getAttribute('data-id'); })",
                      &e);
  ASSERT_TRUE(e.empty()) << e;
  EXPECT_EQ(ids.get<std::vector<std::string>>(), ch.quiz);
}

}  // namespace
}  // namespace statewall::sim
