// The synthetic generator. It first builds a catalogue (categories, brands, items with text and a
// power-law popularity, related-item successors), then lets each user walk it. Every random choice
// comes from std::mt19937_64 through the small Rng below, so a seed gives the same dataset on every
// platform (the std:: distributions are not specified bit-for-bit across standard libraries).
#include "data/synth.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <optional>
#include <random>
#include <unordered_set>

#include "core/atomic_file.h"
#include "core/error.h"

namespace twistar {
namespace fs = std::filesystem;

namespace {

// Shape constants. They are not options: tests and models only need them fixed and plausible.

// A successor comes from the item's own leaf category, else from its leaf's complementary leaf,
// else from anywhere (noise no category explains).
constexpr double kSameLeafShare = 0.55;
constexpr double kComplementShare = 0.35;
// Successors are drawn ~ popularity^0.5: biased towards popular items, yet still item-specific.
constexpr double kSuccessorTemper = 0.5;
// An item's brand usually belongs to the item's top-level category.
constexpr double kHomeBrandShare = 0.85;
// P(length) ~ length^-2.5 gives a mean of ~9.4 for lengths 5..40, like the Amazon 5-core sets.
constexpr double kLengthExponent = 2.5;
// An earlier (but never the previous) item is accepted again this often: re-purchases are rare.
constexpr double kRepeatAcceptance = 0.05;
constexpr int kLeavesPerTop = 5;
constexpr int kMaxTries = 16;

class Rng {
 public:
  explicit Rng(uint64_t seed) : gen_(seed) {}
  double uniform() { return static_cast<double>(gen_() >> 11) * 0x1.0p-53; }
  /// Uniform in [0, n); the multiply-shift bias is far below anything a test could see.
  size_t below(size_t n) {
    return static_cast<size_t>((static_cast<unsigned __int128>(gen_()) * n) >> 64);
  }
  bool chance(double p) { return uniform() < p; }

