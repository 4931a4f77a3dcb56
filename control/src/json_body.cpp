#include "json_body.hpp"

#include <string>
#include <unordered_set>
#include <vector>

#include <fmt/format.h>

namespace statewall::control {
namespace {

using nlohmann::json;

// A SAX pass that records the first duplicate key and where it is; builds nothing.
class DuplicateKeyFinder {
 public:
  bool null() { return value(); }
  bool boolean(bool) { return value(); }
  bool number_integer(json::number_integer_t) { return value(); }
  bool number_unsigned(json::number_unsigned_t) { return value(); }
  bool number_float(json::number_float_t, const json::string_t&) { return value(); }
  bool string(json::string_t&) { return value(); }
  bool binary(json::binary_t&) { return value(); }
  bool start_object(std::size_t) { return open(/*object=*/true); }
  bool start_array(std::size_t) { return open(/*object=*/false); }
  bool end_object() { return close(); }
  bool end_array() { return close(); }
  bool key(json::string_t& k) {
    Frame& f = stack_.back();
    if (!f.keys.insert(k).second) {
      duplicate_ = k;
      return false;  // stops the parse
    }
    f.key = k;
    return true;
  }
  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& e) {
    error_ = fmt::format("not valid JSON (byte {}): {}", position, e.what());
    return false;
  }

  const std::string& duplicate() const { return duplicate_; }
  const std::string& error() const { return error_; }
  // Where the duplicate is: "documents[0]", or empty at the top level.
  std::string where() const {
    std::string out;
    for (size_t i = 0; i + 1 < stack_.size(); ++i) {
      const Frame& f = stack_[i];
      if (f.object) {
        out += (out.empty() ? "" : ".") + f.key;
      } else {
        out += fmt::format("[{}]", f.index - 1);
      }
    }
    return out;
  }

 private:
  struct Frame {
    bool object = false;
    std::unordered_set<std::string> keys;  // objects: the keys seen so far
    std::string key;                       // objects: the key of the value being read
    size_t index = 0;                      // arrays: values started so far
  };

  bool value() {
    if (!stack_.empty() && !stack_.back().object) ++stack_.back().index;
    return true;
  }
  bool open(bool object) {
    value();
    stack_.push_back(Frame{object, {}, {}, 0});
    return true;
  }
  bool close() {
    stack_.pop_back();
    return true;
  }

  std::vector<Frame> stack_;
  std::string duplicate_;
  std::string error_;
};

}  // namespace

Status parseJsonBody(std::string_view text, json* out) {
  DuplicateKeyFinder finder;
  json::sax_parse(text.begin(), text.end(), &finder, json::input_format_t::json,
                  /*strict=*/true);
  if (!finder.duplicate().empty()) {
    std::string where = finder.where();
    return Status::failure(fmt::format("duplicate key \"{}\"{}", finder.duplicate(),
                                       where.empty() ? "" : " in " + where));
  }
  if (!finder.error().empty()) return Status::failure(finder.error());
  *out = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (out->is_discarded()) return Status::failure("not valid JSON");
  return Status::success();
}

}  // namespace statewall::control
