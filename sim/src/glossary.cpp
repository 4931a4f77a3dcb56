// docs/glossary.md's terms and how to spot them in an output's text.
#include "statewall/sim/glossary.hpp"

#include <cctype>

namespace statewall::sim {
namespace {

constexpr GlossaryTerm kTerms[] = {
    {"connection", "connection"},
    {"originator", "originator"},
    {"reply", "reply"},
    {"ephemeral port", "ephemeral-port"},
    {"security group", "security-group"},
    {"network ACL", "network-acl"},
    {"tracked", "tracked"},
    {"untracked", "untracked"},
    {"related", "related"},
    {"INVALID", "invalid"},
    {"mid-stream pickup", "mid-stream-pickup"},
    {"TCP states", "tcp-states"},
    {"idle timeout", "idle-timeout"},
    {"sweep", "sweep"},
    {"eviction", "eviction"},
    {"Allow and deny reasons", "allow-and-deny-reasons"},
    {"Zeek conn_state", "zeek-conn_state"},
    {"Zeek history", "zeek-history"},
};

// What in a text calls for each anchor. Case matters only for all-capital words.
struct Cue {
  std::string_view anchor;
  std::string_view word;
};
constexpr Cue kCues[] = {
    {"ephemeral-port", "ephemeral"},
    {"untracked", "untracked"},
    {"related", "related"},
    {"invalid", "INVALID"},
    {"invalid", "tcp-invalid"},
    {"mid-stream-pickup", "mid-stream"},
    {"tcp-states", "SYN_SENT"},
    {"tcp-states", "SYN_RECV"},
    {"tcp-states", "ESTABLISHED"},
    {"tcp-states", "FIN_WAIT"},
    {"tcp-states", "CLOSE_WAIT"},
    {"tcp-states", "LAST_ACK"},
    {"tcp-states", "TIME_WAIT"},
    {"idle-timeout", "idle timeout"},
    {"idle-timeout", "s idle"},
    {"sweep", "sweep"},
    {"allow-and-deny-reasons", "allow-"},
    {"allow-and-deny-reasons", "deny-sg"},
    {"allow-and-deny-reasons", "deny-acl"},
    {"allow-and-deny-reasons", "deny-invalid"},
    {"allow-and-deny-reasons", "deny-malformed"},
    {"allow-and-deny-reasons", "deny-table-full"},
};

bool isWordChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_';
}

// `word` in `text` not inside a longer word ("related" is not in "unrelated"; "untracked" is
// in "allow-untracked"). Lower-case cues match any case.
bool contains(std::string_view text, std::string_view word) {
  bool upper = false;
  for (char c : word)
    upper = upper || std::isupper(static_cast<unsigned char>(c)) != 0;
  for (size_t i = 0; i + word.size() <= text.size(); ++i) {
    bool eq = true;
    for (size_t k = 0; k < word.size() && eq; ++k) {
      const char t = text[i + k];
      eq = upper ? t == word[k] : std::tolower(static_cast<unsigned char>(t)) == word[k];
    }
    if (!eq) continue;
    const bool open_left = isWordChar(word.front()) && i > 0 && isWordChar(text[i - 1]);
    const size_t end = i + word.size();
    const bool open_right = isWordChar(word.back()) && end < text.size() && isWordChar(text[end]) &&
                            // SYN_SENT also names SYN_SENT2.
                            !(word == "SYN_SENT" && text[end] == '2');
    if (!open_left && !open_right) return true;
  }
  return false;
}

}  // namespace

std::span<const GlossaryTerm> glossaryTerms() {
  return kTerms;
}

std::string glossaryRef(std::string_view anchor) {
  return std::string(kGlossaryPath) + "#" + std::string(anchor);
}

std::vector<std::string_view> glossaryAnchorsIn(std::string_view text) {
  std::vector<std::string_view> out;
  for (const GlossaryTerm& t : kTerms) {
    for (const Cue& c : kCues) {
      if (c.anchor == t.anchor && contains(text, c.word)) {
        out.push_back(t.anchor);
        break;
      }
    }
  }
  return out;
}

}  // namespace statewall::sim
