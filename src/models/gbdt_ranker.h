// The gradient-boosted alternative to the DIN ranker: XGBoost's LambdaMART (objective rank:ndcg,
// Debian's libxgboost-dev) on the same side features, one query group per request. Early-stopped on
// the validation lists' NDCG@10 (checked every 10 rounds); the saved model keeps the best rounds.
#pragma once

#include <torch/torch.h>

#include <filesystem>
#include <memory>
#include <mutex>
#include <vector>

#include "models/ranker.h"

namespace twistar {

class GbdtRanker {
 public:
  GbdtRanker();
  ~GbdtRanker();
  GbdtRanker(GbdtRanker&&) noexcept;
  GbdtRanker& operator=(GbdtRanker&&) noexcept;

  /// Trains on `train` (lists without a target are skipped), early-stopped on `valid`. `curve`
  /// receives the validation NDCG@10 of every check.
  static GbdtRanker train(const RankLists& train, const RankLists& valid, const RankerOptions& options,
                          int threads, std::vector<double>* curve = nullptr);
  /// Scores [N, M] (empty slots -inf). Safe to call concurrently.
  torch::Tensor score(const torch::Tensor& items, const torch::Tensor& features) const;
  /// Boosting rounds kept.
  int rounds() const { return rounds_; }

  /// XGBoost's JSON model format (atomic write); load throws InputError naming the file.
  void save(const std::filesystem::path& path) const;
  static GbdtRanker load(const std::filesystem::path& path, int threads = 1);

 private:
  void* booster_ = nullptr;
  int rounds_ = 0;
  std::unique_ptr<std::mutex> mutex_;
};

}  // namespace twistar
