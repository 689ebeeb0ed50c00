// Interaction-log loaders (format A, LC-Rec, RecBole, CSV) and the k-core / grouping step they
// share. Every fixture is written by the test itself; the shared benchmark data is only read.
#include <gtest/gtest.h>
#include <zlib.h>

#include <filesystem>
#include <functional>
#include <random>
#include <string>
#include <unordered_map>

#include "core/atomic_file.h"
#include "core/error.h"
#include "data/kcore.h"
#include "data/loader.h"
#include "test_util.h"

namespace twistar {
namespace {

using testing::TempDir;
using testing::write_text;

/// The message of the InputError `f` throws ("" and a test failure if it throws none).
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

/// Raw-id sequences, to compare datasets without depending on index assignment.
std::vector<std::vector<std::string>> raw_sequences(const Dataset& d) {
  std::vector<std::vector<std::string>> out;
  for (const auto& seq : d.sequences) {
    out.emplace_back();
    for (ItemIndex i : seq) out.back().push_back(d.item_ids[i]);
  }
  return out;
}

using Raw = std::vector<std::vector<std::string>>;
using Strings = std::vector<std::string>;

// ---------------------------------------------------------------------------------------------
// k-core and dataset_from_interactions

TEST(KCoreTest, RemovesUntilStable) {
  // Dropping d leaves u4 with one interaction, which leaves c with one, which leaves u3 with one:
  // a single pass would stop early.
  std::vector<Interaction> xs = {{"u1", "a", 1}, {"u1", "b", 2}, {"u2", "a", 1}, {"u2", "b", 2},
                                 {"u3", "b", 1}, {"u3", "c", 2}, {"u4", "c", 1}, {"u4", "d", 2}};
  kcore_filter(xs, 2);
  ASSERT_EQ(xs.size(), 4u);
  for (const auto& x : xs) {
    EXPECT_TRUE(x.user == "u1" || x.user == "u2") << x.user;
    EXPECT_TRUE(x.item == "a" || x.item == "b") << x.item;
  }
  EXPECT_EQ(xs[0].user, "u1");  // survivors keep their input order
  EXPECT_EQ(xs[3].item, "b");
}

TEST(KCoreTest, SmallKIsNoOp) {
  std::vector<Interaction> xs = {{"u1", "a", 1}, {"u2", "b", 2}};
  kcore_filter(xs, 0);
  EXPECT_EQ(xs.size(), 2u);
  kcore_filter(xs, 1);
  EXPECT_EQ(xs.size(), 2u);
  kcore_filter(xs, 2);
  EXPECT_TRUE(xs.empty());
}

TEST(KCoreTest, DatasetSortsPerUserWithStableTies) {
  std::vector<Interaction> xs = {{"bob", "x", 30}, {"amy", "y", 5}, {"bob", "z", 10},
                                 {"bob", "y", 30}, {"amy", "x", 5}, {"bob", "w", 20}};
  std::unordered_map<std::string, ItemMeta> meta;
  meta["y"].title = "Wye";
  Dataset d = dataset_from_interactions("toy", xs, 0, meta);
  EXPECT_EQ(d.name, "toy");
  EXPECT_EQ(d.user_ids, (Strings{"bob", "amy"}));  // order of first appearance
  EXPECT_EQ(raw_sequences(d), (Raw{{"z", "w", "x", "y"}, {"y", "x"}}));
  // Items are numbered by first appearance in the sorted, user-ordered sequences.
  EXPECT_EQ(d.item_ids, (Strings{"z", "w", "x", "y"}));
  EXPECT_EQ(d.items[*d.find_item("y")].title, "Wye");
  EXPECT_TRUE(d.items[*d.find_item("x")].empty());
}

TEST(KCoreTest, LargeLogIsFilteredToAValidCore) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> user(0, 19999), item(0, 4999);
  std::vector<Interaction> xs;
  for (int i = 0; i < 300000; ++i)
    xs.push_back({"u" + std::to_string(user(rng)), "i" + std::to_string(item(rng)), i});
  Dataset d = dataset_from_interactions("big", std::move(xs), 5);
  ASSERT_GT(d.num_users(), 1000);
  std::vector<int> item_count(d.num_items(), 0);
  for (const auto& seq : d.sequences) {
    EXPECT_GE(seq.size(), 5u);
    for (ItemIndex i : seq) ++item_count[i];
  }
  for (int c : item_count) EXPECT_GE(c, 5);
}

// ---------------------------------------------------------------------------------------------
// Format A: sequences.txt (+ item_map.tsv, user_map.tsv, item_meta.jsonl)

void write_format_a(const TempDir& dir) {
  write_text(dir / "sequences.txt", "1 1 2 3\n2 3 1\n");
  write_text(dir / "item_map.tsv", "1\tB001\n2\tB002\n3\tB003\n");
  write_text(dir / "user_map.tsv", "1\tUA\n2\tUB\n");
  write_text(dir / "item_meta.jsonl",
             "{\"item_idx\": 1, \"title\": null, \"brand\": \"OPI\", \"categories\": [\"Makeup\", "
             "\"Nails\"], \"short_text\": \"nail lacquer\"}\n"
             "{\"item_idx\": 3, \"title\": \"Third\", \"brand\": null, \"categories\": []}\n");
}

TEST(LoaderSequences, ReadsZeroBasedIndicesMapsAndMeta) {
  TempDir dir;
  write_format_a(dir);
  Dataset d = load_dataset(dir.str());
  ASSERT_EQ(d.num_users(), 2);
  ASSERT_EQ(d.num_items(), 3);
  EXPECT_EQ(d.sequences[0], (Sequence{0, 1, 2}));  // file id 1 is index 0
  EXPECT_EQ(d.sequences[1], (Sequence{2, 0}));
  EXPECT_EQ(d.item_ids, (Strings{"B001", "B002", "B003"}));
  EXPECT_EQ(d.user_ids, (Strings{"UA", "UB"}));
  EXPECT_EQ(d.items[0].brand, "OPI");
  EXPECT_EQ(d.items[0].categories, (Strings{"Makeup", "Nails"}));
  EXPECT_EQ(d.items[0].short_text, "nail lacquer");
  EXPECT_TRUE(d.items[0].title.empty());
  EXPECT_EQ(d.items[2].title, "Third");
  EXPECT_TRUE(d.items[1].empty());
  EXPECT_EQ(*d.find_item("B003"), 2);
}

TEST(LoaderSequences, MalformedLinesNameFileAndLine) {
  TempDir dir;
  write_format_a(dir);
  write_text(dir / "sequences.txt", "1 1 2\n2 3 x\n");
  std::string msg = input_error([&] { load_dataset(dir.str()); });
  EXPECT_NE(msg.find("sequences.txt:2"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'x'"), std::string::npos) << msg;

  write_text(dir / "sequences.txt", "1 1 2\n");
  write_text(dir / "item_meta.jsonl", "{\"item_idx\": 1}\n{\"item_idx\": \"two\"}\n");
  msg = input_error([&] { load_dataset(dir.str()); });
  EXPECT_NE(msg.find("item_meta.jsonl:2"), std::string::npos) << msg;
  EXPECT_NE(msg.find("item_idx"), std::string::npos) << msg;
}

TEST(LoaderDetect, RecognisesEachFormat) {
  TempDir a, lcrec, recbole, csv, amazon, empty;
  write_format_a(a);
  write_text(lcrec / "X.inter.json", "{}");
  write_text(recbole / "X.inter", "user_id:token\titem_id:token\n");
  write_text(csv / "log.csv", "u,i,1\n");
  write_text(csv / "log.tsv.gz", "");
  write_text(amazon / "reviews_Beauty_5.json.gz", "");
  EXPECT_EQ(detect_format(a.str()), "sequences");
  EXPECT_EQ(detect_format((a / "sequences.txt").string()), "sequences");
  EXPECT_EQ(detect_format(lcrec.str()), "lcrec");
  EXPECT_EQ(detect_format(recbole.str()), "recbole");
  EXPECT_EQ(detect_format((recbole / "X.inter").string()), "recbole");
  EXPECT_EQ(detect_format((csv / "log.csv").string()), "csv");
  EXPECT_EQ(detect_format((csv / "log.tsv.gz").string()), "csv");
  EXPECT_EQ(detect_format(amazon.str()), "amazon-raw");
  EXPECT_THROW(detect_format(empty.str()), InputError);
  EXPECT_THROW(detect_format((empty / "missing").string()), InputError);
}

// ---------------------------------------------------------------------------------------------
// LC-Rec: X.inter.json + X.item.json

TEST(LoaderSequences, DeepNestingIsAnErrorNotACrash) {
  TempDir dir;
  write_format_a(dir);
  // 100k levels overflowed the stack of the recursive parser; the limit stops it first.
  write_text(dir / "item_meta.jsonl", "{\"item_idx\": 1}\n{\"item_idx\": 2, \"x\": " +
                                          std::string(100000, '[') + std::string(100000, ']') + "}\n");
  std::string msg = input_error([&] { load_dataset(dir.str()); });
  EXPECT_NE(msg.find("item_meta.jsonl:2"), std::string::npos) << msg;
  EXPECT_NE(msg.find("nested deeper than 64 levels"), std::string::npos) << msg;
  // Brackets inside strings do not count, and 64 levels are fine.
  write_text(dir / "item_meta.jsonl", "{\"item_idx\": 1, \"title\": \"" + std::string(200, '[') + "\", \"x\": " +
                                          std::string(63, '[') + std::string(63, ']') + "}\n");
  EXPECT_EQ(load_dataset(dir.str()).items[0].title, std::string(200, '['));
}

TEST(LoaderCsv, TruncatedGzipIsAnErrorNamingTheFile) {
  TempDir dir;
  std::string text;
  std::mt19937 rng(7);  // random items, so the compressed stream is long enough to cut
  for (int u = 1; u <= 3000; ++u)
    for (int t = 0; t < 5; ++t) text += fmt::format("u{}\ti{}\t{}\n", u, rng() % 5000, t);
  write_gz(dir / "log.tsv.gz", text);
  EXPECT_EQ(load_csv((dir / "log.tsv.gz").string(), 0, 0).num_users(), 3000);
  // The same file cut in the middle, as an interrupted download leaves it.
  const std::string bytes = read_file(dir / "log.tsv.gz");
  write_text(dir / "cut.tsv.gz", bytes.substr(0, bytes.size() / 2));
  std::string msg = input_error([&] { load_csv((dir / "cut.tsv.gz").string(), 0, 0); });
  EXPECT_NE(msg.find("cut.tsv.gz"), std::string::npos) << msg;
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
}

TEST(LoaderLcrec, ReadsSequencesAndMetaKeepingFileIds) {
  TempDir dir;
  // Users "10" and "2": numeric order puts 2 first. Items 0..3 keep their file ids as indices
  // even though item 3 appears first.
  write_text(dir / "Toy.inter.json", "{\"10\": [3, 0, 1], \"2\": [2, 3]}");
  write_text(
      dir / "Toy.item.json",
      "{\"3\": {\"title\": \"Scope\", \"description\": \"A microscope.\", \"brand\": \"Zeiss\","
      " \"categories\": \"Industrial & Scientific, Lab,Optics\"},\n"
      " \"0\": {\"title\": \"Pipette\", \"brand\": null, \"categories\": \"\"}}");
  Dataset d = load_dataset(dir.str());
  EXPECT_EQ(d.user_ids, (Strings{"2", "10"}));
  EXPECT_EQ(d.item_ids, (Strings{"0", "1", "2", "3"}));
  EXPECT_EQ(d.sequences[0], (Sequence{2, 3}));
  EXPECT_EQ(d.sequences[1], (Sequence{3, 0, 1}));
  EXPECT_EQ(d.items[3].title, "Scope");
  EXPECT_EQ(d.items[3].description, "A microscope.");
  EXPECT_EQ(d.items[3].brand, "Zeiss");
  EXPECT_EQ(d.items[3].categories, (Strings{"Industrial & Scientific", "Lab", "Optics"}));
  EXPECT_EQ(d.items[0].title, "Pipette");
  EXPECT_TRUE(d.items[0].categories.empty());
  EXPECT_TRUE(d.items[1].empty());
}

TEST(LoaderLcrec, StringIdsKeepFileOrderAndFirstAppearance) {
  TempDir dir;
  write_text(dir / "S.inter.json",
             "{\"zed\": [\"b\", \"a\"], \"amy\": [\"c\", \"b\"], \"nil\": []}");
  Dataset d = load_lcrec_dir(dir.str());
  EXPECT_EQ(d.user_ids, (Strings{"zed", "amy"}));  // the empty user is dropped
  EXPECT_EQ(d.item_ids, (Strings{"b", "a", "c"}));
  EXPECT_EQ(raw_sequences(d), (Raw{{"b", "a"}, {"c", "b"}}));
}

TEST(LoaderLcrec, ErrorsNameFileLineAndField) {
  TempDir dir;
  write_text(dir / "E.inter.json", "{\"0\": [0, 1],\n \"1\": [2, 3,]\n}");
  std::string msg = input_error([&] { load_lcrec_dir(dir.str()); });
  EXPECT_NE(msg.find("E.inter.json:2"), std::string::npos) << msg;

  write_text(dir / "E.inter.json", "{\"0\": [0, 1],\n \"7\": [2, 1.5]\n}");
  msg = input_error([&] { load_lcrec_dir(dir.str()); });
  EXPECT_NE(msg.find("E.inter.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("user '7'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("position 1"), std::string::npos) << msg;

  // Nesting past the limit (a crash of the recursive parser once) is an error on its line.
  write_text(dir / "E.inter.json", "{\"0\": [0, 1]}");
  write_text(dir / "E.item.json", "{\"0\": {},\n \"1\": " + std::string(50000, '{') + "}");
  msg = input_error([&] { load_lcrec_dir(dir.str()); });
  EXPECT_NE(msg.find("E.item.json:2"), std::string::npos) << msg;
  EXPECT_NE(msg.find("nested deeper"), std::string::npos) << msg;

  write_text(dir / "E.item.json", "{\"0\": {\"title\": \"ok\"},\n \"1\": {\"categories\": 5}}");
  msg = input_error([&] { load_lcrec_dir(dir.str()); });
  EXPECT_NE(msg.find("E.item.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("item '1'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'categories'"), std::string::npos) << msg;

  write_text(dir / "E.item.json", "{\"0\": {\"title\": [\"not\", \"text\"]}}");
  msg = input_error([&] { load_lcrec_dir(dir.str()); });
  EXPECT_NE(msg.find("'title'"), std::string::npos) << msg;

  write_text(dir / "F.inter.json", "{}");
  msg = input_error([&] { load_lcrec_dir(dir.str()); });
  EXPECT_NE(msg.find("several"), std::string::npos) << msg;

  TempDir empty;
  msg = input_error([&] { load_lcrec_dir(empty.str()); });
  EXPECT_NE(msg.find("no *.inter.json"), std::string::npos) << msg;
}

TEST(LoaderLcrec, SharedScientificHasPublishedCounts) {
  const std::string dir = std::string(TWISTAR_SHARED_DATA) + "/amazon2018_scientific";
  if (!std::filesystem::exists(dir)) GTEST_SKIP() << dir << " is not available";
  Dataset d = load_dataset(dir);
  EXPECT_EQ(d.num_users(), 8317);
  EXPECT_EQ(d.num_items(), 4344);
  EXPECT_EQ(d.num_interactions(), 58492u);
  EXPECT_EQ(d.user_ids.front(), "0");
  EXPECT_EQ(d.item_ids[17], "17");
  EXPECT_FALSE(d.items[0].title.empty());
  EXPECT_FALSE(d.items[0].categories.empty());
}

// ---------------------------------------------------------------------------------------------
// RecBole atomic files

TEST(LoaderRecbole, ReadsInterAndItemFromDirOrFile) {
  TempDir dir;
  write_text(dir / "Toy.inter",
             "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
             "u1\ti1\t5.0\t100.5\n"
             "u2\ti2\t4.0\t50\n"
             "u1\ti2\t3.0\t100.25\n"
             "u1\ti3\t3.0\t100.5\n");
  write_text(dir / "Toy.item",
             "item_id:token\ttitle:token_seq\tbrand:token\tcategories:token_seq\n"
             "i1\tRed Lipstick\tAcme\tMakeup, Lips\n"
             "i2\tNail File\t\tTools\n");
  for (const std::string& path : {dir.str(), (dir / "Toy.inter").string()}) {
    Dataset d = load_dataset(path);
    EXPECT_EQ(d.name, "Toy");
    EXPECT_EQ(d.user_ids, (Strings{"u1", "u2"}));
    // 100.25 sorts before 100.5; the two 100.5 rows keep file order.
    EXPECT_EQ(raw_sequences(d), (Raw{{"i2", "i1", "i3"}, {"i2"}}));
    const ItemMeta& lipstick = d.items[*d.find_item("i1")];
    EXPECT_EQ(lipstick.title, "Red Lipstick");
    EXPECT_EQ(lipstick.brand, "Acme");
    EXPECT_EQ(lipstick.categories, (Strings{"Makeup", "Lips"}));
    EXPECT_EQ(d.items[*d.find_item("i2")].categories, (Strings{"Tools"}));
    EXPECT_TRUE(d.items[*d.find_item("i3")].empty());
  }
}

TEST(LoaderRecbole, WithoutTimestampsLineOrderIsTime) {
  TempDir dir;
  write_text(dir / "N.inter", "item_id:token\tuser_id:token\nb\tu\na\tu\nc\tv\n");
  Dataset d = load_recbole(dir.str());
  EXPECT_EQ(raw_sequences(d), (Raw{{"b", "a"}, {"c"}}));
}

TEST(LoaderRecbole, ErrorsNameFileLineAndField) {
  TempDir dir;
  const auto path = (dir / "B.inter").string();
  write_text(path, "user:token\titem_id:token\n");
  std::string msg = input_error([&] { load_recbole(path); });
  EXPECT_NE(msg.find("B.inter:1"), std::string::npos) << msg;
  EXPECT_NE(msg.find("user_id"), std::string::npos) << msg;

  write_text(path, "user_id:token\titem_id:token\ttimestamp:float\nu\ti\t1\nu\ti\tyesterday\n");
  msg = input_error([&] { load_recbole(path); });
  EXPECT_NE(msg.find("B.inter:3"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'timestamp'"), std::string::npos) << msg;

  write_text(path, "user_id:token\titem_id:token\ttimestamp:float\nu\ti\t1\nu\n");
  msg = input_error([&] { load_recbole(path); });
  EXPECT_NE(msg.find("B.inter:3"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'item_id'"), std::string::npos) << msg;

  write_text(path, "user_id:token\titem_id:token\nu\ti\n");
  write_text(dir / "B.item", "item_id:token\ttitle:token_seq\ni\tA\ni\tB\n");
  msg = input_error([&] { load_recbole(path); });
  EXPECT_NE(msg.find("B.item:3"), std::string::npos) << msg;
  EXPECT_NE(msg.find("appears twice"), std::string::npos) << msg;
}

// ---------------------------------------------------------------------------------------------
// CSV / TSV interaction logs

TEST(LoaderCsv, HeaderQuotesAndStableTies) {
  TempDir dir;
  const auto path = (dir / "log.csv").string();
  write_text(path,
             "user,item,timestamp,comment\n"
             "u1,\"Pens, blue\",20,\"said \"\"hi\"\"\"\n"
             "u2,b,5.5,\n"
             "u1,a,10\n"
             "u1,c,20\r\n"
             "u2,24\" monitor, 6\n");
  Dataset d = load_csv(path, 0, 0);
  EXPECT_EQ(d.name, "log");
  EXPECT_EQ(d.user_ids, (Strings{"u1", "u2"}));
  EXPECT_EQ(raw_sequences(d), (Raw{{"a", "Pens, blue", "c"}, {"b", "24\" monitor"}}));
}

TEST(LoaderCsv, QuotedFieldMaySpanLines) {
  TempDir dir;
  const auto path = (dir / "log.csv").string();
  write_text(path, "u1,\"two\nlines\",1\nu1,x,2\n");
  Dataset d = load_csv(path, 0, 0);
  EXPECT_EQ(raw_sequences(d), (Raw{{"two\nlines", "x"}}));
}

TEST(LoaderCsv, GzippedTsvWithoutHeaderAndKCore) {
  TempDir dir;
  const auto path = (dir / "log.tsv.gz").string();
  std::string text;
  // u1..u3 each rate a, b and c. d is rated once, so it leaves the 2-core, and then u4 is left
  // with a single interaction and leaves too.
  for (int u = 1; u <= 3; ++u)
    for (const char* item : {"a", "b", "c"}) text += fmt::format("u{}\t{}\t{}\n", u, item, u);
  text += "u4\ta\t9\nu4\td\t9\n";
  write_gz(path, text);
  Dataset d = load_dataset(path, LoadOptions{"auto", 0, 2});
  EXPECT_EQ(d.num_users(), 3);
  EXPECT_EQ(d.item_ids, (Strings{"a", "b", "c"}));
  EXPECT_EQ(load_csv(path, 0, 0).num_users(), 4);
  EXPECT_EQ(load_csv(path, 0, 1).num_users(), 4);
  std::string msg = input_error([&] { load_csv(path, 0, 5); });
  EXPECT_NE(msg.find("5-core"), std::string::npos) << msg;
}

TEST(LoaderCsv, ErrorsNameFileLineAndField) {
  TempDir dir;
  const auto path = (dir / "bad.csv").string();
  write_text(path, "user,item,timestamp\nu1,a,1\nu1,b,noon\n");
  std::string msg = input_error([&] { load_csv(path, 0, 0); });
  EXPECT_NE(msg.find("bad.csv:3"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'timestamp'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("noon"), std::string::npos) << msg;

  write_text(path, "u1,a,1\n\nu1,b\n");
  msg = input_error([&] { load_csv(path, 0, 0); });
  EXPECT_NE(msg.find("bad.csv:3"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'timestamp'"), std::string::npos) << msg;

  write_text(path, "u1,a,1\n,b,2\n");
  msg = input_error([&] { load_csv(path, 0, 0); });
  EXPECT_NE(msg.find("bad.csv:2"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'user'"), std::string::npos) << msg;

  write_text(path, "u1,a,1\nu1,\"open,2\nu2,b,3\n");
  msg = input_error([&] { load_csv(path, 0, 0); });
  EXPECT_NE(msg.find("bad.csv:2"), std::string::npos) << msg;
  EXPECT_NE(msg.find("never closed"), std::string::npos) << msg;

  write_text(path, "u1,a,nan\n");  // a header (non-numeric third field), then nothing
  EXPECT_EQ(load_csv(path, 0, 0).num_users(), 0);
  write_text(path, "u1,a,1\nu1,b,inf\n");
  msg = input_error([&] { load_csv(path, 0, 0); });
  EXPECT_NE(msg.find("bad.csv:2"), std::string::npos) << msg;
}

}  // namespace
}  // namespace twistar
