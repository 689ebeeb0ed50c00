// Small datasets with known structure that several test files share.
#pragma once

#include <random>
#include <string>

#include "core/context.h"
#include "data/dataset.h"
#include "models/sid_generator.h"
#include "sid/sid_map.h"

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

/// SIDs for cycle_dataset's 30 items, (i / 8, i % 8): neighbours on the cycle mostly share their
/// first code.
inline SidMap cycle_sids() {
  CodeMatrix codes(30, 2);
  for (int i = 0; i < 30; ++i) {
    codes(i, 0) = i / 8;
    codes(i, 1) = i % 8;
  }
  return SidMap::build(codes, {4, 8});
}

/// A SID generator small enough to learn cycle_dataset in seconds.
inline SidGeneratorOptions small_sidgen_options(const std::string& history_tokens = "item") {
  SidGeneratorOptions o;
  o.dim = 32;
  o.layers = 1;
  o.heads = 2;
  o.decoder_layers = 1;
  o.dropout = 0.1;
  o.attn_dropout = 0.0;
  o.max_len = 10;
  o.history_tokens = history_tokens;
  o.train.lr = 5e-3;
  o.train.batch_size = 32;
  o.train.epochs = 12;
  o.train.patience = 50;
  o.valid_users = 0;
  o.valid_beam = 10;
  return o;
}

/// One thread, a fixed seed.
inline Context small_context() {
  Context c;
  c.threads = 1;
  c.seed = 11;
  return c;
}

}  // namespace twistar::testing
