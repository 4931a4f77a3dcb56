// The committed fuzz seeds (tests/fuzz/corpus/fuzz_parser, written by parser_corpus_gen) parse as
// their names say: "ok__NAME" parses, "bad__LAYER__NAME" is malformed at LAYER. The first byte of
// each file picks the link type and decapsulation, as in fuzz_parser.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "parse_util.hpp"

namespace statewall::dataplane {
namespace {

TEST(ParserCorpus, SeedsParseAsTheirNamesSay) {
  namespace fs = std::filesystem;
  size_t ok_seeds = 0;
  size_t bad_seeds = 0;
  for (const auto& entry : fs::directory_iterator(STATEWALL_PARSER_CORPUS_DIR)) {
    const std::string name = entry.path().filename().string();
    SCOPED_TRACE(name);
    std::ifstream in(entry.path(), std::ios::binary);
    const Bytes data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    ASSERT_FALSE(data.empty());
    // The first byte: link type (low 7 bits), decapsulation (bit 7), as in fuzz_parser.
    ParseOptions opts;
    opts.decap = (data[0] & 0x80) != 0;
    const auto r =
        testing::parseBytes(data.data() + 1, data.size() - 1,
                            static_cast<LinkType>((data[0] & 0x7f) % kLinkTypeCount), opts);
    if (name.rfind("ok__", 0) == 0) {
      EXPECT_TRUE(r.ok) << layerName(r.p.malformed) << ": " << r.p.malformed_why;
      ++ok_seeds;
    } else if (name.rfind("bad__", 0) == 0) {
      const size_t end = name.find("__", 5);
      ASSERT_NE(end, std::string::npos);
      EXPECT_EQ(layerName(r.p.malformed), name.substr(5, end - 5));
      ++bad_seeds;
    } else {
      ADD_FAILURE() << "seed name must start with ok__ or bad__";
    }
  }
  EXPECT_GE(ok_seeds, 20u);
  EXPECT_GE(bad_seeds, 10u);
}

}  // namespace
}  // namespace statewall::dataplane
