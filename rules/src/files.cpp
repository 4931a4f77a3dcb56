#include "statewall/rules/files.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

namespace statewall::rules {

std::string sizeText(size_t bytes) {
  constexpr size_t kMiB = 1024 * 1024;
  if (bytes >= kMiB && bytes % kMiB == 0) return std::to_string(bytes / kMiB) + " MiB";
  return std::to_string(bytes) + " bytes";
}

base::Expected<std::string> readFileCapped(const std::string& path, size_t max_bytes,
                                           std::string_view why) {
  using base::Status;
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return Status::failureAt(path, "cannot read file: it is a directory");
  }
  errno = 0;
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) {
    return Status::failureAt(
        path, std::string("cannot read file: ") + std::strerror(errno != 0 ? errno : EIO));
  }
  std::string text;
  char buf[65536];
  while (text.size() <= max_bytes) {
    const size_t want = std::min(sizeof buf, max_bytes + 1 - text.size());
    const size_t n = std::fread(buf, 1, want, f.get());
    text.append(buf, n);
    if (n < want) break;
  }
  if (std::ferror(f.get())) {
    return Status::failureAt(
        path, std::string("cannot read file: ") + std::strerror(errno != 0 ? errno : EIO));
  }
  if (text.size() > max_bytes) {
    std::string limit = std::to_string(max_bytes) + " bytes";
    if (sizeText(max_bytes) != limit) limit += " (" + sizeText(max_bytes) + ")";
    return Status::failureAt(
        path, "the file is larger than the limit of " + limit + ": " +
                  (why.empty() ? std::string("expected a smaller file") : std::string(why)));
  }
  return text;
}

}  // namespace statewall::rules
