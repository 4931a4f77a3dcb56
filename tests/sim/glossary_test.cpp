// docs/glossary.md and the table of its terms that outputs point to: every term the table names is
// a heading of the document with the anchor the table links to, and the cues find the terms.
#include <fstream>
#include <set>
#include <sstream>

#include <gtest/gtest.h>

#include "statewall/sim/glossary.hpp"

namespace statewall::sim {
namespace {

// The link target GitHub derives from a heading: lower case, spaces to '-', punctuation other
// than '-' and '_' dropped.
std::string slug(const std::string& heading) {
  std::string s;
  for (char c : heading) {
    if (c == ' ') {
      s += '-';
    } else if (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') {
      s += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
  }
  return s;
}

TEST(Glossary, EveryTermIsAHeadingOfTheDocument) {
  std::ifstream in(std::string(STATEWALL_EXAMPLES_DIR) + "/../docs/glossary.md");
  ASSERT_TRUE(in) << "docs/glossary.md";
  std::set<std::string> anchors;
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("## ", 0) == 0) anchors.insert(slug(line.substr(3)));
  }
  ASSERT_FALSE(glossaryTerms().empty());
  for (const GlossaryTerm& t : glossaryTerms()) {
    EXPECT_EQ(slug(std::string(t.heading)), t.anchor);
    EXPECT_TRUE(anchors.count(std::string(t.anchor))) << "no heading '## " << t.heading << "'";
  }
}

TEST(Glossary, CuesFindTheTermsAsWords) {
  auto in = [](std::string_view text) {
    std::string s;
    for (std::string_view a : glossaryAnchorsIn(text))
      s += std::string(a) + " ";
    return s;
  };
  EXPECT_EQ(in("verdict: allow (allow-untracked)"), "untracked allow-and-deny-reasons ");
  EXPECT_EQ(in("the packet is INVALID"), "invalid ");
  EXPECT_EQ(in("an invalid packet"), "");  // only the state machine's word
  EXPECT_EQ(in("an unrelated packet"), "");
  EXPECT_EQ(in("SYN_SENT2 -> SYN_RECV"), "tcp-states ");
  EXPECT_EQ(in("picked up mid-stream"), "mid-stream-pickup ");
  EXPECT_EQ(in("nothing to see"), "");
  EXPECT_EQ(glossaryRef("sweep"), "docs/glossary.md#sweep");
}

}  // namespace
}  // namespace statewall::sim
