// The raw Amazon 2014 release: JSON review lines plus Python-literal metadata lines, both gzipped.
#include <gtest/gtest.h>
#include <zlib.h>

#include <filesystem>
#include <functional>
#include <string>

#include "core/error.h"
#include "data/loader.h"
#include "data/pyliteral.h"
#include "test_util.h"

namespace twistar {
namespace {

using testing::TempDir;
using Strings = std::vector<std::string>;

std::string input_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an InputError";
  return {};
}

void write_gz(const std::filesystem::path& path, const std::string& content) {
  gzFile gz = gzopen(path.string().c_str(), "wb");
  ASSERT_NE(gz, nullptr);
  ASSERT_EQ(gzwrite(gz, content.data(), static_cast<unsigned>(content.size())),
            static_cast<int>(content.size()));
  gzclose(gz);
}

std::string review(const std::string& user, const std::string& asin, int64_t time) {
  return fmt::format(
      "{{\"reviewerID\": \"{}\", \"asin\": \"{}\", \"reviewerName\": \"N\", \"helpful\": [0, 0], "
      "\"reviewText\": \"ok\", \"overall\": 5.0, \"unixReviewTime\": {}, \"reviewTime\": \"x\"}}\n",
      user, asin, time);
}

// ---------------------------------------------------------------------------------------------
// Python literals

TEST(AmazonPyLiteral, ParsesReprOutput) {
  auto v = parse_python_literal(
      "{'asin': 'B01', 'title': \"Kid's \\\"Tutu\\\"\", 'price': 3.17, 'n': -12, 'big': 10L, "
      "'ok': True, 'no': False, 'brand': None, 'salesRank': {'Beauty': 2011}, "
      "'categories': [['Beauty', 'Makeup', 'Nails'], ('A', 'B',)], 'esc': 'it\\'s\\ta\\\\b', "
      "'exp': 1e-05, 'empty': {}, 'list': [], 3: 'int key',}");
  EXPECT_EQ(v["asin"], "B01");
  EXPECT_EQ(v["title"], "Kid's \"Tutu\"");
  EXPECT_DOUBLE_EQ(v["price"].get<double>(), 3.17);
  EXPECT_EQ(v["n"].get<int64_t>(), -12);
  EXPECT_EQ(v["big"].get<int64_t>(), 10);
  EXPECT_EQ(v["ok"], true);
  EXPECT_EQ(v["no"], false);
  EXPECT_TRUE(v["brand"].is_null());
  EXPECT_EQ(v["salesRank"]["Beauty"], 2011);
  EXPECT_EQ(v["categories"][0], (Strings{"Beauty", "Makeup", "Nails"}));
  EXPECT_EQ(v["categories"][1], (Strings{"A", "B"}));
  EXPECT_EQ(v["esc"], "it's\ta\\b");
  EXPECT_DOUBLE_EQ(v["exp"].get<double>(), 1e-05);
  EXPECT_TRUE(v["empty"].is_object());
  EXPECT_TRUE(v["list"].is_array());
  EXPECT_EQ(v["3"], "int key");
}

TEST(AmazonPyLiteral, DecodesEscapesToValidUtf8) {
  // Python 2 byte strings spell UTF-8 byte by byte; Python 3 and u'' strings mean code points.
  EXPECT_EQ(parse_python_literal("'caf\\xc3\\xa9'"), "caf\xc3\xa9");
  EXPECT_EQ(parse_python_literal("'caf\\xe9'"), "caf\xc3\xa9");
  EXPECT_EQ(parse_python_literal("u'caf\\xc3'"), "caf\xc3\x83");
  EXPECT_EQ(parse_python_literal("u'\\u00e9\\U0001F600'"), "\xc3\xa9\xf0\x9f\x98\x80");
  EXPECT_EQ(parse_python_literal("u'\\ud83d\\ude00'"), "\xf0\x9f\x98\x80");
  EXPECT_EQ(parse_python_literal("'\\101\\0'"), std::string("A\0", 2));
  EXPECT_EQ(parse_python_literal("'a\\qb'"), "a\\qb");
  EXPECT_EQ(parse_python_literal("r'a\\'b'"), "a\\'b");
  EXPECT_EQ(parse_python_literal("'raw \xff byte'"), "raw \xc3\xbf byte");
  // Whatever came in, the value must serialise.
  EXPECT_NO_THROW(parse_python_literal("['\\xff\\xfe', '\\xed\\xa0\\x80']").dump());
}

TEST(AmazonPyLiteral, ErrorsGiveTheColumn) {
  for (const char* bad : {"{'a': 'open", "{'a' 1}", "[1, 2", "{'a': Nope}", "[1] x", "1.2.3",
                          "{'a': 1,, }", "", "'\\x4'"}) {
    std::string msg = input_error([&] { parse_python_literal(bad); });
    EXPECT_NE(msg.find("column"), std::string::npos) << bad << " -> " << msg;
  }
  std::string deep(1000, '[');
  EXPECT_THROW(parse_python_literal(deep), InputError);
}

// ---------------------------------------------------------------------------------------------
// Raw dumps

/// Three users who reviewed three items each (two of them at the same time), plus a user and an
/// item that only a 1-core keeps.
void write_beauty(const TempDir& dir) {
  std::string reviews = review("U1", "A", 300) + review("U1", "B", 100) + review("U1", "C", 300) +
                        review("U2", "B", 50) + review("U2", "A", 60) + review("U2", "C", 70) +
                        review("U3", "C", 1) + review("U3", "B", 2) + review("U3", "A", 3) +
                        review("U4", "Z", 5);
  write_gz(dir / "reviews_Beauty_5.json.gz", reviews);
  write_gz(dir / "meta_Beauty.json.gz",
           "{'asin': 'A', 'title': \"Kid's Polish\", 'brand': 'OPI', 'price': 3.5, "
           "'description': 'Shiny \\'red\\' polish', "
           "'categories': [['Beauty', 'Makeup', 'Nails', 'Nail Polish'], ['Beauty', 'Tools']]}\n"
           "{'asin': 'Q', 'title': 'unused item', 'categories': [['Beauty']]}\n"
           "{'asin': 'B', 'salesRank': {'Beauty': 1}, 'categories': [['Skin Care', 'Face']], "
           "'related': {'also_bought': ['A', 'C']}, 'brand': None}\n");
}

TEST(AmazonRaw, LoadsReviewsAndMeta) {
  TempDir dir;
  write_beauty(dir);
  Dataset d = load_amazon_raw(dir.str(), 3);
  EXPECT_EQ(d.name, "Beauty");
  EXPECT_EQ(d.user_ids, (Strings{"U1", "U2", "U3"}));
  EXPECT_EQ(d.item_ids, (Strings{"B", "A", "C"}));
  // U1's A and C share a timestamp and keep file order.
  auto b = *d.find_item("B"), a = *d.find_item("A"), c = *d.find_item("C");
  EXPECT_EQ(d.sequences[0], (Sequence{b, a, c}));
  EXPECT_EQ(d.sequences[1], (Sequence{b, a, c}));
  EXPECT_EQ(d.sequences[2], (Sequence{c, b, a}));
  const ItemMeta& polish = d.items[a];
  EXPECT_EQ(polish.title, "Kid's Polish");
  EXPECT_EQ(polish.brand, "OPI");
  EXPECT_EQ(polish.description, "Shiny 'red' polish");
  // The first path only, without the dataset's own top-level category.
  EXPECT_EQ(polish.categories, (Strings{"Makeup", "Nails", "Nail Polish"}));
  EXPECT_EQ(d.items[b].categories, (Strings{"Skin Care", "Face"}));
  EXPECT_TRUE(d.items[b].brand.empty());
  EXPECT_TRUE(d.items[c].empty());
}

TEST(AmazonRaw, KCoreThroughLoadDatasetAndWithoutMeta) {
  TempDir dir;
  write_beauty(dir);
  std::filesystem::remove(dir / "meta_Beauty.json.gz");
  EXPECT_EQ(detect_format(dir.str()), "amazon-raw");
  Dataset all = load_dataset(dir.str(), LoadOptions{"auto", 0, 0});
  EXPECT_EQ(all.num_users(), 4);
  EXPECT_EQ(all.num_items(), 4);
  EXPECT_TRUE(all.items[0].empty());
  std::string msg = input_error([&] { load_dataset(dir.str()); });  // default k = 5
  EXPECT_NE(msg.find("5-core"), std::string::npos) << msg;
}

TEST(AmazonRaw, MultiWordCategoryIsDroppedFromPaths) {
  TempDir dir;
  write_gz(dir / "reviews_Sports_and_Outdoors_5.json.gz", review("U", "S", 1));
  write_gz(
      dir / "meta_Sports_and_Outdoors.json.gz",
      "{'asin': 'S', 'categories': [['Sports & Outdoors', 'Hunting & Fishing', 'Hunting']]}\n");
  Dataset d = load_amazon_raw(dir.str(), 0);
  EXPECT_EQ(d.name, "Sports_and_Outdoors");
  EXPECT_EQ(d.items[0].categories, (Strings{"Hunting & Fishing", "Hunting"}));
}

TEST(AmazonRaw, ReviewErrorsNameFileLineAndField) {
  TempDir dir;
  const auto path = dir / "reviews_Toys_5.json.gz";
  write_gz(path, review("U", "A", 1) + "{\"reviewerID\": \"U\", \"asin\": \n");
  std::string msg = input_error([&] { load_amazon_raw(dir.str(), 0); });
  EXPECT_NE(msg.find("reviews_Toys_5.json.gz:2"), std::string::npos) << msg;

  write_gz(path, review("U", "A", 1) + review("U", "B", 2) + "{\"reviewerID\": \"U\"}\n");
  msg = input_error([&] { load_amazon_raw(dir.str(), 0); });
  EXPECT_NE(msg.find("reviews_Toys_5.json.gz:3"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'asin'"), std::string::npos) << msg;

  write_gz(path, "{\"reviewerID\": \"U\", \"asin\": \"A\", \"unixReviewTime\": \"soon\"}\n");
  msg = input_error([&] { load_amazon_raw(dir.str(), 0); });
  EXPECT_NE(msg.find("reviews_Toys_5.json.gz:1"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'unixReviewTime'"), std::string::npos) << msg;

  write_gz(path, "[1, 2]\n");
  msg = input_error([&] { load_amazon_raw(dir.str(), 0); });
  EXPECT_NE(msg.find("reviews_Toys_5.json.gz:1"), std::string::npos) << msg;

  write_gz(dir / "reviews_Games_5.json.gz", "");
  msg = input_error([&] { load_amazon_raw(dir.str(), 0); });
  EXPECT_NE(msg.find("reviews_"), std::string::npos) << msg;
}

TEST(AmazonRaw, MetaErrorsNameFileLineAndField) {
  TempDir dir;
  write_gz(dir / "reviews_Toys_5.json.gz", review("U", "A", 1) + review("U", "B", 2));
  const auto meta = dir / "meta_Toys.json.gz";
  write_gz(meta, "{'asin': 'A', 'title': 'fine'}\n{'asin': 'B', 'title': 'broken}\n");
  std::string msg = input_error([&] { load_amazon_raw(dir.str(), 0); });
  EXPECT_NE(msg.find("meta_Toys.json.gz:2"), std::string::npos) << msg;
  EXPECT_NE(msg.find("column"), std::string::npos) << msg;

  write_gz(meta, "{'asin': 'A', 'categories': ['Toys', 'Dolls']}\n");
  msg = input_error([&] { load_amazon_raw(dir.str(), 0); });
  EXPECT_NE(msg.find("meta_Toys.json.gz:1"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'categories'"), std::string::npos) << msg;

  write_gz(meta, "{'asin': 'A'}\n{'asin': 'B', 'brand': ['x']}\n");
  msg = input_error([&] { load_amazon_raw(dir.str(), 0); });
  EXPECT_NE(msg.find("meta_Toys.json.gz:2"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'brand'"), std::string::npos) << msg;

  write_gz(meta, "{'title': 'no asin'}\n");
  msg = input_error([&] { load_amazon_raw(dir.str(), 0); });
  EXPECT_NE(msg.find("meta_Toys.json.gz:1"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'asin'"), std::string::npos) << msg;

  // Lines of items outside the dataset are skipped unparsed, broken or not.
  write_gz(meta, "{'asin': 'ZZZ', 'title': 'broken}\n{'asin': 'A', 'title': 'ok'}\n");
  EXPECT_EQ(load_amazon_raw(dir.str(), 0).items[0].title, "ok");
}

}  // namespace
}  // namespace twistar
