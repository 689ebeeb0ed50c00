#include "agent/grounding.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <unordered_set>

#include "core/atomic_file.h"
#include "core/error.h"
#include "data/text_io.h"

namespace twistar {
namespace fs = std::filesystem;
namespace {

constexpr const char* kFactsHeader = "index\tcategory\tbrand";

/// Tabs and line breaks become spaces (the facts file is one line per item), then trimmed.
std::string clean(std::string_view s) {
  std::string out(trim(s));
  for (char& c : out)
    if (c == '\t' || c == '\n' || c == '\r') c = ' ';
  return out;
}

/// The text between `from` and the first of `ends` (or the end), without a final '.'.
std::string field_after(const std::string& text, size_t from, std::initializer_list<const char*> ends) {
  size_t stop = text.size();
  for (const char* e : ends) stop = std::min(stop, text.find(e, from));
  std::string_view v(text.data() + from, stop - from);
  v = trim(v);
  if (!v.empty() && v.back() == '.') v.remove_suffix(1);
  return clean(v);
}

int32_t intern(std::unordered_map<std::string, int32_t>& ids, const std::string& key) {
  if (key.empty()) return -1;
  return ids.emplace(key, static_cast<int32_t>(ids.size())).first->second;
}

}  // namespace

void GroundingWeights::validate() const {
  for (auto [name, w] : {std::pair{"category", category}, {"brand", brand}, {"link", link}})
    if (!std::isfinite(w) || w < 0)
      throw_input_error("think_and_rec grounding {}: must be a finite weight >= 0, got {}", name, w);
}

std::string category_tail(const ItemMeta& meta) {
  const auto& c = meta.categories;
  if (c.empty()) return "";
  if (c.size() == 1) return c[0];
  return c[c.size() - 2] + " > " + c.back();
}

RationaleClaims parse_rationale(const std::string& text) {
  RationaleClaims out;
  const size_t next = text.find("next: ");
  if (next != std::string::npos) {
    out.category = field_after(text, next + 6, {". brand: ", ". link: "});
    if (out.category == "unknown category") out.category.clear();
  }
  const size_t brand = text.find("brand: ");
  if (brand != std::string::npos) out.brand = field_after(text, brand + 7, {". link: "});
  const size_t link = text.find("link: ");
  if (link != std::string::npos) {
    // "link: strong, 3 back, same brand." -> 3
    const size_t comma = text.find(", ", link);
    const size_t back = text.find(" back", link);
    int64_t n = 0;
    if (comma != std::string::npos && back != std::string::npos && back > comma + 2 &&
        parse_int64(std::string_view(text).substr(comma + 2, back - comma - 2), n) && n > 0)
      out.link_back = n;
  }
  return out;
}

std::string rationale_header(const std::string& category, const std::string& brand) {
  std::string out = "next: " + (category.empty() ? std::string("unknown category") : category) + ".";
  if (!brand.empty()) out += " brand: " + brand + ".";
  return out;
}

std::string rationale_link(const std::string& strength, int64_t back, const std::string& relation) {
  if (strength.empty()) return " link: none.";
  return " link: " + strength + ", " + std::to_string(back) + " back, " + relation + ".";
}

ItemFacts ItemFacts::from_dataset(const Dataset& data) {
  ItemFacts f;
  for (const ItemMeta& m : data.items) {
    f.category.push_back(clean(category_tail(m)));
    f.brand.push_back(clean(m.brand));
  }
  return f;
}

void ItemFacts::save(const fs::path& path) const {
  std::string out = std::string(kFactsHeader) + "\n";
  for (size_t i = 0; i < category.size(); ++i) out += fmt::format("{}\t{}\t{}\n", i, category[i], brand[i]);
  write_file_atomic(path, out);
}

ItemFacts ItemFacts::load(const fs::path& path, int32_t num_items) {
  if (!fs::exists(path))
    throw_input_error("{}: missing; rerun `twistar knowledge` (it writes the item facts grounding reads)",
                      path.string());
  LineReader in(path.string());
  std::string line;
  if (!in.next(line) || line != kFactsHeader)
    throw InputError(fmt::format("{}:1: expected the header '{}'", path.string(), kFactsHeader));
  ItemFacts f;
  while (in.next(line)) {
    const auto cols = split_exact(line, '\t');
    if (cols.size() != 3) in.fail(fmt::format("expected 3 columns, got {}", cols.size()));
    int64_t index = -1;
    if (!parse_int64(cols[0], index) || index != static_cast<int64_t>(f.category.size()))
      in.fail(fmt::format("index: expected {}, got '{}'", f.category.size(), cols[0]));
    f.category.emplace_back(cols[1]);
    f.brand.emplace_back(cols[2]);
  }
  if (static_cast<int32_t>(f.category.size()) != num_items)
    throw_input_error("{}: {} items, but the model has {}; rerun `twistar knowledge`", path.string(),
                      f.category.size(), num_items);
  return f;
}

RationaleGrammar::RationaleGrammar(const ItemFacts& facts, const SpTokenizer& tok, int64_t recent,
                                   const std::vector<int64_t>& allowed_ids, int64_t think_end)
    : think_end_(think_end) {
  std::vector<bool> ok(static_cast<size_t>(tok.vocab_size()), false);
  for (int64_t id : allowed_ids)
    if (id >= 0 && id < tok.vocab_size()) ok[id] = true;
  nodes_.emplace_back();  // header root
  std::set<std::string> seen;
  for (size_t i = 0; i < facts.category.size(); ++i) {
    const std::string h = rationale_header(facts.category[i], facts.brand[i]);
    if (seen.insert(h).second && insert(0, tok.encode(h), ok)) ++headers_;
  }
  link_root_ = static_cast<int32_t>(nodes_.size());
  nodes_.emplace_back();
  std::vector<std::string> links = {rationale_link("", 0, "")};
  for (const char* strength : {"very strong", "strong", "moderate"})
    for (int64_t back = 1; back <= recent; ++back)
      for (const char* relation : {"same brand", "same need", "complementary", "other line"})
        links.push_back(rationale_link(strength, back, relation));
  // Pieces never span a space, so a link's pieces are those of the whole rationale when encoded
  // without its leading space (which becomes the "▁" of its first piece).
  for (const auto& l : links)
    if (insert(link_root_, tok.encode(std::string_view(l).substr(1)), ok)) ++links_;
  if (headers_ == 0 || links_ == 0)
    throw_input_error("rationale grammar: no {} can be written with the reasoning vocabulary",
                      headers_ == 0 ? "header" : "link");
  // What may follow each node: its children; after a whole header also a link's first piece; after a
  // whole link </think>.
  for (int32_t n = 0; n < static_cast<int32_t>(nodes_.size()); ++n) {
    Node& node = nodes_[n];
    for (const auto& c : node.children) node.allowed.push_back(c.first);
    if (node.terminal && n < link_root_)
      for (const auto& c : nodes_[link_root_].children) node.allowed.push_back(c.first);
    if (node.terminal && n >= link_root_) node.allowed.push_back(think_end_);
    std::sort(node.allowed.begin(), node.allowed.end());
    node.allowed.erase(std::unique(node.allowed.begin(), node.allowed.end()), node.allowed.end());
  }
}

bool RationaleGrammar::insert(int32_t root, const std::vector<int>& ids, const std::vector<bool>& ok) {
  if (ids.empty()) return false;
  for (int id : ids)
    if (id < 0 || static_cast<size_t>(id) >= ok.size() || !ok[id]) return false;
  int32_t node = root;
  for (int id : ids) {
    int32_t c = child(node, id);
    if (c < 0) {
      c = static_cast<int32_t>(nodes_.size());
      auto& kids = nodes_[node].children;
      kids.insert(std::lower_bound(kids.begin(), kids.end(), std::pair<int64_t, int32_t>{id, -1}),
                  std::pair<int64_t, int32_t>{id, c});
      nodes_.emplace_back();
    }
    node = c;
  }
  nodes_[node].terminal = true;
  return true;
}

int32_t RationaleGrammar::child(int32_t node, int64_t id) const {
  const auto& kids = nodes_[node].children;
  auto it = std::lower_bound(kids.begin(), kids.end(), std::pair<int64_t, int32_t>{id, -1});
  return it != kids.end() && it->first == id ? it->second : -1;
}

int32_t RationaleGrammar::next(int32_t state, int64_t id) const {
  const int32_t c = child(state, id);
  if (c >= 0) return c;
  if (state < link_root_ && nodes_[state].terminal) {
    const int32_t l = child(link_root_, id);
    if (l >= 0) return l;
  }
  throw_error("rationale grammar: piece {} is not allowed in state {}", id, state);
}

RationaleGrounding::RationaleGrounding(const ItemFacts& facts, const ItemKnowledge& knowledge) {
  if (facts.category.size() != facts.brand.size())
    throw_input_error("grounding: {} categories but {} brands", facts.category.size(), facts.brand.size());
  const size_t n = facts.category.size();
  category_.resize(n);
  brand_.resize(n);
  for (size_t i = 0; i < n; ++i) {
    category_[i] = intern(category_ids_, clean(facts.category[i]));
    brand_[i] = intern(brand_ids_, clean(facts.brand[i]));
  }
  std::vector<std::vector<std::pair<float, ItemIndex>>> scored(n);
  for (const PairKnowledge& p : knowledge.pairs) {
    if (p.a < 0 || p.b < 0 || static_cast<size_t>(p.a) >= n || static_cast<size_t>(p.b) >= n)
      throw_input_error("grounding: knowledge pair ({}, {}) names an item outside the {} items", p.a, p.b, n);
    scored[p.a].push_back({p.swing, p.b});
    scored[p.b].push_back({p.swing, p.a});
  }
  neighbours_.resize(n);
  by_strength_.resize(n);
  for (size_t i = 0; i < n; ++i) {
    auto& s = scored[i];
    std::sort(s.begin(), s.end(), [](const auto& x, const auto& y) {
      return x.first != y.first ? x.first > y.first : x.second < y.second;
    });
    for (const auto& [swing, item] : s) by_strength_[i].push_back(item);
    neighbours_[i] = by_strength_[i];
    std::sort(neighbours_[i].begin(), neighbours_[i].end());
  }
}

ItemIndex RationaleGrounding::linked_item(const RationaleClaims& c, const Sequence& history) const {
  if (c.link_back <= 0 || c.link_back > static_cast<int64_t>(history.size())) return -1;
  const ItemIndex h = history[history.size() - static_cast<size_t>(c.link_back)];
  return h >= 0 && h < num_items() ? h : -1;
}

std::vector<ItemIndex> RationaleGrounding::proposals(const std::string& rationale, const Sequence& history,
                                                     int64_t recent) const {
  const RationaleClaims c = parse_rationale(rationale);
  std::vector<ItemIndex> out;
  std::unordered_set<ItemIndex> seen;
  const ItemIndex linked = linked_item(c, history);
  if (linked >= 0)
    for (ItemIndex i : by_strength_[linked])
      if (seen.insert(i).second) out.push_back(i);
  auto it = category_ids_.find(c.category);
  if (it == category_ids_.end()) return out;
  const int64_t n = std::min<int64_t>(recent, static_cast<int64_t>(history.size()));
  for (int64_t back = 1; back <= n; ++back) {
    const ItemIndex h = history[history.size() - static_cast<size_t>(back)];
    if (h < 0 || h >= num_items()) continue;
    for (ItemIndex i : by_strength_[h])
      if (category_[i] == it->second && seen.insert(i).second) out.push_back(i);
  }
  return out;
}

const std::vector<ItemIndex>& RationaleGrounding::linked_neighbours(const std::string& rationale,
                                                                    const Sequence& history) const {
  static const std::vector<ItemIndex> none;
  const ItemIndex h = linked_item(parse_rationale(rationale), history);
  return h < 0 ? none : by_strength_[h];
}

RationaleGrounding RationaleGrounding::load(const fs::path& knowledge_dir, int32_t num_items) {
  ItemFacts facts = ItemFacts::load(knowledge_dir / "item_facts.tsv", num_items);
  return RationaleGrounding(facts, load_item_knowledge(knowledge_dir / "knowledge.tsv"));
}

void RationaleGrounding::apply(const std::string& rationale, const Sequence& history,
                               const GroundingWeights& w, Ranking& ranking) const {
  const RationaleClaims c = parse_rationale(rationale);
  auto find = [](const std::unordered_map<std::string, int32_t>& ids, const std::string& key) {
    auto it = ids.find(key);
    return it == ids.end() ? -2 : it->second;  // -2 never equals an item's id (-1 = none)
  };
  const int32_t cat = find(category_ids_, c.category), brand = find(brand_ids_, c.brand);
  const ItemIndex h = linked_item(c, history);
  const std::vector<ItemIndex>* linked = h < 0 ? nullptr : &neighbours_[h];
  for (ScoredItem& s : ranking) {
    if (s.item < 0 || s.item >= num_items()) continue;
    double bonus = 0;
    if (category_[s.item] == cat) bonus += w.category;
    if (brand_[s.item] == brand) bonus += w.brand;
    if (linked && std::binary_search(linked->begin(), linked->end(), s.item)) bonus += w.link;
    s.score += static_cast<float>(bonus);
  }
  sort_best_first(ranking);
}

}  // namespace twistar
