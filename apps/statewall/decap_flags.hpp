// The flags every command that judges captures takes for tunnels (docs/design.md "Encapsulation
// and tunnels"): --decap judges the innermost packet of each tunnel instead of the outer one;
// --tunnel-port KIND=PORT (repeatable) adds a UDP port to the tunnel table; --detect-teredo finds
// Teredo on other ports by its content.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>

#include "statewall/dataplane/packet.hpp"

namespace statewall::cli {

struct DecapArgs {
  bool decap = false;
  std::vector<std::string> tunnel_ports;
  bool detect_teredo = false;  // --detect-teredo
};

void addDecapFlags(CLI::App* cmd, DecapArgs* args);

// The parse options the flags ask for. False after printing "statewall COMMAND: --tunnel-port
// ...: what is wrong" on stderr (exit 2 is the caller's).
bool decapOptions(const DecapArgs& args, std::string_view command, dataplane::ParseOptions* out);

}  // namespace statewall::cli
