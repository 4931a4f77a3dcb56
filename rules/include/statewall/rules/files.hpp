// Reading the small files users hand us (policies, expectation files, token files, policy files
// for `statewall ctl`) with a size cap, so that a huge or endless file (/dev/zero) is a clear
// error instead of an out-of-memory abort. The one reader for all of them.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace statewall::rules {

// Reads a whole file of at most `max_bytes` bytes (judged while reading, so that devices and
// pipes are capped too: it stops after max_bytes + 1). nullopt with *error set when it cannot:
// "cannot read file: <errno text>", "cannot read file: it is a directory", or "the file is larger
// than the limit of N bytes (32 MiB): <why>" (`why` defaults to "expected a smaller file").
// The message does not name the path: callers put it in front as their style wants
// (FILE: error: ... for diagnostics). Any thread.
std::optional<std::string> readFileCapped(const std::string& path, size_t max_bytes,
                                          std::string* error, std::string_view why = {});

// A byte count as a limit is stated to a person: "32 MiB", "4096 bytes".
std::string sizeText(size_t bytes);

}  // namespace statewall::rules
