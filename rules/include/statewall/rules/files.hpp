// Reading the small files users hand us (policies, expectation files, token files, policy files
// for `statewall ctl`) with a size cap, so that a huge or endless file (/dev/zero) is a clear
// error instead of an out-of-memory abort. The one reader for all of them.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "statewall/base/status.hpp"

namespace statewall::rules {

// Reads a whole file of at most `max_bytes` bytes (judged while reading, so that devices and
// pipes are capped too: it stops after max_bytes + 1). A failure when it cannot, with message
// "cannot read file: <errno text>", "cannot read file: it is a directory", or "the file is larger
// than the limit of N bytes (32 MiB): <why>" (`why` defaults to "expected a smaller file"), and
// where() the path: the message does not name it, so that callers put it in front as their style
// wants (FILE: error: ... for diagnostics). Any thread.
base::Expected<std::string> readFileCapped(const std::string& path, size_t max_bytes,
                                           std::string_view why = {});

// The same with the older error out-parameter, for the callers not converted yet
// (dataplane/dpdk/src/options.cpp, apps/statewalld/statewalld.cpp); delete when they move.
inline std::optional<std::string> readFileCapped(const std::string& path, size_t max_bytes,
                                                 std::string* error, std::string_view why = {}) {
  auto text = readFileCapped(path, max_bytes, why);
  if (!text) {
    *error = text.message();
    return std::nullopt;
  }
  return std::move(*text);
}

// A byte count as a limit is stated to a person: "32 MiB", "4096 bytes".
std::string sizeText(size_t bytes);

}  // namespace statewall::rules
