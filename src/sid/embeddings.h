// Item embeddings, the input of every SID tokenizer: one EmbeddingMatrix [num_items x d] per kind.
//
//   content        item text -> tokens -> TF-IDF -> truncated SVD -> rows L2-normalised;
//   collaborative  an item table learned from interactions (SASRec's, passed in by the caller so
//                  this layer needs no torch), or a factorisation of the Swing graph;
//   hybrid         [content | w * collaborative], both parts L2-normalised first;
//   external       a float32 .npy matrix from any encoder.
//
// Items without text: content rows are zero for items with no text at all and for items whose
// tokens were all too rare to keep (TF-IDF min_df); they are listed in `ContentEmbeddings::
// without_text`. A zero row is a deliberate, visible fallback: k-means sends all of them to the
// centroid nearest the origin, so callers that care should use hybrid embeddings, whose
// collaborative part still separates those items.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

#include "data/dataset.h"
#include "graph/swing.h"
#include "sid/randomized_svd.h"
#include "sid/sid_types.h"
#include "text/item_text.h"
#include "text/tfidf.h"

namespace twistar {

struct ContentEmbeddingOptions {
  /// Embedding dimension d (the SVD rank; columns beyond the matrix rank stay zero).
  int dim = 64;
  ItemTextOptions text;
  TfidfOptions tfidf;
  /// Rows are U·S^p before normalisation: 1 is classic LSA (dimensions weighted by how much they
  /// explain), 0 whitens (every dimension counts the same), which spreads dense regions apart.
  double singular_value_power = 1.0;
  /// Extra random directions of the randomized SVD.
  int oversampling = 10;
  /// Power iterations of the randomized SVD.
  int power_iterations = 4;
  /// Seed of the randomized SVD.
  uint64_t seed = 42;

  void validate() const;
};

struct ContentEmbeddings {
  /// [num_items x dim]; each row unit length, or zero for the items in `without_text`.
  EmbeddingMatrix matrix;
  /// Items whose row is zero (no text, or no token frequent enough), ascending.
  std::vector<ItemIndex> without_text;
  /// Singular values of the TF-IDF matrix, descending (how much each dimension carries).
  std::vector<float> singular_values;
  /// Tokens kept after the document-frequency filter.
  int32_t vocabulary_size = 0;
};

/// Content embeddings of `items` (index = item index).
ContentEmbeddings content_embeddings(const std::vector<ItemMeta>& items,
                                     const ContentEmbeddingOptions& options = {});

/// Validates an item table [rows x d] supplied by the caller (e.g. SASRec's item weights) and
/// returns it with rows L2-normalised. Throws InputError when it does not have `num_items` rows or
/// holds NaN/inf. `source` names it in errors.
EmbeddingMatrix collaborative_embeddings(const EmbeddingMatrix& item_table, int32_t num_items,
                                         const std::string& source = "item table");

/// Spectral factorisation of the symmetrised Swing graph: U·sqrt(S) of its rank-`dim` SVD, rows
/// L2-normalised; items with no neighbours get zero rows. A torch-free collaborative alternative.
EmbeddingMatrix swing_embeddings(const ItemGraph& graph, int dim, uint64_t seed = 42);

/// Row i = [content_i / |content_i|, w * collab_i / |collab_i|] (zero parts stay zero), so squared
/// distances are content distance + w² x collaborative distance. Throws InputError when the row
/// counts differ or w is negative or not finite.
EmbeddingMatrix hybrid_embeddings(const EmbeddingMatrix& content,
                                  const EmbeddingMatrix& collaborative, float collaborative_weight);

/// A .npy matrix (see sid/npy.h) that must have `num_items` rows; errors name the file.
EmbeddingMatrix external_embeddings(const std::filesystem::path& path, int32_t num_items);

/// Scales every row to unit L2 norm; zero rows stay zero.
void l2_normalize_rows(EmbeddingMatrix* matrix);

}  // namespace twistar
