#include "data/batching.h"

#include <algorithm>
#include <numeric>

#include "data/split.h"

namespace twistar {

std::vector<NextItemSequence> next_item_sequences(const Dataset& data, size_t max_len) {
  std::vector<NextItemSequence> out;
  for (const auto& part : training_parts(data)) {
    if (part.size() < 2) continue;
    size_t n = std::min(part.size() - 1, max_len);
    size_t first = part.size() - 1 - n;
    NextItemSequence s;
    s.inputs.assign(part.begin() + first, part.begin() + first + n);
    s.targets.assign(part.begin() + first + 1, part.begin() + first + n + 1);
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<std::vector<size_t>> length_bucketed_batches(const std::vector<NextItemSequence>& seqs,
                                                         size_t batch_size, std::mt19937_64& rng) {
  std::vector<size_t> lengths(seqs.size());
  for (size_t i = 0; i < seqs.size(); ++i) lengths[i] = seqs[i].inputs.size();
  return length_bucketed_batches(lengths, batch_size, rng);
}

std::vector<std::vector<size_t>> length_bucketed_batches(const std::vector<size_t>& lengths,
                                                         size_t batch_size, std::mt19937_64& rng) {
  std::vector<size_t> order(lengths.size());
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), rng);
  const size_t block = batch_size * 50;
  std::vector<std::vector<size_t>> batches;
  for (size_t b = 0; b < order.size(); b += block) {
    auto first = order.begin() + b, last = order.begin() + std::min(order.size(), b + block);
    std::stable_sort(first, last, [&](size_t x, size_t y) {
      return lengths[x] < lengths[y];
    });
    for (auto it = first; it < last; it += std::min<ptrdiff_t>(batch_size, last - it))
      batches.emplace_back(it, std::min(last, it + batch_size));
  }
  std::shuffle(batches.begin(), batches.end(), rng);
  return batches;
}

}  // namespace twistar
