#include "text/tfidf.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

#include "core/error.h"

namespace twistar {
namespace {

// Document frequency of every token (a token counts once per document).
std::unordered_map<std::string, int32_t> document_frequency(
    const std::vector<std::vector<std::string>>& documents) {
  std::unordered_map<std::string, int32_t> df;
  std::vector<const std::string*> unique;
  for (const auto& doc : documents) {
    unique.clear();
    for (const auto& token : doc) unique.push_back(&token);
    std::sort(unique.begin(), unique.end(), [](auto* a, auto* b) { return *a < *b; });
    unique.erase(
        std::unique(unique.begin(), unique.end(), [](auto* a, auto* b) { return *a == *b; }),
        unique.end());
    for (const auto* token : unique) ++df[*token];
  }
  return df;
}

// Appends one document's weighted entries (column-sorted) to `triplets`.
void weigh_document(const std::vector<std::string>& doc,
                    const std::unordered_map<std::string, int32_t>& column,
                    const std::vector<float>& idf, const TfidfOptions& options, int32_t row,
                    std::vector<Eigen::Triplet<float>>* triplets) {
  std::vector<int32_t> cols;
  for (const auto& token : doc) {
    auto it = column.find(token);
    if (it != column.end()) cols.push_back(it->second);
  }
  std::sort(cols.begin(), cols.end());
  const size_t first = triplets->size();
  double squared = 0.0;
  for (size_t lo = 0; lo < cols.size();) {
    size_t hi = lo;
    while (hi < cols.size() && cols[hi] == cols[lo]) ++hi;
    const double count = static_cast<double>(hi - lo);
    const double tf = options.sublinear_tf ? 1.0 + std::log(count) : count;
    const double w = tf * idf[cols[lo]];
    squared += w * w;
    triplets->emplace_back(row, cols[lo], static_cast<float>(w));
    lo = hi;
  }
  if (!options.normalize || squared <= 0.0) return;
  const float scale = static_cast<float>(1.0 / std::sqrt(squared));
  for (size_t k = first; k < triplets->size(); ++k) {
    auto& t = (*triplets)[k];
    t = Eigen::Triplet<float>(t.row(), t.col(), t.value() * scale);
  }
}

}  // namespace

void TfidfOptions::validate() const {
  if (min_df < 1) throw_input_error("tfidf.min_df: must be >= 1, got {}", min_df);
  if (!(max_df_ratio > 0.0 && max_df_ratio <= 1.0))
    throw_input_error("tfidf.max_df_ratio: must be in (0, 1], got {}", max_df_ratio);
}

Tfidf build_tfidf(const std::vector<std::vector<std::string>>& documents,
                  const TfidfOptions& options) {
  options.validate();
  const auto n = static_cast<double>(documents.size());
  const auto df = document_frequency(documents);
  Tfidf out;
  for (const auto& [token, count] : df)
    if (count >= options.min_df && count <= options.max_df_ratio * n)
      out.vocabulary.push_back(token);
  std::sort(out.vocabulary.begin(), out.vocabulary.end());

  std::unordered_map<std::string, int32_t> column;
  column.reserve(out.vocabulary.size());
  for (size_t c = 0; c < out.vocabulary.size(); ++c) {
    const double d = df.at(out.vocabulary[c]);
    const double idf =
        options.smooth_idf ? std::log((1.0 + n) / (1.0 + d)) + 1.0 : std::log(n / d) + 1.0;
    out.idf.push_back(static_cast<float>(idf));
    column.emplace(out.vocabulary[c], static_cast<int32_t>(c));
  }
  std::vector<Eigen::Triplet<float>> triplets;
  for (size_t r = 0; r < documents.size(); ++r)
    weigh_document(documents[r], column, out.idf, options, static_cast<int32_t>(r), &triplets);
  out.matrix.resize(static_cast<Eigen::Index>(documents.size()),
                    static_cast<Eigen::Index>(out.vocabulary.size()));
  out.matrix.setFromTriplets(triplets.begin(), triplets.end());
  return out;
}

}  // namespace twistar
