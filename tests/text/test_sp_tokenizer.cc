#include <gtest/gtest.h>

#include <algorithm>

#include "core/atomic_file.h"
#include "core/error.h"
#include "text/sp_tokenizer.h"
#include "test_util.h"

namespace twistar {
namespace {

// A small corpus with the shape of the real one: item text and explanation sentences.
std::vector<std::string> corpus() {
  const std::vector<std::string> names = {"velvet lipstick", "matte lip colour", "lash mascara",
                                          "day cream", "night serum", "nail lacquer",
                                          "rose lip balm", "lip scrub", "eye liner pencil"};
  std::vector<std::string> texts;
  for (size_t i = 0; i < names.size(); ++i)
    for (size_t j = 0; j < names.size(); ++j) {
      if (i == j) continue;
      texts.push_back(std::to_string(3 + (i * j) % 17) + " shoppers bought both \"" + names[i] +
                      "\" and \"" + names[j] + "\".");
      texts.push_back("Users who buy \"" + names[i] + "\" also buy \"" + names[j] +
                      "\": they serve the same need.");
    }
  return texts;
}

const std::vector<int32_t> kLevels = {16, 16, 8};

SpTokenizerOptions small() {
  SpTokenizerOptions o;
  o.vocab_size = 400;
  return o;
}

class SpTokenizerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    tok_ = new SpTokenizer(SpTokenizer::train(corpus(), kLevels, small(), *dir_ / "sp.model"));
  }
  static void TearDownTestSuite() {
    delete tok_;
    delete dir_;
  }
  static testing::TempDir* dir_;
  static SpTokenizer* tok_;
};
testing::TempDir* SpTokenizerTest::dir_ = nullptr;
SpTokenizer* SpTokenizerTest::tok_ = nullptr;

TEST_F(SpTokenizerTest, RoundTripsText) {
  for (const std::string text :
       {"12 shoppers bought both \"velvet lipstick\" and \"lip scrub\".",
        "Unseen words: zyxwv qüé 日本 emoji 🙂, tabs\tand  double spaces.",
        "<think>they share a brand</think> <a_3><b_15><c_7>"}) {
    const auto ids = tok_->encode(text);
    EXPECT_EQ(tok_->decode(ids), text);
    for (int id : ids) EXPECT_NE(id, tok_->unk_id()) << text;
  }
}

TEST_F(SpTokenizerTest, SidTokensAreSinglePiecesNeverMergedWithText) {
  EXPECT_EQ(tok_->sid_level_sizes(), kLevels);
  std::set<int> ids;
  for (int l = 0; l < 3; ++l)
    for (int c = 0; c < kLevels[l]; ++c) {
      const int id = tok_->sid_token_id(l, c);
      EXPECT_TRUE(tok_->is_sid_token(id));
      ids.insert(id);
      // Glued to text on both sides, the token still comes out whole.
      const std::string token = SpTokenizer::sid_token(l, c);
      const auto enc = tok_->encode("lip" + token + "scrub");
      EXPECT_EQ(std::count(enc.begin(), enc.end(), id), 1) << token;
    }
  EXPECT_EQ(ids.size(), 40u);
  const std::string sid = tok_->sid_text({3, 15, 7});
  EXPECT_EQ(sid, "<a_3><b_15><c_7>");
  const auto pieces = tok_->pieces("buy " + sid + " now");
  EXPECT_NE(std::find(pieces.begin(), pieces.end(), "<b_15>"), pieces.end());
  int sid_count = 0;
  for (int id : tok_->encode("buy " + sid + " now")) sid_count += tok_->is_sid_token(id);
  EXPECT_EQ(sid_count, 3);
  for (int id : tok_->encode("velvet lipstick and 42 shoppers")) EXPECT_FALSE(tok_->is_sid_token(id));
  EXPECT_THROW(tok_->sid_token_id(2, 8), InputError);
  EXPECT_THROW(tok_->sid_token_id(3, 0), InputError);
  EXPECT_THROW(tok_->sid_text({1, 2, 3, 4}), InputError);
}

TEST_F(SpTokenizerTest, SpecialTokensAreSingleIds) {
  const std::vector<int> specials = {tok_->bos_id(),  tok_->eos_id(),  tok_->think_id(),
                                     tok_->think_end_id(), tok_->sep_id(), tok_->hist_id(),
                                     tok_->target_id()};
  ASSERT_EQ(specials.size(), SpTokenizer::special_tokens().size());
  for (size_t k = 0; k < specials.size(); ++k) {
    EXPECT_EQ(tok_->encode(SpTokenizer::special_tokens()[k]).back(), specials[k]);
    EXPECT_FALSE(tok_->is_sid_token(specials[k]));
    const auto in_text = tok_->encode("a" + SpTokenizer::special_tokens()[k] + "b");
    EXPECT_EQ(std::count(in_text.begin(), in_text.end(), specials[k]), 1);
  }
  std::set<int> distinct(specials.begin(), specials.end());
  distinct.insert(tok_->pad_id());
  distinct.insert(tok_->unk_id());
  EXPECT_EQ(distinct.size(), specials.size() + 2);
  EXPECT_EQ(tok_->pad_id(), 0);
}

TEST_F(SpTokenizerTest, TrainingIsDeterministicAndLoadsBack) {
  const SpTokenizer again = SpTokenizer::train(corpus(), kLevels, small(), *dir_ / "again.model");
  EXPECT_EQ(read_file(*dir_ / "sp.model"), read_file(*dir_ / "again.model"));
  const SpTokenizer loaded = SpTokenizer::load(*dir_ / "sp.model");
  EXPECT_EQ(loaded.vocab_size(), tok_->vocab_size());
  EXPECT_EQ(loaded.sid_level_sizes(), kLevels);
  const std::string text = "<bos>3 shoppers bought <a_1><b_2><c_3><eos>";
  EXPECT_EQ(loaded.encode(text), tok_->encode(text));
  EXPECT_EQ(loaded.think_id(), tok_->think_id());
}

TEST(SpTokenizer, ErrorsNameTheProblem) {
  testing::TempDir dir;
  testing::write_text(dir / "junk.model", "not a model");
  try {
    SpTokenizer::load(dir / "junk.model");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("junk.model"), std::string::npos);
  }
  SpTokenizerOptions tiny = small();
  tiny.vocab_size = 300;
  EXPECT_THROW(SpTokenizer::train(corpus(), {256, 256}, tiny, dir / "x.model"), InputError);
}

}  // namespace
}  // namespace twistar
