// Model-level fixtures (they include libtorch through the model headers, so only the tests that
// train models include this file; fixtures.h stays torch-free).
#pragma once

#include <string>

#include "core/context.h"
#include "models/sid_generator.h"
#include "sid/sid_map.h"

namespace twistar::testing {

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
