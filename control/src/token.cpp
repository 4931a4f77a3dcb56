#include <sys/stat.h>

#include <fmt/format.h>

#include "statewall/control/server.hpp"
#include "statewall/rules/files.hpp"

namespace statewall::control {
namespace {

std::string trim(std::string s) {
  auto ws = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && ws(s.back()))
    s.pop_back();
  size_t i = 0;
  while (i < s.size() && ws(s[i]))
    ++i;
  return s.substr(i);
}

}  // namespace

Status readTokenFile(const std::string& path, std::string* token, std::string* warning) {
  auto text = rules::readFileCapped(path, kMaxTokenFileBytes, "the most a token file may hold");
  if (!text) return Status::failure(fmt::format("token file {}: {}", path, text.message()));
  std::string t = trim(std::move(*text));
  if (t.size() < kMinTokenLength)
    return Status::failure(
        fmt::format("{}: the token must be at least {} bytes long", path, kMinTokenLength));
  for (char c : t) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x21 || u > 0x7e)
      return Status::failure(fmt::format(
          "{}: the token must be printable ASCII without spaces (it goes in an HTTP header)",
          path));
  }
  struct stat st {};
  if (warning != nullptr && ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
    const char* who = (st.st_mode & (S_IRGRP | S_IROTH))   ? "readable"
                      : (st.st_mode & (S_IWGRP | S_IWOTH)) ? "writable"
                                                           : nullptr;
    if (who != nullptr)
      *warning = fmt::format(
          "{}: the token file is {} by other users (mode {:04o}): anyone who can read it can "
          "change the policy; chmod 600 it",
          path, who, st.st_mode & 07777);
  }
  *token = std::move(t);
  return Status::success();
}

}  // namespace statewall::control
