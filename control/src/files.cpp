#include "statewall/control/files.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace statewall::control {

std::string sizeText(size_t bytes) {
  constexpr size_t kMiB = 1024 * 1024;
  if (bytes >= kMiB && bytes % kMiB == 0) return fmt::format("{} MiB", bytes / kMiB);
  return fmt::format("{} bytes", bytes);
}

Status readFileCapped(const std::string& path, size_t max_bytes, std::string_view why,
                      std::string* out) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return Status::failure(fmt::format("{}: cannot read: {}", path, std::strerror(errno)));
  std::string text;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return Status::failure(fmt::format("{}: cannot read: {}", path, std::strerror(err)));
    }
    if (n == 0) break;
    if (text.size() + static_cast<size_t>(n) > max_bytes) {
      ::close(fd);
      return Status::failure(
          fmt::format("{}: larger than {} ({})", path, sizeText(max_bytes), why));
    }
    text.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  *out = std::move(text);
  return Status::success();
}

}  // namespace statewall::control
