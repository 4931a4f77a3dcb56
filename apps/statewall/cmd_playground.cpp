// `statewall playground [--policy P] [--listen 127.0.0.1:PORT]`: a local page to learn security
// groups by doing (sim/include/statewall/sim/playground.hpp). Serves until SIGINT or SIGTERM.
#include <signal.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "commands.hpp"
#include "statewall/rules/loader.hpp"
#include "statewall/sim/playground.hpp"

namespace statewall::cli {
namespace {

// The page's policy when none is given: a web server in a subnet with a network ACL, so that
// both gates show.
constexpr const char* kStarterPolicy = R"YAML(version: 1
groups:
  web:
    description: HTTPS in, everything out
    inbound:
      - {proto: tcp, ports: 443, from: 0.0.0.0/0, description: HTTPS from anywhere}
    # no 'outbound' key: the default rule allows all outbound traffic
network_acls:
  public-acl:
    inbound:
      - {rule: 100, action: allow, proto: tcp, ports: 443, from: 0.0.0.0/0}
      - {rule: 110, action: allow, proto: tcp, ports: 1024-65535, from: 0.0.0.0/0}
    outbound:
      - {rule: 100, action: allow, proto: all, to: 0.0.0.0/0}
subnets:
  public: {cidr: [10.0.1.0/24], acl: public-acl}
interfaces:
  web-1: {addresses: [10.0.1.10], groups: [web]}
)YAML";

struct PlaygroundArgs {
  std::string policy;
  std::string listen = "127.0.0.1:8080";
  bool allow_remote = false;
};

int runPlayground(const PlaygroundArgs& a) {
  sim::PlaygroundOptions po;
  if (a.policy.empty()) {
    po.policy_name = "starter.yaml";
    po.policy_text = kStarterPolicy;
  } else {
    std::ifstream in(a.policy, std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "statewall playground: %s: cannot read\n", a.policy.c_str());
      return 2;
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    po.policy_name = a.policy;
    po.policy_text = ss.str();
    if (po.policy_text.size() > po.limits.max_policy_bytes) {
      std::fprintf(stderr, "statewall playground: %s: larger than the playground's %zu bytes\n",
                   a.policy.c_str(), po.limits.max_policy_bytes);
      return 2;
    }
    // A broken policy still opens (the page shows its errors where they are), but say so here.
    rules::LoadResult loaded = rules::loadPolicyTexts({{po.policy_name, po.policy_text}});
    for (const auto& d : loaded.diagnostics)
      std::fprintf(stderr, "%s\n", d.str().c_str());
  }
  sim::Playground playground(po);
  sim::PlaygroundServerOptions so;
  so.listen = a.listen;
  so.allow_remote = a.allow_remote;

  // SIGINT/SIGTERM are waited for below; blocked first so that the server thread inherits the mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  sim::PlaygroundServer server(playground, so);
  if (const base::Status started = server.start(); !started.ok()) {
    std::fprintf(stderr, "statewall playground: %s\n", started.message().c_str());
    return 2;
  }
  std::printf("statewall playground: serving %s (policy %s); Ctrl-C stops it\n",
              server.url().c_str(), po.policy_name.c_str());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&stop_signals, &sig);
  server.stop();
  return 0;
}

}  // namespace

void addPlaygroundCommand(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<PlaygroundArgs>();
  CLI::App* cmd = app.add_subcommand(
      "playground",
      "Serve a local page to edit a policy, step packets through the engine, try "
      "what-ifs and a quiz");
  cmd->footer(
      "Open the printed address in a browser. Loopback only unless --allow-remote: the page has\n"
      "no authentication. docs/teaching.md, \"The playground\", walks through it.\n"
      "Example: statewall playground --policy examples/teaching/untracked.yaml --listen "
      "127.0.0.1:8080");
  cmd->add_option("--policy,-p", args->policy, "policy file the page starts with (YAML)");
  cmd->add_option("--listen", args->listen, "HOST:PORT to serve on (port 0: any free port)")
      ->capture_default_str();
  cmd->add_flag("--allow-remote", args->allow_remote,
                "serve on a non-loopback address too (no authentication!)");
  cmd->callback([args, exit_code]() { *exit_code = runPlayground(*args); });
}

}  // namespace statewall::cli
