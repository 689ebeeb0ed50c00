#include "data/dataset.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/error.h"
#include "core/hash.h"

namespace twistar {

bool ItemMeta::empty() const {
  return title.empty() && brand.empty() && description.empty() && short_text.empty() &&
         categories.empty();
}

std::string ItemMeta::text() const {
  std::vector<std::string> parts;
  if (!title.empty()) parts.push_back(title);
  if (!short_text.empty()) parts.push_back(short_text);
  if (!brand.empty()) parts.push_back("brand: " + brand);
  if (!categories.empty()) parts.push_back("category: " + fmt::format("{}", fmt::join(categories, " > ")));
  if (!description.empty()) parts.push_back(description);
  return fmt::format("{}", fmt::join(parts, ". "));
}

size_t Dataset::num_interactions() const {
  size_t n = 0;
  for (const auto& s : sequences) n += s.size();
  return n;
}

std::optional<ItemIndex> Dataset::find_item(const std::string& raw_id) const {
  auto it = item_lookup_.find(raw_id);
  if (it == item_lookup_.end()) return std::nullopt;
  return it->second;
}

void Dataset::reindex() {
  item_lookup_.clear();
  item_lookup_.reserve(item_ids.size());
  for (size_t i = 0; i < item_ids.size(); ++i) {
    if (!item_lookup_.emplace(item_ids[i], static_cast<ItemIndex>(i)).second)
      throw_error("dataset {}: item id '{}' appears twice in the item map", name, item_ids[i]);
  }
}

void Dataset::validate() const {
  if (items.size() != item_ids.size())
    throw_error("dataset {}: {} item records for {} items", name, items.size(), item_ids.size());
  if (user_ids.size() != sequences.size())
    throw_error("dataset {}: {} user ids for {} sequences", name, user_ids.size(), sequences.size());
  for (size_t u = 0; u < sequences.size(); ++u)
    for (ItemIndex i : sequences[u])
      if (i < 0 || i >= num_items())
        throw_error("dataset {}: user {} has item index {} outside [0, {})", name, user_ids[u], i,
                    num_items());
}

std::string Dataset::fingerprint() const {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (const auto& id : item_ids) h = fnv1a64(id, h ^ 0x9e3779b97f4a7c15ULL);
  for (const auto& s : sequences) {
    h = fnv1a64(std::string_view(reinterpret_cast<const char*>(s.data()), s.size() * sizeof(ItemIndex)),
                h ^ s.size());
  }
  return fmt::format("{:016x}", h);
}

std::string Dataset::summary() const {
  size_t mn = sequences.empty() ? 0 : SIZE_MAX, mx = 0;
  for (const auto& s : sequences) {
    mn = std::min(mn, s.size());
    mx = std::max(mx, s.size());
  }
  double avg = sequences.empty() ? 0.0 : static_cast<double>(num_interactions()) / sequences.size();
  return fmt::format("{}: {} users, {} items, {} interactions, length avg {:.2f} min {} max {}", name,
                     num_users(), num_items(), num_interactions(), avg, mn, mx);
}

Dataset build_dataset(std::string name, std::vector<std::string> user_ids,
                      const std::vector<std::vector<std::string>>& raw_sequences,
                      const std::unordered_map<std::string, ItemMeta>& meta) {
  Dataset d;
  d.name = std::move(name);
  d.user_ids = std::move(user_ids);
  std::unordered_map<std::string, ItemIndex> index;
  d.sequences.reserve(raw_sequences.size());
  for (const auto& raw : raw_sequences) {
    Sequence seq;
    seq.reserve(raw.size());
    for (const auto& id : raw) {
      auto [it, inserted] = index.emplace(id, static_cast<ItemIndex>(d.item_ids.size()));
      if (inserted) d.item_ids.push_back(id);
      seq.push_back(it->second);
    }
    d.sequences.push_back(std::move(seq));
  }
  d.items.resize(d.item_ids.size());
  for (size_t i = 0; i < d.item_ids.size(); ++i) {
    auto it = meta.find(d.item_ids[i]);
    if (it != meta.end()) d.items[i] = it->second;
  }
  d.reindex();
  d.validate();
  return d;
}

}  // namespace twistar
