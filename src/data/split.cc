#include "data/split.h"

#include "core/error.h"

namespace twistar {

Split parse_split(const std::string& name) {
  if (name == "valid" || name == "validation") return Split::kValid;
  if (name == "test") return Split::kTest;
  throw_input_error("split: expected 'valid' or 'test', got '{}'", name);
}

std::string split_name(Split split) { return split == Split::kValid ? "valid" : "test"; }

Sequence truncate_history(const Sequence& history, size_t max_history) {
  if (max_history == 0 || history.size() <= max_history) return history;
  return Sequence(history.end() - static_cast<std::ptrdiff_t>(max_history), history.end());
}

std::vector<Example> make_examples(const Dataset& data, Split split, const SplitOptions& options) {
  const size_t held_out = split == Split::kTest ? 1 : 2;
  std::vector<Example> out;
  out.reserve(data.sequences.size());
  for (size_t u = 0; u < data.sequences.size(); ++u) {
    const Sequence& s = data.sequences[u];
    if (s.size() < held_out + 1) continue;
    size_t target_pos = s.size() - held_out;
    Example ex;
    ex.user = static_cast<int32_t>(u);
    ex.target = s[target_pos];
    Sequence history(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(target_pos));
    ex.history = truncate_history(history, options.max_history);
    out.push_back(std::move(ex));
  }
  return out;
}

std::vector<Sequence> training_parts(const Dataset& data) {
  std::vector<Sequence> out;
  out.reserve(data.sequences.size());
  for (const auto& s : data.sequences)
    out.emplace_back(s.size() >= 3 ? Sequence(s.begin(), s.end() - 2) : Sequence{});
  return out;
}

Dataset without_last_items(const Dataset& data) {
  Dataset out = data;
  out.name = data.name + "+heldout";
  for (auto& s : out.sequences)
    if (!s.empty()) s.pop_back();
  return out;
}

}  // namespace twistar
