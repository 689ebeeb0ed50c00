#include "graph/swing.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <thread>

#include "core/error.h"

namespace twistar {

void SwingOptions::validate() const {
  if (alpha <= 0) throw_input_error("swing.alpha: must be > 0, got {}", alpha);
  if (user_weight_power < 0) throw_input_error("swing.user_weight_power: must be >= 0");
  if (top_k < 1) throw_input_error("swing.top_k: must be >= 1, got {}", top_k);
  if (max_users_per_item < 2) throw_input_error("swing.max_users_per_item: must be >= 2");
  if (threads < 0) throw_input_error("swing.threads: must be >= 0");
}

float ItemGraph::similarity(ItemIndex i, ItemIndex j) const {
  for (const auto& n : rows_[i])
    if (n.item == j) return n.score;
  return 0.0f;
}

namespace {

struct SwingInput {
  std::vector<std::vector<ItemIndex>> user_items;  // sorted, unique
  std::vector<std::vector<int32_t>> item_users;    // most recent users last
  std::vector<float> user_weight;
};

SwingInput prepare(const std::vector<Sequence>& sequences, int32_t num_items,
                   const SwingOptions& options) {
  SwingInput in;
  in.user_items.resize(sequences.size());
  in.item_users.resize(num_items);
  in.user_weight.resize(sequences.size());
  for (size_t u = 0; u < sequences.size(); ++u) {
    auto& items = in.user_items[u];
    items.assign(sequences[u].begin(), sequences[u].end());
    std::sort(items.begin(), items.end());
    items.erase(std::unique(items.begin(), items.end()), items.end());
    in.user_weight[u] =
        static_cast<float>(std::pow(items.size() + 5.0, -options.user_weight_power));
    for (ItemIndex i : items) in.item_users[i].push_back(static_cast<int32_t>(u));
  }
  for (auto& users : in.item_users)
    if (static_cast<int>(users.size()) > options.max_users_per_item)
      users.erase(users.begin(), users.end() - options.max_users_per_item);
  return in;
}

/// One row of the Swing matrix; `acc` is a zeroed scratch array of num_items floats.
std::vector<Neighbor> swing_row(const SwingInput& in, ItemIndex i, const SwingOptions& options,
                                std::vector<float>& acc, std::vector<ItemIndex>& touched) {
  const auto& users = in.item_users[i];
  std::vector<ItemIndex> common;
  for (size_t a = 0; a < users.size(); ++a) {
    const auto& ia = in.user_items[users[a]];
    for (size_t b = a + 1; b < users.size(); ++b) {
      const auto& ib = in.user_items[users[b]];
      common.clear();
      std::set_intersection(ia.begin(), ia.end(), ib.begin(), ib.end(), std::back_inserter(common));
      if (common.size() < 2) continue;  // only i itself
      float w = in.user_weight[users[a]] * in.user_weight[users[b]] /
                static_cast<float>(options.alpha + common.size());
      for (ItemIndex j : common) {
        if (j == i) continue;
        if (acc[j] == 0.0f) touched.push_back(j);
        acc[j] += w;
      }
    }
  }
  std::vector<Neighbor> row;
  row.reserve(touched.size());
  for (ItemIndex j : touched) {
    row.push_back({j, acc[j]});
    acc[j] = 0.0f;
  }
  touched.clear();
  auto better = [](const Neighbor& x, const Neighbor& y) {
    return x.score > y.score || (x.score == y.score && x.item < y.item);
  };
  if (static_cast<int>(row.size()) > options.top_k) {
    std::partial_sort(row.begin(), row.begin() + options.top_k, row.end(), better);
    row.resize(options.top_k);
  } else {
    std::sort(row.begin(), row.end(), better);
  }
  return row;
}

}  // namespace

ItemGraph build_swing(const std::vector<Sequence>& sequences, int32_t num_items,
                      const SwingOptions& options) {
  options.validate();
  SwingInput in = prepare(sequences, num_items, options);
  std::vector<std::vector<Neighbor>> rows(num_items);
  std::atomic<int32_t> next{0};
  int threads = options.threads > 0 ? options.threads
                                    : std::max(1u, std::thread::hardware_concurrency());
  auto worker = [&] {
    std::vector<float> acc(num_items, 0.0f);
    std::vector<ItemIndex> touched;
    for (int32_t i; (i = next.fetch_add(1)) < num_items;)
      rows[i] = swing_row(in, i, options, acc, touched);
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  return ItemGraph(std::move(rows));
}

}  // namespace twistar
