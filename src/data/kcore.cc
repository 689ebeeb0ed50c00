// Interaction logs -> Dataset. Strings are mapped to dense ids once so the k-core passes and the
// per-user grouping run over integer vectors (logs reach a few hundred thousand rows).
#include "data/kcore.h"

#include <algorithm>

namespace twistar {

namespace {

/// Dense ids in order of first appearance.
std::vector<int32_t> dense_ids(const std::vector<Interaction>& interactions,
                               std::string Interaction::*field, size_t* count) {
  std::unordered_map<std::string, int32_t> index;
  index.reserve(interactions.size());
  std::vector<int32_t> ids;
  ids.reserve(interactions.size());
  for (const auto& x : interactions) {
    auto it = index.emplace(x.*field, static_cast<int32_t>(index.size())).first;
    ids.push_back(it->second);
  }
  *count = index.size();
  return ids;
}

}  // namespace

void kcore_filter(std::vector<Interaction>& interactions, int k) {
  if (k <= 1 || interactions.empty()) return;
  size_t num_users = 0, num_items = 0;
  const auto users = dense_ids(interactions, &Interaction::user, &num_users);
  const auto items = dense_ids(interactions, &Interaction::item, &num_items);
  std::vector<char> keep(interactions.size(), 1);
  // Removing a user can push an item below k and vice versa, so repeat until a pass removes
  // nothing.
  for (bool changed = true; changed;) {
    std::vector<int> user_count(num_users, 0), item_count(num_items, 0);
    for (size_t i = 0; i < interactions.size(); ++i) {
      if (!keep[i]) continue;
      ++user_count[users[i]];
      ++item_count[items[i]];
    }
    changed = false;
    for (size_t i = 0; i < interactions.size(); ++i) {
      if (keep[i] && (user_count[users[i]] < k || item_count[items[i]] < k)) {
        keep[i] = 0;
        changed = true;
      }
    }
  }
  size_t out = 0;
  for (size_t i = 0; i < interactions.size(); ++i) {
    if (!keep[i]) continue;
    // Self-move-assignment would empty the strings.
    if (out != i) interactions[out] = std::move(interactions[i]);
    ++out;
  }
  interactions.resize(out);
}

Dataset dataset_from_interactions(std::string name, std::vector<Interaction> interactions,
                                  int kcore,
                                  const std::unordered_map<std::string, ItemMeta>& meta) {
  kcore_filter(interactions, kcore);
  size_t num_users = 0;
  const auto users = dense_ids(interactions, &Interaction::user, &num_users);
  std::vector<std::vector<size_t>> rows(num_users);
  for (size_t i = 0; i < interactions.size(); ++i) rows[users[i]].push_back(i);

  std::vector<std::string> user_ids(num_users);
  std::vector<std::vector<std::string>> sequences(num_users);
  for (size_t u = 0; u < num_users; ++u) {
    auto& r = rows[u];
    // Row indices start in input order, so a stable sort keeps same-time interactions in file
    // order.
    std::stable_sort(r.begin(), r.end(), [&](size_t a, size_t b) {
      return interactions[a].time < interactions[b].time;
    });
    user_ids[u] = interactions[r.front()].user;
    sequences[u].reserve(r.size());
    for (size_t i : r) sequences[u].push_back(std::move(interactions[i].item));
  }
  return build_dataset(std::move(name), std::move(user_ids), sequences, meta);
}

}  // namespace twistar
