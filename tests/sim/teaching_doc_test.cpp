// docs/teaching.md shows commands and their output in ```console blocks: a line "$ COMMAND"
// (continued on the next line after a trailing backslash), then the output. This test runs every
// command, in document order, with /bin/sh in one temporary directory that holds a link to the
// repository's examples/ (so that files the walkthrough writes stay out of the tree), the built
// `statewall` first on PATH and stderr merged into stdout, and compares the output exactly with
// the document. STATEWALL_UPDATE_GOLDEN=1 rewrites the document's output blocks instead.
#include <unistd.h>

#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include "common/text_diff.hpp"

#include "common/run_command.hpp"
#include "sim_test_util.hpp"

namespace statewall::sim {
namespace {

using statewall::testing::firstDifference;

const std::string kRepo = std::string(STATEWALL_EXAMPLES_DIR) + "/..";
const std::string kDoc = kRepo + "/docs/teaching.md";
const std::string kBinDir = std::string(STATEWALL_BINARY_DIR) + "/apps/statewall";

struct Command {
  size_t line = 0;          // 1-based line of the "$ " line in the document
  std::string text;         // the command, continuation lines included
  std::string expected;     // the output lines that follow, each with its '\n'
  size_t first_output = 0;  // index (0-based) of the first output line in the document
  size_t end_output = 0;    // one past the last output line
};

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string l;
  while (std::getline(ss, l))
    out.push_back(l);
  return out;
}

std::vector<Command> parseDoc(const std::vector<std::string>& doc) {
  std::vector<Command> cmds;
  bool in_block = false;
  for (size_t i = 0; i < doc.size(); ++i) {
    const std::string& l = doc[i];
    if (!in_block) {
      in_block = l == "```console";
      continue;
    }
    if (l == "```") {
      in_block = false;
      if (!cmds.empty() && cmds.back().end_output == 0) cmds.back().end_output = i;
      continue;
    }
    if (l.rfind("$ ", 0) == 0) {
      if (!cmds.empty() && cmds.back().end_output == 0) cmds.back().end_output = i;
      Command c;
      c.line = i + 1;
      c.text = l.substr(2);
      while (!c.text.empty() && c.text.back() == '\\' && i + 1 < doc.size()) {
        c.text += "\n" + doc[++i];
      }
      c.first_output = i + 1;
      cmds.push_back(std::move(c));
      continue;
    }
    if (!cmds.empty() && cmds.back().end_output == 0) cmds.back().expected += l + "\n";
  }
  return cmds;
}

TEST(TeachingDoc, ParserFindsCommandsAndOutputs) {
  const auto cmds =
      parseDoc(lines("text\n```console\n$ a \\\n  b\nout 1\n\nout 2\n$ c\n```\n"
                     "```sh\n$ not run\n```\n```console\n$ d\n```\n"));
  ASSERT_EQ(cmds.size(), 3u);
  EXPECT_EQ(cmds[0].text, "a \\\n  b");
  EXPECT_EQ(cmds[0].expected, "out 1\n\nout 2\n");
  EXPECT_EQ(cmds[0].line, 3u);
  EXPECT_EQ(cmds[1].text, "c");
  EXPECT_EQ(cmds[1].expected, "");
  EXPECT_EQ(cmds[2].text, "d");
}

TEST(TeachingDoc, EveryCommandShowsItsRealOutput) {
  std::vector<std::string> doc = lines(testing::readText(kDoc));
  ASSERT_FALSE(doc.empty()) << "cannot read " << kDoc;
  const std::vector<Command> cmds = parseDoc(doc);
  ASSERT_GE(cmds.size(), 5u) << "the walkthrough shows its commands in ```console blocks";
  testing::TempDir dir;
  ASSERT_EQ(::symlink((kRepo + "/examples").c_str(), dir.file("examples").c_str()), 0);
  const bool update = std::getenv("STATEWALL_UPDATE_GOLDEN") != nullptr;
  std::vector<std::string> outputs;
  for (const Command& c : cmds) {
    EXPECT_EQ(c.text.rfind("statewall ", 0), 0u)
        << "docs/teaching.md:" << c.line << ": every command shown is a statewall command";
    const std::string script = "cd '" + dir.path() + "' && PATH='" + kBinDir +
                               "':\"$PATH\" && export PATH && exec 2>&1 && " + c.text;
    const auto r = statewall::testing::runCommand({"/bin/sh", "-c", script});
    // 0, or 1 for a negative answer (a denied query, a diff that denies more); 2 is bad input.
    EXPECT_LE(r.exit_code, 1) << "docs/teaching.md:" << c.line << ": " << c.text << "\n" << r.out;
    outputs.push_back(r.out);
    if (!update && r.out != c.expected) {
      ADD_FAILURE() << "docs/teaching.md:" << c.line << ": $ " << c.text << "\n"
                    << firstDifference(r.out, c.expected, "doc")
                    << "\n(STATEWALL_UPDATE_GOLDEN=1 rewrites the document's outputs)";
    }
  }
  if (!update) return;
  std::string out;
  size_t next = 0;
  for (size_t k = 0; k < cmds.size(); ++k) {
    for (; next < cmds[k].first_output; ++next)
      out += doc[next] + "\n";
    out += outputs[k];
    if (!outputs[k].empty() && outputs[k].back() != '\n') out += "\n";
    next = cmds[k].end_output;
  }
  for (; next < doc.size(); ++next)
    out += doc[next] + "\n";
  testing::writeText(kDoc, out);
}

}  // namespace
}  // namespace statewall::sim