 private:
  std::mt19937_64 gen_;
};

/// Independent streams per purpose, so e.g. changing `users` leaves the catalogue unchanged.
uint64_t stream_seed(uint64_t seed, uint64_t stream) {
  uint64_t z = seed + 0x9e3779b97f4a7c15ULL * (stream + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/// Draws ids in proportion to their weights (cumulative sums + binary search).
class WeightedSampler {
 public:
  void add(int32_t id, double weight) {
    ids_.push_back(id);
    cum_.push_back((cum_.empty() ? 0.0 : cum_.back()) + weight);
  }
  bool empty() const { return ids_.empty(); }
  int32_t sample(Rng& rng) const {
    double x = rng.uniform() * cum_.back();
    size_t k = static_cast<size_t>(std::upper_bound(cum_.begin(), cum_.end(), x) - cum_.begin());
    return ids_[std::min(k, ids_.size() - 1)];
  }

 private:
  std::vector<int32_t> ids_;
  std::vector<double> cum_;
};

struct LeafWords {
  const char* name;
  std::array<const char*, 4> nouns;
};
struct TopWords {
  const char* name;
  std::array<const char*, 10> adjectives;
  std::array<LeafWords, 6> leaves;
};

// Nouns are specific to a leaf and adjectives to a top-level category, so item text carries the
// category signal that content-based semantic IDs should pick up.
const std::array<TopWords, 6> kVocabulary = {{
    {"Skin Care",
     {"hydrating", "soothing", "brightening", "gentle", "nourishing", "oil-free", "vitamin c",
      "retinol", "fragrance-free", "daily"},
     {{{"Moisturizers", {"face cream", "lotion", "balm", "gel moisturizer"}},
       {"Cleansers", {"cleanser", "face wash", "cleansing foam", "micellar water"}},
       {"Serums", {"serum", "ampoule", "essence", "booster"}},
       {"Sunscreens", {"sunscreen", "sun lotion", "spf fluid", "sun stick"}},
       {"Masks", {"sheet mask", "clay mask", "sleeping mask", "peel-off mask"}},
       {"Eye Care", {"eye cream", "eye gel", "eye patches", "eye serum"}}}}},
    {"Makeup",
     {"matte", "long-lasting", "waterproof", "shimmer", "velvet", "sheer", "full-coverage", "nude",
      "vivid", "creamy"},
     {{{"Lipstick", {"lipstick", "lip gloss", "lip liner", "lip tint"}},
       {"Foundation", {"foundation", "concealer", "bb cream", "primer"}},
       {"Mascara", {"mascara", "lash primer", "brow gel", "eyeliner"}},
       {"Eyeshadow", {"eyeshadow palette", "eyeshadow stick", "glitter pigment", "eye crayon"}},
       {"Nail Polish", {"nail polish", "top coat", "base coat", "nail lacquer"}},
       {"Brushes", {"brush set", "blending sponge", "kabuki brush", "powder puff"}}}}},
    {"Hair Care",
     {"volumizing", "smoothing", "repairing", "color-safe", "sulfate-free", "argan", "keratin",
      "curl-defining", "strengthening", "lightweight"},
     {{{"Shampoo", {"shampoo", "dry shampoo", "clarifying shampoo", "shampoo bar"}},
       {"Conditioner", {"conditioner", "leave-in conditioner", "hair mask", "detangler"}},
       {"Styling", {"hair spray", "styling gel", "pomade", "texturizing spray"}},
       {"Hair Color", {"hair dye", "root touch-up", "color gloss", "toner"}},
       {"Hair Tools", {"hair dryer", "flat iron", "curling wand", "round brush"}},
       {"Treatments", {"hair oil", "scalp serum", "bond repair", "heat protectant"}}}}},
    {"Sports & Outdoors",
     {"lightweight", "durable", "breathable", "waterproof", "compact", "insulated", "reflective",
      "ergonomic", "quick-dry", "adjustable"},
     {{{"Camping", {"tent", "sleeping bag", "camp stove", "lantern"}},
       {"Cycling", {"bike helmet", "bike light", "cycling gloves", "water bottle cage"}},
       {"Fitness", {"yoga mat", "resistance bands", "dumbbells", "jump rope"}},
       {"Running", {"running shoes", "running belt", "arm band", "running socks"}},
       {"Hiking", {"backpack", "trekking poles", "hiking boots", "hydration pack"}},
       {"Swimming", {"swim goggles", "swim cap", "kickboard", "swim fins"}}}}},
    {"Toys & Games",
     {"colorful", "educational", "classic", "wooden", "magnetic", "deluxe", "mini", "interactive",
      "glow-in-the-dark", "family"},
     {{{"Puzzles", {"jigsaw puzzle", "3d puzzle", "floor puzzle", "puzzle cube"}},
       {"Building Sets", {"building blocks", "construction set", "marble run", "brick kit"}},
       {"Board Games", {"board game", "card game", "dice game", "strategy game"}},
       {"Dolls", {"doll", "dollhouse", "doll outfit", "baby doll"}},
       {"Action Figures", {"action figure", "robot figure", "dinosaur figure", "hero playset"}},
       {"Arts & Crafts", {"crayon set", "modeling clay", "bead kit", "sticker book"}}}}},
    {"Kitchen",
     {"nonstick", "stainless", "cast iron", "ceramic", "dishwasher-safe", "compact", "heavy-duty",
      "silicone", "bamboo", "professional"},
     {{{"Cookware", {"frying pan", "saucepan", "dutch oven", "wok"}},
       {"Bakeware", {"baking sheet", "muffin pan", "cake pan", "loaf pan"}},
       {"Knives", {"chef knife", "paring knife", "knife block", "sharpener"}},
       {"Coffee", {"coffee grinder", "french press", "pour-over kettle", "milk frother"}},
       {"Storage", {"food container", "spice rack", "bread box", "canister set"}},
       {"Utensils", {"spatula", "whisk", "tongs", "ladle"}}}}},
}};

const std::array<const char*, 16> kBrandStarts = {"Lu",  "Ver", "Sol", "Ka",  "Mi",  "Bel",
                                                  "Nor", "Ar",  "Zen", "Ola", "Tri", "Vi",
                                                  "Cor", "Pe",  "Ro",  "Elo"};
const std::array<const char*, 12> kBrandEnds = {"mora", "dex", "ia",   "ora", "ino", "va",
                                                "lux",  "ton", "ique", "ara", "en",  "ly"};

/// The catalogue: everything about items, before any user exists.
struct Catalog {
  std::vector<std::string> top_names, leaf_names, brand_names;
  std::vector<int32_t> leaf_top, leaf_vocab, complement, brand_top;
  std::vector<int32_t> item_leaf, item_brand;
  std::vector<std::vector<ItemIndex>> leaf_items;
  std::vector<double> popularity;
  std::vector<std::vector<ItemIndex>> successors;
  std::vector<ItemMeta> meta;
};

std::string with_round(const char* name, int round) {
  return round == 0 ? std::string(name) : fmt::format("{} {}", name, round + 1);
}

std::string title_case(const std::string& s) {
  std::string out = s;
  bool start = true;
  for (char& c : out) {
    if (start && c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    start = c == ' ' || c == '-';
  }
  return out;
}

std::string capitalize(std::string s) {
  if (!s.empty() && s[0] >= 'a' && s[0] <= 'z') s[0] = static_cast<char>(s[0] - 'a' + 'A');
  return s;
}

const TopWords& top_words(const Catalog& cat, int32_t leaf) {
  return kVocabulary[cat.leaf_top[leaf] % kVocabulary.size()];
}

void build_categories(const SynthOptions& opt, Rng& rng, Catalog& cat) {
  const int tops = std::max(1, (opt.categories + kLeavesPerTop - 1) / kLeavesPerTop);
  const int vocab_tops = static_cast<int>(kVocabulary.size());
  for (int t = 0; t < tops; ++t)
    cat.top_names.push_back(with_round(kVocabulary[t % vocab_tops].name, t / vocab_tops));
  int first_of_top = 0;
  for (int c = 0; c < opt.categories; ++c) {
    // Contiguous, balanced blocks of leaves per top-level category.
    int t = static_cast<int>(static_cast<int64_t>(c) * tops / opt.categories);
    if (c == 0 || t != cat.leaf_top.back()) first_of_top = c;
    int k = c - first_of_top;
    const auto& leaves = kVocabulary[t % vocab_tops].leaves;
    int round = t / vocab_tops + k / static_cast<int>(leaves.size());
    cat.leaf_top.push_back(t);
    cat.leaf_vocab.push_back(k % static_cast<int>(leaves.size()));
    cat.leaf_names.push_back(with_round(leaves[k % leaves.size()].name, round));
  }
  // A complementary leaf is a sibling when there is one (cleanser -> moisturizer), else any leaf.
  // Siblings are the contiguous block [first, end) around c, at most kLeavesPerTop long.
  for (int c = 0; c < opt.categories; ++c) {
    int first = c, end = c + 1;
    while (first > 0 && cat.leaf_top[first - 1] == cat.leaf_top[c]) --first;
    while (end < opt.categories && cat.leaf_top[end] == cat.leaf_top[c]) ++end;
    if (end - first == 1) {
      first = 0;
      end = opt.categories;
    }
    int d = first + static_cast<int>(rng.below(end - first - 1));
    cat.complement.push_back(d >= c ? d + 1 : d);
  }
}

void build_brands(const SynthOptions& opt, Rng& rng, Catalog& cat) {
  std::unordered_set<std::string> taken;
  const int tops = static_cast<int>(cat.top_names.size());
  for (int b = 0; b < opt.brands; ++b) {
    std::string name;
    for (int tries = 0; tries < kMaxTries && (name.empty() || taken.count(name)); ++tries)
      name = std::string(kBrandStarts[rng.below(kBrandStarts.size())]) +
             kBrandEnds[rng.below(kBrandEnds.size())];
    if (taken.count(name)) name = fmt::format("{} {}", name, b + 1);
    taken.insert(name);
    cat.brand_names.push_back(name);
    cat.brand_top.push_back(b % tops);
  }
}

void assign_items(const SynthOptions& opt, Rng& rng, Catalog& cat) {
  const size_t n = static_cast<size_t>(opt.items);
  // A shuffled order whose first `categories` items seed one leaf each, so no leaf is empty.
  std::vector<ItemIndex> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = static_cast<ItemIndex>(i);
  for (size_t i = n - 1; i > 0; --i) std::swap(order[i], order[rng.below(i + 1)]);
  cat.item_leaf.assign(n, 0);
  for (size_t k = 0; k < n; ++k) {
    size_t leaf = k < static_cast<size_t>(opt.categories) ? k : rng.below(opt.categories);
    cat.item_leaf[order[k]] = static_cast<int32_t>(leaf);
  }
  cat.leaf_items.assign(opt.categories, {});
  for (size_t i = 0; i < n; ++i)
    cat.leaf_items[cat.item_leaf[i]].push_back(static_cast<ItemIndex>(i));

  std::vector<std::vector<int32_t>> brands_of_top(cat.top_names.size());
  for (int b = 0; b < opt.brands; ++b) brands_of_top[cat.brand_top[b]].push_back(b);
  cat.item_brand.assign(n, 0);
  for (size_t i = 0; i < n; ++i) {
    const auto& home = brands_of_top[cat.leaf_top[cat.item_leaf[i]]];
    bool at_home = !home.empty() && rng.chance(kHomeBrandShare);
    cat.item_brand[i] =
        at_home ? home[rng.below(home.size())] : static_cast<int32_t>(rng.below(opt.brands));
  }

  // Zipf over a random ranking, so popularity says nothing about the item index.
  for (size_t i = n - 1; i > 0; --i) std::swap(order[i], order[rng.below(i + 1)]);
  cat.popularity.assign(n, 0.0);
  double total = 0.0;
  for (size_t r = 0; r < n; ++r) {
    cat.popularity[order[r]] = std::pow(static_cast<double>(r + 1), -opt.popularity_exponent);
    total += cat.popularity[order[r]];
  }
  for (double& p : cat.popularity) p /= total;
}

ItemMeta make_item_meta(const Catalog& cat, ItemIndex item, Rng& rng,
                        std::unordered_set<std::string>& titles) {
  const int32_t leaf = cat.item_leaf[item];
  const TopWords& top = top_words(cat, leaf);
  const LeafWords& words = top.leaves[cat.leaf_vocab[leaf]];
  const std::string& brand = cat.brand_names[cat.item_brand[item]];
  auto adjective = [&] { return std::string(top.adjectives[rng.below(top.adjectives.size())]); };
  std::string noun, adj1, adj2, title;
  for (int tries = 0; tries < kMaxTries && (title.empty() || titles.count(title)); ++tries) {
    noun = words.nouns[rng.below(words.nouns.size())];
    adj1 = adjective();
    do {
      adj2 = adjective();
    } while (adj2 == adj1);
    // Later tries add a second adjective: more distinct titles once the short ones are used up.
    title = tries < kMaxTries / 2 ? title_case(fmt::format("{} {} {}", brand, adj1, noun))
                                  : title_case(fmt::format("{} {} {} {}", brand, adj2, adj1, noun));
  }
  if (titles.count(title)) title = fmt::format("{} No. {}", title, item + 1);
  titles.insert(title);

  ItemMeta m;
  m.title = title;
  m.brand = brand;
  m.categories = {cat.top_names[cat.leaf_top[leaf]], cat.leaf_names[leaf]};
  m.short_text = fmt::format("{} {} {}", adj2, adj1, noun);
  m.description =
      fmt::format("{} {} by {}, from its {} line. {} and easy to use.", capitalize(adj1), noun,
                  brand, cat.leaf_names[leaf], capitalize(adj2));
  return m;
}

ItemIndex draw_related(const Catalog& cat, const std::vector<WeightedSampler>& by_leaf,
                       const WeightedSampler& global, ItemIndex item, Rng& rng) {
  const double r = rng.uniform();
  const int32_t leaf = cat.item_leaf[item];
  if (r < kSameLeafShare) return by_leaf[leaf].sample(rng);
  if (r < kSameLeafShare + kComplementShare) return by_leaf[cat.complement[leaf]].sample(rng);
  return global.sample(rng);
}

void build_successors(const SynthOptions& opt, Rng& rng, Catalog& cat) {
  const size_t n = static_cast<size_t>(opt.items);
  std::vector<WeightedSampler> by_leaf(cat.leaf_items.size());
  WeightedSampler global;
  for (size_t i = 0; i < n; ++i) {
    double w = std::pow(cat.popularity[i], kSuccessorTemper);
    by_leaf[cat.item_leaf[i]].add(static_cast<int32_t>(i), w);
    global.add(static_cast<int32_t>(i), w);
  }
  cat.successors.assign(n, {});
  for (size_t i = 0; i < n; ++i) {
    auto& succ = cat.successors[i];
    auto usable = [&](ItemIndex c) {
      return c != static_cast<ItemIndex>(i) && std::find(succ.begin(), succ.end(), c) == succ.end();
    };
    while (succ.size() < static_cast<size_t>(opt.successors)) {
      ItemIndex c = draw_related(cat, by_leaf, global, static_cast<ItemIndex>(i), rng);
      for (int tries = 1; tries < kMaxTries && !usable(c); ++tries)
        c = draw_related(cat, by_leaf, global, static_cast<ItemIndex>(i), rng);
      // Tiny leaves can run out of candidates; scanning from a random item always ends because
      // validate() keeps successors < items.
      for (size_t k = rng.below(n); !usable(c); k = (k + 1) % n) c = static_cast<ItemIndex>(k);
      succ.push_back(c);
    }
  }
}

Catalog build_catalog(const SynthOptions& opt) {
  Rng rng(stream_seed(opt.seed, 0));
  Catalog cat;
  build_categories(opt, rng, cat);
  build_brands(opt, rng, cat);
  assign_items(opt, rng, cat);
  std::unordered_set<std::string> titles;
  for (ItemIndex i = 0; i < opt.items; ++i) cat.meta.push_back(make_item_meta(cat, i, rng, titles));
  build_successors(opt, rng, cat);
  return cat;
}

/// Generates user sequences over a catalogue.
class UserWalker {
 public:
  UserWalker(const SynthOptions& opt, const Catalog& cat) : opt_(opt), cat_(cat) {
    by_leaf_.resize(cat.leaf_items.size());
    std::vector<double> leaf_mass(cat.leaf_items.size(), 0.0);
    for (size_t i = 0; i < cat.popularity.size(); ++i) {
      by_leaf_[cat.item_leaf[i]].add(static_cast<int32_t>(i), cat.popularity[i]);
      global_.add(static_cast<int32_t>(i), cat.popularity[i]);
      leaf_mass[cat.item_leaf[i]] += cat.popularity[i];
    }
    for (size_t c = 0; c < leaf_mass.size(); ++c)
      leaves_.add(static_cast<int32_t>(c), leaf_mass[c]);
    for (int len = opt.min_length; len <= opt.max_length; ++len)
      lengths_.add(len, std::pow(static_cast<double>(len), -kLengthExponent));
  }

  Sequence walk(bool predictable, Rng& rng) const {
    const size_t length = static_cast<size_t>(lengths_.sample(rng));
    // Erratic users have no taste: an empty one is what marks them below.
    const std::vector<int32_t> taste = predictable ? pick_taste(rng) : std::vector<int32_t>{};
    Sequence seq;
    seq.reserve(length);
    while (seq.size() < length) seq.push_back(next_item(seq, taste, rng));
    return seq;
  }

 private:
  /// One to three leaves: one by popularity mass, then its complement, then any leaf.
  std::vector<int32_t> pick_taste(Rng& rng) const {
    const int32_t first = leaves_.sample(rng);
    std::vector<int32_t> taste = {first};
    const size_t size = 1 + rng.below(3);
    if (size >= 2) taste.push_back(cat_.complement[first]);
    if (size >= 3) taste.push_back(static_cast<int32_t>(rng.below(cat_.leaf_items.size())));
    return taste;
  }

  ItemIndex next_item(const Sequence& seq, const std::vector<int32_t>& taste, Rng& rng) const {
    const bool predictable = !taste.empty();
    if (predictable && !seq.empty() && rng.chance(opt_.follow_probability)) {
      if (auto next = follow(seq, rng)) return *next;
    }
    for (int tries = 0; tries < kMaxTries; ++tries) {
      ItemIndex c =
          predictable ? by_leaf_[taste[rng.below(taste.size())]].sample(rng) : global_.sample(rng);
      if (acceptable(c, seq, rng)) return c;
    }
    // Nothing fresh turned up: any item but the previous one.
    const size_t n = cat_.popularity.size();
    if (seq.empty()) return static_cast<ItemIndex>(rng.below(n));
    ItemIndex c = static_cast<ItemIndex>(rng.below(n - 1));
    return c >= seq.back() ? c + 1 : c;
  }

  /// A successor of the previous item (earlier successors weigh more), preferring unseen ones.
  std::optional<ItemIndex> follow(const Sequence& seq, Rng& rng) const {
    const auto& succ = cat_.successors[seq.back()];
    WeightedSampler fresh, any;
    for (size_t j = 0; j < succ.size(); ++j) {
      double w = static_cast<double>(succ.size() - j);
      if (std::find(seq.begin(), seq.end(), succ[j]) == seq.end()) fresh.add(succ[j], w);
      if (succ[j] != seq.back()) any.add(succ[j], w);
    }
    if (!fresh.empty()) return fresh.sample(rng);
    if (!any.empty() && rng.chance(kRepeatAcceptance)) return any.sample(rng);
    return std::nullopt;
  }

  static bool acceptable(ItemIndex c, const Sequence& seq, Rng& rng) {
    if (!seq.empty() && c == seq.back()) return false;
    if (std::find(seq.begin(), seq.end(), c) != seq.end()) return rng.chance(kRepeatAcceptance);
    return true;
  }

  const SynthOptions& opt_;
  const Catalog& cat_;
  std::vector<WeightedSampler> by_leaf_;
  WeightedSampler global_, leaves_, lengths_;
};

template <typename T>
void require(bool ok, const char* field, const char* rule, T value) {
  if (!ok) throw_input_error("synth option '{}': must be {} (got {})", field, rule, value);
}

}  // namespace

void SynthOptions::validate() const {
  require(users >= 1, "users", "at least 1", users);
  require(items >= 10, "items", "at least 10", items);
  require(items <= 100000000, "items", "at most 100000000", items);
  require(categories >= 2, "categories", "at least 2", categories);
  require(categories <= items, "categories", "at most the number of items", categories);
  require(brands >= 1, "brands", "at least 1", brands);
  require(min_length >= 3, "min_length", "at least 3 (a test, a validation and a training item)",
          min_length);
  require(max_length >= min_length, "max_length", "at least min_length", max_length);
  require(max_length <= 100000, "max_length", "at most 100000", max_length);
  require(
      std::isfinite(popularity_exponent) && popularity_exponent >= 0 && popularity_exponent <= 10,
      "popularity_exponent", "in [0, 10]", popularity_exponent);
  require(predictable_share >= 0 && predictable_share <= 1, "predictable_share", "in [0, 1]",
          predictable_share);
  require(follow_probability >= 0 && follow_probability <= 1, "follow_probability", "in [0, 1]",
          follow_probability);
  require(successors >= 1, "successors", "at least 1", successors);
  require(successors < items, "successors", "less than the number of items", successors);
}

Dataset generate_synthetic(const SynthOptions& options) {
  return generate_synthetic(options, nullptr);
}

Dataset generate_synthetic(const SynthOptions& options, SynthTruth* truth) {
  options.validate();
  Catalog cat = build_catalog(options);
  Dataset d;
  d.name = "synth";
  for (ItemIndex i = 0; i < options.items; ++i) d.item_ids.push_back(fmt::format("S{:06d}", i + 1));
  d.items = std::move(cat.meta);

  UserWalker walker(options, cat);
  Rng rng(stream_seed(options.seed, 1));
  std::vector<bool> predictable(options.users);
  d.sequences.reserve(options.users);
  for (int u = 0; u < options.users; ++u) {
    predictable[u] = rng.chance(options.predictable_share);
    d.user_ids.push_back(fmt::format("U{:06d}", u + 1));
    d.sequences.push_back(walker.walk(predictable[u], rng));
  }
  d.reindex();
  d.validate();
  if (truth) {
    truth->successors = std::move(cat.successors);
    truth->item_leaf = std::move(cat.item_leaf);
    truth->leaf_names = std::move(cat.leaf_names);
    truth->complement = std::move(cat.complement);
    truth->popularity = std::move(cat.popularity);
    truth->predictable = std::move(predictable);
  }
  return d;
}

namespace {

void check_raw_id(const std::string& kind, const std::string& id) {
  // The id maps are tab-separated lines and the loader trims fields.
  if (id.empty() || id.find_first_of("\t\r\n") != std::string::npos || id.front() == ' ' ||
      id.back() == ' ')
    throw_input_error(
        "{} id '{}' cannot be written to a .tsv map (empty, tab, newline or edge space)", kind, id);
}

std::string id_map(const std::vector<std::string>& ids, const std::string& kind) {
  fmt::memory_buffer out;
  for (size_t i = 0; i < ids.size(); ++i) {
    check_raw_id(kind, ids[i]);
    fmt::format_to(std::back_inserter(out), "{}\t{}\n", i + 1, ids[i]);
  }
  return fmt::to_string(out);
}

nlohmann::json string_or_null(const std::string& s) {
  return s.empty() ? nlohmann::json(nullptr) : nlohmann::json(s);
}

std::string item_meta_lines(const Dataset& data) {
  std::string out;
  for (size_t i = 0; i < data.items.size(); ++i) {
    const ItemMeta& m = data.items[i];
    if (m.empty()) continue;
    nlohmann::ordered_json obj;
    obj["item_idx"] = i + 1;
    obj["title"] = string_or_null(m.title);
    obj["brand"] = string_or_null(m.brand);
    obj["categories"] = m.categories;
    obj["short_text"] = string_or_null(m.short_text);
    obj["description"] = string_or_null(m.description);
    out += obj.dump();
    out += '\n';
  }
  return out;
}

}  // namespace

void write_sequences_dir(const Dataset& data, const std::string& dir) {
  data.validate();
  fmt::memory_buffer seqs;
  for (size_t u = 0; u < data.sequences.size(); ++u) {
    // The loader rejects a user line without items, so refuse to write one.
    if (data.sequences[u].empty())
      throw_input_error("user '{}' has no items; format A cannot store an empty sequence",
                        data.user_ids[u]);
    fmt::format_to(std::back_inserter(seqs), "{}", u + 1);
    for (ItemIndex i : data.sequences[u]) fmt::format_to(std::back_inserter(seqs), " {}", i + 1);
    seqs.push_back('\n');
  }
  const fs::path root(dir);
  write_file_atomic(root / "item_map.tsv", id_map(data.item_ids, "item"));
  write_file_atomic(root / "user_map.tsv", id_map(data.user_ids, "user"));
  write_file_atomic(root / "item_meta.jsonl", item_meta_lines(data));
  // Last, because sequences.txt is what marks a directory as format A: a reader never sees it
  // next to missing maps.
  write_file_atomic(root / "sequences.txt", fmt::to_string(seqs));
}

}  // namespace twistar
