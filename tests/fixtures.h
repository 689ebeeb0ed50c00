// Small datasets with known structure that several test files share.
#pragma once

#include <random>
#include <string>

#include "core/context.h"
#include "data/dataset.h"
#include "data/synth.h"

namespace twistar::testing {

/// Users walk a cycle over `items` items: the next item is always current + 1, so a working
/// sequential model must find it.
inline Dataset cycle_dataset(int users = 300, int items = 30, int length = 8) {
  Dataset d;
  d.name = "cycle";
  std::mt19937 rng(5);
  for (int i = 0; i < items; ++i) d.item_ids.push_back(std::to_string(i));
  d.items.resize(items);
  for (int u = 0; u < users; ++u) {
    Sequence s;
    ItemIndex cur = rng() % items;
    for (int k = 0; k < length; ++k, cur = (cur + 1) % items) s.push_back(cur);
    d.sequences.push_back(s);
    d.user_ids.push_back(std::to_string(u));
  }
  d.reindex();
  return d;
}

/// A small synthetic dataset with categories and brands (300 users, 200 items).
inline Dataset small_synth() {
  SynthOptions s;
  s.users = 300;
  s.items = 200;
  s.categories = 8;
  s.brands = 12;
  return generate_synthetic(s);
}

inline Context one_thread() {
  Context ctx;
  ctx.threads = 1;
  return ctx;
}

}  // namespace twistar::testing
