// The value types the semantic-ID layer passes around. One embedding type and one code type are
// used everywhere so that embeddings, tokenizers, the SID map and the trie compose without
// conversions.
//
// Vocabulary: a *code* is one integer in [0, K_l) at level l of a codebook; a *SID* (semantic ID)
// is the sequence of codes that names one item; an item's *code tuple* is its first L codes, before
// the collision level is appended.
#pragma once

#include <Eigen/Core>

#include <cstdint>
#include <vector>

namespace twistar {

/// Item embeddings, one row per item index. Row-major so that a row is contiguous (cache-friendly
/// per-item access, and a zero-copy view for torch::from_blob and .npy files).
using EmbeddingMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// Codes from a tokenizer: [items x levels], row i holds item i's code at each level.
using CodeMatrix = Eigen::Matrix<int32_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

using SidCode = int32_t;
/// One semantic ID (or a prefix of one): codes from the first level on.
using Sid = std::vector<SidCode>;

}  // namespace twistar
