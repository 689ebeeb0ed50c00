#include "sid/prefix_trie.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <numeric>

#include "core/error.h"

namespace twistar {
namespace {

// Below this many children a linear scan beats binary search (one or two cache lines of codes).
constexpr int32_t kLinearScanMax = 16;

bool is_prefix_of(const Sid& a, const Sid& b) {
  return a.size() <= b.size() && std::equal(a.begin(), a.end(), b.begin());
}

void validate_sids(const std::vector<Sid>& sids, const std::vector<ItemIndex>& items) {
  if (sids.size() != items.size())
    throw_input_error("prefix trie: {} SIDs but {} items", sids.size(), items.size());
  for (size_t i = 0; i < sids.size(); ++i) {
    if (sids[i].empty()) throw_input_error("prefix trie: item {} has an empty SID", items[i]);
    for (SidCode c : sids[i])
      if (c < 0)
        throw_input_error("prefix trie: item {} has a negative code in SID ({})", items[i],
                          fmt::join(sids[i], ","));
    if (items[i] < 0) throw_input_error("prefix trie: negative item index {}", items[i]);
  }
}

// In lexicographic order every SID that extends x directly follows x, so checking neighbours finds
// every duplicate and every prefix violation.
void check_prefix_free(const std::vector<Sid>& sids, const std::vector<ItemIndex>& items,
                       const std::vector<int32_t>& order) {
  for (size_t k = 1; k < order.size(); ++k) {
    const Sid& a = sids[order[k - 1]];
    const Sid& b = sids[order[k]];
    if (!is_prefix_of(a, b)) continue;
    const char* what =
        a.size() == b.size() ? "the same SID" : "a SID that is a prefix of the other";
    throw_input_error("prefix trie: items {} and {} have {} ({} / {})", items[order[k - 1]],
                      items[order[k]], what, fmt::join(a, ","), fmt::join(b, ","));
  }
}

std::vector<ItemIndex> identity_items(size_t n) {
  std::vector<ItemIndex> items(n);
  std::iota(items.begin(), items.end(), 0);
  return items;
}

}  // namespace

int32_t PrefixTrie::ChildRange::find(SidCode code) const {
  if (size_ <= kLinearScanMax) {
    for (int32_t i = 0; i < size_; ++i)
      if (codes_[i] == code) return i;
    return -1;
  }
  const SidCode* it = std::lower_bound(begin(), end(), code);
  return it != end() && *it == code ? static_cast<int32_t>(it - codes_) : -1;
}

PrefixTrie::PrefixTrie() : first_edge_{0, 0}, leaf_item_{-1} {}

PrefixTrie::PrefixTrie(const std::vector<Sid>& sids)
    : PrefixTrie(sids, identity_items(sids.size())) {}

PrefixTrie PrefixTrie::from_codes(const CodeMatrix& codes) {
  std::vector<Sid> sids(codes.rows());
  for (Eigen::Index i = 0; i < codes.rows(); ++i)
    sids[i].assign(codes.row(i).data(), codes.row(i).data() + codes.cols());
  return PrefixTrie(sids);
}

PrefixTrie::PrefixTrie(const std::vector<Sid>& sids, const std::vector<ItemIndex>& items) {
  validate_sids(sids, items);
  std::vector<int32_t> order(sids.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return sids[a] < sids[b]; });
  check_prefix_free(sids, items, order);
  if (sids.empty()) {
    *this = PrefixTrie();
    return;
  }

  // Breadth-first over ranges of the sorted SIDs: node n covers order[lo, hi), all sharing the
  // node's prefix of length depth. Children are appended in code order, so node ids come out in
  // BFS order and edge e leads to node e + 1 by construction.
  struct Range {
    int32_t lo, hi, depth;
  };
  std::vector<Range> nodes{{0, static_cast<int32_t>(sids.size()), 0}};
  first_edge_.clear();
  for (size_t n = 0; n < nodes.size(); ++n) {
    const Range r = nodes[n];
    first_edge_.push_back(static_cast<int32_t>(nodes.size()) - 1);
    const Sid& head = sids[order[r.lo]];
    if (r.hi - r.lo == 1 && static_cast<int32_t>(head.size()) == r.depth) {
      leaf_item_.push_back(items[order[r.lo]]);
      continue;
    }
    leaf_item_.push_back(-1);
    if (r.depth >= static_cast<int32_t>(level_sizes_.size())) level_sizes_.push_back(0);
    for (int32_t lo = r.lo; lo < r.hi;) {
      const SidCode code = sids[order[lo]][r.depth];
      int32_t hi = lo + 1;
      while (hi < r.hi && sids[order[hi]][r.depth] == code) ++hi;
      edge_code_.push_back(code);
      level_sizes_[r.depth] = std::max(level_sizes_[r.depth], code + 1);
      nodes.push_back({lo, hi, r.depth + 1});
      lo = hi;
    }
  }
  first_edge_.push_back(static_cast<int32_t>(edge_code_.size()));
  num_items_ = static_cast<int32_t>(sids.size());
  first_edge_.shrink_to_fit();
  edge_code_.shrink_to_fit();
  leaf_item_.shrink_to_fit();
}

PrefixTrie::ChildRange PrefixTrie::children(NodeId node) const {
  const int32_t begin = first_edge_[node];
  return ChildRange(edge_code_.data() + begin, first_edge_[node + 1] - begin, begin + 1);
}

PrefixTrie::NodeId PrefixTrie::child(NodeId node, SidCode code) const {
  const ChildRange range = children(node);
  const int32_t i = range.find(code);
  return i < 0 ? kNoNode : range.child(i);
}

PrefixTrie::NodeId PrefixTrie::find(const Sid& prefix) const {
  NodeId node = root();
  for (SidCode code : prefix) {
    node = child(node, code);
    if (node == kNoNode) return kNoNode;
  }
  return node;
}

PrefixTrie::ChildRange PrefixTrie::allowed(const Sid& prefix) const {
  const NodeId node = find(prefix);
  return node == kNoNode ? ChildRange() : children(node);
}

std::optional<ItemIndex> PrefixTrie::item_at(const Sid& sid) const {
  const NodeId node = find(sid);
  if (node == kNoNode || !is_leaf(node)) return std::nullopt;
  return leaf_item_[node];
}

size_t PrefixTrie::memory_bytes() const {
  return first_edge_.capacity() * sizeof(int32_t) + edge_code_.capacity() * sizeof(SidCode) +
         leaf_item_.capacity() * sizeof(ItemIndex) + level_sizes_.capacity() * sizeof(int32_t) +
         sizeof(*this);
}

}  // namespace twistar
