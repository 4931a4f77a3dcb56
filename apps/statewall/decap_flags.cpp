#include "decap_flags.hpp"

#include <cstdio>

namespace statewall::cli {

void addDecapFlags(CLI::App* cmd, DecapArgs* args) {
  cmd->add_flag("--decap", args->decap,
                "judge the innermost packet of each tunnel (GRE, ERSPAN, VXLAN, GENEVE, GTP-U, "
                "Teredo, AYIYA, IP-in-IP) instead of the outer packet");
  cmd->add_option("--tunnel-port", args->tunnel_ports,
                  "with --decap, UDP port of a tunnel besides the standard ones, KIND=PORT "
                  "(vxlan=8472; kinds vxlan, geneve, gtp-u, teredo, ayiya); repeatable");
  cmd->add_flag("--detect-teredo", args->detect_teredo,
                "with --decap, also decapsulate UDP on other ports whose payload is plainly "
                "Teredo (IPv6 in UDP with Teredo headers or a 2001::/32 address)");
}

bool decapOptions(const DecapArgs& args, std::string_view command, dataplane::ParseOptions* out) {
  dataplane::ParseOptions o;
  o.decap = args.decap;
  o.detect_teredo = args.detect_teredo;
  for (const std::string& text : args.tunnel_ports) {
    const std::string err = dataplane::parseTunnelPort(text, &o);
    if (!err.empty()) {
      std::fprintf(stderr, "statewall %.*s: %s\n", static_cast<int>(command.size()), command.data(),
                   err.c_str());
      return false;
    }
  }
  if ((!args.tunnel_ports.empty() || args.detect_teredo) && !args.decap) {
    std::fprintf(stderr, "statewall %.*s: %s needs --decap\n", static_cast<int>(command.size()),
                 command.data(), args.detect_teredo ? "--detect-teredo" : "--tunnel-port");
    return false;
  }
  *out = o;
  return true;
}

}  // namespace statewall::cli
