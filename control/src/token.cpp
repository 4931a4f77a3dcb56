#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "statewall/control/server.hpp"

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

Status readTokenFile(const std::string& path, std::string* token) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return Status::failure(
        fmt::format("{}: cannot read token file: {}", path, std::strerror(errno)));
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string t = trim(ss.str());
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
  *token = std::move(t);
  return Status::success();
}

}  // namespace statewall::control
