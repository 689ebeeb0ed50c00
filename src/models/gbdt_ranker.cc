#include "models/gbdt_ranker.h"

#include <xgboost/c_api.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <limits>
#include <string>

#include "core/atomic_file.h"
#include "core/error.h"

namespace twistar {
namespace fs = std::filesystem;

namespace {

void check(int rc, const char* what) {
  if (rc != 0) throw Error(fmt::format("xgboost {}: {}", what, XGBGetLastError()));
}

// The valid slots of some lists as one XGBoost matrix (one query group per list).
struct Matrix {
  DMatrixHandle handle = nullptr;
  std::vector<std::pair<int64_t, int64_t>> slots;  // (list, slot) of each row
  ~Matrix() {
    if (handle) XGDMatrixFree(handle);
  }
};

void build_matrix(Matrix& out, const torch::Tensor& items, const torch::Tensor& features,
                  const torch::Tensor* label, bool only_labelled) {
  auto it = items.to(torch::kCPU, torch::kLong).contiguous();
  auto ft = features.to(torch::kCPU, torch::kFloat).contiguous();
  auto ia = it.accessor<int64_t, 2>();
  const int64_t n = it.size(0), m = it.size(1), f = ft.size(2);
  const float* fp = ft.data_ptr<float>();
  torch::Tensor lt;
  if (label) lt = label->to(torch::kCPU, torch::kLong).contiguous();
  std::vector<float> rows, labels;
  std::vector<unsigned> groups;
  for (int64_t r = 0; r < n; ++r) {
    const int64_t target = label ? lt.data_ptr<int64_t>()[r] : -1;
    if (only_labelled && target < 0) continue;
    unsigned count = 0;
    for (int64_t s = 0; s < m; ++s) {
      if (ia[r][s] < 0) continue;
      rows.insert(rows.end(), fp + (r * m + s) * f, fp + (r * m + s + 1) * f);
      labels.push_back(s == target ? 1.0f : 0.0f);
      out.slots.emplace_back(r, s);
      ++count;
    }
    if (count) groups.push_back(count);
  }
  check(XGDMatrixCreateFromMat(rows.data(), out.slots.size(), static_cast<bst_ulong>(f),
                               std::numeric_limits<float>::quiet_NaN(), &out.handle),
        "create matrix");
  check(XGDMatrixSetFloatInfo(out.handle, "label", labels.data(), labels.size()), "set labels");
  check(XGDMatrixSetUIntInfo(out.handle, "group", groups.data(), groups.size()), "set groups");
}

torch::Tensor predict(void* booster, const Matrix& mat, int64_t n, int64_t m) {
  bst_ulong len = 0;
  const float* result = nullptr;
  check(XGBoosterPredict(booster, mat.handle, 0, 0, 0, &len, &result), "predict");
  auto scores = torch::full({n, m}, -std::numeric_limits<float>::infinity());
  auto sa = scores.accessor<float, 2>();
  for (size_t i = 0; i < mat.slots.size() && i < len; ++i) sa[mat.slots[i].first][mat.slots[i].second] = result[i];
  return scores;
}

void* new_booster(const std::vector<DMatrixHandle>& cache) {
  BoosterHandle b = nullptr;
  check(XGBoosterCreate(cache.data(), cache.size(), &b), "create booster");
  return b;
}

}  // namespace

GbdtRanker::GbdtRanker() : mutex_(std::make_unique<std::mutex>()) {}
GbdtRanker::~GbdtRanker() {
  if (booster_) XGBoosterFree(booster_);
}
GbdtRanker::GbdtRanker(GbdtRanker&& o) noexcept
    : booster_(o.booster_), rounds_(o.rounds_), mutex_(std::move(o.mutex_)) {
  o.booster_ = nullptr;
}
GbdtRanker& GbdtRanker::operator=(GbdtRanker&& o) noexcept {
  if (this != &o) {
    if (booster_) XGBoosterFree(booster_);
    booster_ = o.booster_;
    rounds_ = o.rounds_;
    mutex_ = std::move(o.mutex_);
    o.booster_ = nullptr;
  }
  return *this;
}

GbdtRanker GbdtRanker::train(const RankLists& train, const RankLists& valid, const RankerOptions& options,
                             int threads, std::vector<double>* curve) {
  Matrix dtrain, dvalid;
  build_matrix(dtrain, train.items, train.features, &train.label, true);
  if (dtrain.slots.empty()) throw_input_error("gbdt ranker: no training list contains its target");
  build_matrix(dvalid, valid.items, valid.features, nullptr, false);
  GbdtRanker out;
  out.booster_ = new_booster({dtrain.handle});
  auto set = [&](const char* k, const std::string& v) { check(XGBoosterSetParam(out.booster_, k, v.c_str()), k); };
  set("objective", "rank:ndcg");
  set("eta", fmt::format("{}", options.gbdt_eta));
  set("max_depth", std::to_string(options.gbdt_depth));
  set("min_child_weight", "1");
  set("subsample", "0.8");
  set("colsample_bytree", "0.8");
  set("tree_method", "hist");
  set("seed", "0");
  set("nthread", std::to_string(std::max(1, threads)));
  double best = -1;
  int best_round = 0, bad = 0;
  for (int round = 1; round <= options.gbdt_rounds; ++round) {
    check(XGBoosterUpdateOneIter(out.booster_, round - 1, dtrain.handle), "update");
    if (round % 10 != 0 && round != options.gbdt_rounds) continue;
    double ndcg = rank_lists_ndcg10(predict(out.booster_, dvalid, valid.size(), valid.items.size(1)), valid.label);
    if (curve) curve->push_back(ndcg);
    spdlog::info("gbdt ranker: round {} valid ndcg@10 {:.4f}", round, ndcg);
    if (ndcg > best) {
      best = ndcg;
      best_round = round;
      bad = 0;
    } else if (++bad >= options.train.patience) {
      break;
    }
  }
  BoosterHandle sliced = nullptr;
  check(XGBoosterSlice(out.booster_, 0, best_round, 1, &sliced), "slice");
  XGBoosterFree(out.booster_);
  out.booster_ = sliced;
  out.rounds_ = best_round;
  return out;
}

torch::Tensor GbdtRanker::score(const torch::Tensor& items, const torch::Tensor& features) const {
  Matrix mat;
  build_matrix(mat, items, features, nullptr, false);
  std::lock_guard<std::mutex> lock(*mutex_);
  return predict(booster_, mat, items.size(0), items.size(1));
}

void GbdtRanker::save(const fs::path& path) const {
  write_path_atomic(path, [&](const fs::path& p) {
    // XGBoost picks the format from the extension.
    fs::path tmp = p.string() + ".json";
    check(XGBoosterSaveModel(booster_, tmp.string().c_str()), "save");
    fs::rename(tmp, p);
  });
}

GbdtRanker GbdtRanker::load(const fs::path& path, int threads) {
  if (!fs::exists(path)) throw_input_error("{}: missing (train the gbdt ranker first)", path.string());
  GbdtRanker out;
  out.booster_ = new_booster({});
  if (XGBoosterLoadModel(out.booster_, path.string().c_str()) != 0)
    throw_input_error("{}: not an XGBoost model ({})", path.string(), XGBGetLastError());
  check(XGBoosterSetParam(out.booster_, "nthread", std::to_string(std::max(1, threads)).c_str()), "nthread");
  check(XGBoosterBoostedRounds(out.booster_, &out.rounds_), "rounds");
  return out;
}

}  // namespace twistar
