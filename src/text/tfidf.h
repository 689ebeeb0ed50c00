// TF-IDF weighting of token documents into a sparse [documents x vocabulary] matrix: the input of
// the truncated SVD behind content embeddings.
//
//   tf  = 1 + ln(count)                 (sublinear: the 5th "nail" says less than the 1st)
//   idf = ln((1 + n) / (1 + df)) + 1    (smoothed: as if one extra document held every token)
// Tokens in fewer than `min_df` documents are dropped: a token only one item has cannot make two
// items similar, and such tokens are most of a vocabulary. Rows are then scaled to unit length.
#pragma once

#include <Eigen/SparseCore>

#include <string>
#include <vector>

namespace twistar {

struct TfidfOptions {
  /// Drop tokens that occur in fewer documents than this.
  int min_df = 2;
  /// Drop tokens that occur in more than this share of documents (1 keeps all).
  double max_df_ratio = 1.0;
  /// tf = 1 + ln(count) instead of count.
  bool sublinear_tf = true;
  /// idf = ln((1 + n) / (1 + df)) + 1 instead of ln(n / df) + 1.
  bool smooth_idf = true;
  /// Scale every non-empty row to unit L2 norm.
  bool normalize = true;

  void validate() const;
};

struct Tfidf {
  /// [documents x vocabulary]; a document left without kept tokens is an empty row.
  Eigen::SparseMatrix<float, Eigen::RowMajor> matrix;
  /// Column -> token, sorted, so the matrix is the same whatever the document order of first use.
  std::vector<std::string> vocabulary;
  /// Column -> idf weight.
  std::vector<float> idf;
};

Tfidf build_tfidf(const std::vector<std::vector<std::string>>& documents,
                  const TfidfOptions& options = {});

}  // namespace twistar
