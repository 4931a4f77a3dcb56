// The tests' one temporary directory: a fresh directory under $TMPDIR (or /tmp), removed with
// everything in it when the object goes (kept when STATEWALL_KEEP_TMP is set, for a look after a
// failure). Hermetic tests write their files here.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

namespace statewall::testing {

class TempDir {
 public:
  explicit TempDir(std::string_view prefix = "statewall-test") {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/" +
                       std::string(prefix) + "-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) {
      ADD_FAILURE() << "mkdtemp " << tmpl << ": " << std::strerror(errno);
      return;
    }
    path_ = tmpl;
  }
  ~TempDir() {
    if (path_.empty() || std::getenv("STATEWALL_KEEP_TMP") != nullptr) return;
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // DIR/name (not created).
  std::string file(std::string_view name) const { return path_ + "/" + std::string(name); }
  std::string operator/(std::string_view name) const { return file(name); }
  // Writes `text` to DIR/name (replacing it) and returns the path.
  std::string write(std::string_view name, std::string_view text) const {
    const std::string p = file(name);
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    if (!out) ADD_FAILURE() << "cannot write " << p;
    return p;
  }

 private:
  std::string path_;
};

}  // namespace statewall::testing
