#include "graph/item_knowledge.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <unordered_map>

#include "core/atomic_file.h"
#include "core/error.h"
#include "data/split.h"
#include "data/text_io.h"

namespace twistar {
namespace {

constexpr const char* kHeader =
    "a\tb\ta_id\tb_id\tswing\tco_users\ta_first\tb_first\ta_then_b\tb_then_a\tshared_categories\t"
    "same_brand";
constexpr size_t kColumns = 12;

uint64_t pair_key(ItemIndex x, ItemIndex y) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(x)) << 32) | static_cast<uint32_t>(y);
}

/// Per item, the users that took it with the position of their first occurrence, by user.
struct Occurrence {
  int32_t user;
  int32_t first;
};

std::vector<std::vector<Occurrence>> first_occurrences(const std::vector<Sequence>& train,
                                                       int32_t num_items) {
  std::vector<std::vector<Occurrence>> occ(num_items);
  std::vector<int32_t> last_user(num_items, -1);
  for (size_t u = 0; u < train.size(); ++u)
    for (size_t t = 0; t < train[u].size(); ++t) {
      const ItemIndex i = train[u][t];
      if (last_user[i] == static_cast<int32_t>(u)) continue;
      last_user[i] = static_cast<int32_t>(u);
      occ[i].push_back({static_cast<int32_t>(u), static_cast<int32_t>(t)});
    }
  return occ;
}

/// Users with at least one adjacent step x -> y (x != y), keyed by pair_key(x, y).
std::unordered_map<uint64_t, int32_t> adjacent_users(const std::vector<Sequence>& train) {
  std::unordered_map<uint64_t, int32_t> counts;
  std::vector<uint64_t> keys;
  for (const auto& s : train) {
    keys.clear();
    for (size_t t = 1; t < s.size(); ++t)
      if (s[t - 1] != s[t]) keys.push_back(pair_key(s[t - 1], s[t]));
    std::sort(keys.begin(), keys.end());
    keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
    for (uint64_t k : keys) ++counts[k];
  }
  return counts;
}

struct Candidate {
  ItemIndex lo;
  ItemIndex hi;
  float swing;
};

/// Unordered pairs from the Swing rows, each once with its larger directed score.
std::vector<Candidate> swing_candidates(const ItemGraph& graph) {
  std::vector<Candidate> c;
  for (ItemIndex i = 0; i < graph.num_items(); ++i)
    for (const Neighbor& n : graph.neighbors(i))
      c.push_back({std::min(i, n.item), std::max(i, n.item), n.score});
  std::sort(c.begin(), c.end(), [](const Candidate& x, const Candidate& y) {
    return std::tie(x.lo, x.hi, y.swing) < std::tie(y.lo, y.hi, x.swing);
  });
  c.erase(std::unique(c.begin(), c.end(),
                      [](const Candidate& x, const Candidate& y) {
                        return x.lo == y.lo && x.hi == y.hi;
                      }),
          c.end());
  return c;
}

/// Co-users of lo and hi and how many of them took lo first (merge of two user-sorted lists).
void count_co_users(const std::vector<Occurrence>& x, const std::vector<Occurrence>& y,
                    int32_t* co, int32_t* x_first) {
  *co = 0;
  *x_first = 0;
  for (size_t p = 0, q = 0; p < x.size() && q < y.size();) {
    if (x[p].user < y[q].user) {
      ++p;
    } else if (y[q].user < x[p].user) {
      ++q;
    } else {
      ++*co;
      if (x[p].first < y[q].first) ++*x_first;
      ++p;
      ++q;
    }
  }
}

int32_t int_field(const LineReader& in, std::string_view text, const char* field) {
  int64_t v = 0;
  if (!parse_int64(text, v) || v < 0 || v > INT32_MAX)
    in.fail(fmt::format("{}: '{}' is not a count or item index", field, text));
  return static_cast<int32_t>(v);
}

}  // namespace

void KnowledgeOptions::validate() const {
  swing.validate();
  if (min_co_users < 1)
    throw_input_error("knowledge.min_co_users: must be >= 1, got {}", min_co_users);
}

nlohmann::json KnowledgeOptions::to_json() const {
  return {{"swing_top_k", swing.top_k},
          {"swing_alpha", swing.alpha},
          {"swing_user_weight_power", swing.user_weight_power},
          {"swing_max_users_per_item", swing.max_users_per_item},
          {"min_co_users", min_co_users}};
}

bool PairKnowledge::operator==(const PairKnowledge& o) const {
  return a == o.a && b == o.b && swing == o.swing && co_users == o.co_users &&
         a_first == o.a_first && b_first == o.b_first && a_then_b == o.a_then_b &&
         b_then_a == o.b_then_a && shared_categories == o.shared_categories &&
         same_brand == o.same_brand;
}

