// A read-only prefix trie over every valid semantic ID: the constraint that keeps beam search on
// real items. Built once per SID map, then queried every decoding step, so it is laid out for
// lookups:
//
// Layout (CSR, breadth-first): nodes are numbered in BFS order with the root as node 0, and the
// children of every node are numbered consecutively in ascending code order. Hence the edge into
// node c is edge c - 1, and a node needs only `first_edge_[node]` plus one code per edge; no child
// pointers or maps are stored. Memory is 12 bytes per node (edge offset, edge code, leaf item).
//
// Contract: the SID set must be prefix-free (no SID is a prefix of another, which includes
// duplicates); SIDs of one common length always are, unless duplicated. Codes are >= 0 and level l
// may have its own vocabulary size (`level_sizes()`).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "data/dataset.h"
#include "sid/sid_types.h"

namespace twistar {

class PrefixTrie {
 public:
  using NodeId = int32_t;
  static constexpr NodeId kNoNode = -1;

  /// The children of one node: codes ascending; the child with the i-th code is `first_child + i`.
  /// Iterating yields codes (the allowed next codes), `child(i)` gives the matching node.
  class ChildRange {
   public:
    ChildRange() = default;
    ChildRange(const SidCode* codes, int32_t size, NodeId first_child)
        : codes_(codes), size_(size), first_child_(first_child) {}
    const SidCode* begin() const { return codes_; }
    const SidCode* end() const { return codes_ + size_; }
    int32_t size() const { return size_; }
    bool empty() const { return size_ == 0; }
    SidCode code(int32_t i) const { return codes_[i]; }
    NodeId child(int32_t i) const { return first_child_ + i; }
    /// Position of `code` in the range, or -1.
    int32_t find(SidCode code) const;

   private:
    const SidCode* codes_ = nullptr;
    int32_t size_ = 0;
    NodeId first_child_ = 0;
  };

  /// An empty trie (root only, nothing allowed).
  PrefixTrie();
  /// `sids[i]` names item `items[i]`. Throws InputError for an empty SID, a negative code, a size
  /// mismatch, or a set that is not prefix-free (naming both items).
  PrefixTrie(const std::vector<Sid>& sids, const std::vector<ItemIndex>& items);
  /// `sids[i]` names item i.
  explicit PrefixTrie(const std::vector<Sid>& sids);
  /// Row i of `codes` names item i (all SIDs of length codes.cols()).
  static PrefixTrie from_codes(const CodeMatrix& codes);

  // Node API, for beam search: walk with child() and read the allowed codes with children().
  NodeId root() const { return 0; }
  /// The child of `node` reached by `code`, or kNoNode.
  NodeId child(NodeId node, SidCode code) const;
  ChildRange children(NodeId node) const;
  /// True when `node` ends a SID (it then has no children).
  bool is_leaf(NodeId node) const { return leaf_item_[node] >= 0; }
  /// The item a leaf names, or -1 for an inner node.
  ItemIndex leaf_item(NodeId node) const { return leaf_item_[node]; }

  // Prefix API, for callers that hold whole prefixes.
  /// The node a prefix leads to (the root for an empty prefix), or kNoNode.
  NodeId find(const Sid& prefix) const;
  bool contains(const Sid& prefix) const { return find(prefix) != kNoNode; }
  /// Codes that may follow `prefix`; empty for a complete SID and for a prefix not in the trie.
  ChildRange allowed(const Sid& prefix) const;
  /// The item a complete SID names; nullopt for a proper prefix or an unknown SID.
  std::optional<ItemIndex> item_at(const Sid& sid) const;

  int32_t num_nodes() const { return static_cast<int32_t>(leaf_item_.size()); }
  int32_t num_items() const { return num_items_; }
  /// Length of the longest SID.
  int32_t max_depth() const { return static_cast<int32_t>(level_sizes_.size()); }
  /// Per level, 1 + the largest code used there (the mask width a decoder needs).
  const std::vector<int32_t>& level_sizes() const { return level_sizes_; }
  /// Bytes held by the trie's arrays.
  size_t memory_bytes() const;

 private:
  // first_edge_[n]..first_edge_[n+1] are the edges out of node n; edge e leads to node e + 1.
  std::vector<int32_t> first_edge_;
  std::vector<SidCode> edge_code_;
  std::vector<ItemIndex> leaf_item_;
  std::vector<int32_t> level_sizes_;
  int32_t num_items_ = 0;
};

}  // namespace twistar
