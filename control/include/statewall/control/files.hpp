// Reading the small files the control plane is given (token files, policy files for `statewall
// ctl`) with a size cap, so that a huge or endless file (/dev/zero) is a clear error instead of
// an out-of-memory abort.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "statewall/control/status.hpp"

namespace statewall::control {

// Reads the whole file at `path` into *out. A file of more than `max_bytes` bytes (judged while
// reading, so that devices and pipes are capped too) fails with "PATH: larger than LIMIT (WHY)".
Status readFileCapped(const std::string& path, size_t max_bytes, std::string_view why,
                      std::string* out);

// "16 MiB", "4096 bytes": a byte count as a limit is stated to a person.
std::string sizeText(size_t bytes);

}  // namespace statewall::control
