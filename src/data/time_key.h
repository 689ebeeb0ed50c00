// Turns a textual timestamp (integer or float, any unit) into an int64 sort key for
// Interaction::time.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "data/text_io.h"

namespace twistar {

/// Parses `s` as a finite number and stores a key that sorts exactly like the number. Fractional
/// timestamps (RecBole writes `1357.25`) keep their order because the key is the double's bit
/// pattern made monotone, not a rounded value. False if `s` is not a finite number.
inline bool parse_time_key(std::string_view s, int64_t& key) {
  double value = 0;
  if (!parse_double(trim(s), value) || !std::isfinite(value)) return false;
  if (value == 0) value = 0;  // -0.0 and 0.0 must tie
  int64_t bits = 0;
  std::memcpy(&bits, &value, sizeof bits);
  // IEEE doubles order like sign-magnitude integers; flipping the magnitude of negatives makes the
  // order two's-complement.
  key = bits >= 0 ? bits : (bits ^ INT64_MAX);
  return true;
}

}  // namespace twistar