int32_t shared_category_depth(const ItemMeta& x, const ItemMeta& y) {
  int32_t depth = 0;
  for (size_t k = 0; k < x.categories.size() && k < y.categories.size(); ++k) {
    const std::string_view cx = trim(x.categories[k]);
    if (cx.empty() || cx != trim(y.categories[k])) break;
    ++depth;
  }
  return depth;
}

bool same_brand(const ItemMeta& x, const ItemMeta& y) {
  const std::string_view bx = trim(x.brand), by = trim(y.brand);
  if (bx.empty() || bx.size() != by.size()) return false;
  for (size_t k = 0; k < bx.size(); ++k)
    if (std::tolower(static_cast<unsigned char>(bx[k])) !=
        std::tolower(static_cast<unsigned char>(by[k])))
      return false;
  return true;
}

ItemKnowledge build_item_knowledge(const Dataset& data, const KnowledgeOptions& options) {
  options.validate();
  // The one place sequences are read: training parts only (the protocol of data/split.h).
  const std::vector<Sequence> train = training_parts(data);
  const int32_t n = data.num_items();
  const std::vector<Candidate> candidates = swing_candidates(build_swing(train, n, options.swing));
  const auto occ = first_occurrences(train, n);
  const auto adjacent = adjacent_users(train);
  auto adjacent_count = [&](ItemIndex x, ItemIndex y) {
    auto it = adjacent.find(pair_key(x, y));
    return it == adjacent.end() ? 0 : it->second;
  };
  ItemKnowledge out;
  out.candidates = static_cast<int64_t>(candidates.size());
  for (const Candidate& c : candidates) {
    PairKnowledge p;
    int32_t lo_first = 0;
    count_co_users(occ[c.lo], occ[c.hi], &p.co_users, &lo_first);
    if (p.co_users < options.min_co_users) continue;
    const bool lo_leads = lo_first >= p.co_users - lo_first;
    p.a = lo_leads ? c.lo : c.hi;
    p.b = lo_leads ? c.hi : c.lo;
    p.a_first = lo_leads ? lo_first : p.co_users - lo_first;
    p.b_first = p.co_users - p.a_first;
    p.swing = c.swing;
    p.a_then_b = adjacent_count(p.a, p.b);
    p.b_then_a = adjacent_count(p.b, p.a);
    p.shared_categories = shared_category_depth(data.items[p.a], data.items[p.b]);
    p.same_brand = same_brand(data.items[p.a], data.items[p.b]);
    out.pairs.push_back(p);
  }
  return out;
}

void save_item_knowledge(const std::filesystem::path& path, const ItemKnowledge& knowledge,
                         const std::vector<std::string>& item_ids) {
  write_file_atomic(path, [&](std::ostream& os) {
    os << kHeader << '\n';
    for (const PairKnowledge& p : knowledge.pairs) {
      if (p.a < 0 || p.b < 0 || static_cast<size_t>(std::max(p.a, p.b)) >= item_ids.size())
        throw_error("save_item_knowledge: pair ({}, {}) outside the {} item ids", p.a, p.b,
                    item_ids.size());
      os << fmt::format("{}\t{}\t{}\t{}\t{:.9g}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n", p.a, p.b,
                        item_ids[p.a], item_ids[p.b], p.swing, p.co_users, p.a_first, p.b_first,
                        p.a_then_b, p.b_then_a, p.shared_categories, p.same_brand ? 1 : 0);
    }
  });
}

ItemKnowledge load_item_knowledge(const std::filesystem::path& path) {
  LineReader in(path.string());
  std::string line;
  if (!in.next(line) || line != kHeader)
    throw InputError(at_line(path.string(), 1, "expected the header '" + std::string(kHeader) + "'"));
  ItemKnowledge out;
  while (in.next(line)) {
    if (line.empty()) continue;
    const std::vector<std::string_view> f = split_exact(line, '\t');
    if (f.size() != kColumns)
      in.fail(fmt::format("expected {} columns, got {}", kColumns, f.size()));
    PairKnowledge p;
    p.a = int_field(in, f[0], "a");
    p.b = int_field(in, f[1], "b");
    double swing = 0;
    if (!parse_double(f[4], swing)) in.fail(fmt::format("swing: '{}' is not a number", f[4]));
    p.swing = static_cast<float>(swing);
    p.co_users = int_field(in, f[5], "co_users");
    p.a_first = int_field(in, f[6], "a_first");
    p.b_first = int_field(in, f[7], "b_first");
    p.a_then_b = int_field(in, f[8], "a_then_b");
    p.b_then_a = int_field(in, f[9], "b_then_a");
    p.shared_categories = int_field(in, f[10], "shared_categories");
    const int32_t brand = int_field(in, f[11], "same_brand");
    if (brand > 1) in.fail("same_brand: expected 0 or 1");
    p.same_brand = brand == 1;
    if (p.a_first + p.b_first != p.co_users) in.fail("a_first + b_first must equal co_users");
    out.pairs.push_back(p);
  }
  return out;
}

}  // namespace twistar
