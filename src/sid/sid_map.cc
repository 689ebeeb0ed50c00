#include "sid/sid_map.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/atomic_file.h"
#include "core/error.h"

namespace twistar {
namespace {

constexpr const char* kFormatTag = "twistar-sid-map";

bool row_less(const CodeMatrix& codes, int32_t a, int32_t b) {
  for (Eigen::Index l = 0; l < codes.cols(); ++l)
    if (codes(a, l) != codes(b, l)) return codes(a, l) < codes(b, l);
  return a < b;
}

bool same_row(const CodeMatrix& codes, int32_t a, int32_t b) {
  return (codes.row(a).array() == codes.row(b).array()).all();
}

// Items sorted by code tuple, ties by index, so that items sharing a tuple form consecutive runs.
std::vector<int32_t> sort_by_tuple(const CodeMatrix& codes) {
  std::vector<int32_t> order(codes.rows());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](int32_t a, int32_t b) { return row_less(codes, a, b); });
  return order;
}

// Calls visit(begin, end) for each run of equal tuples in `order`.
template <typename Visit>
void for_each_group(const CodeMatrix& codes, const std::vector<int32_t>& order, Visit visit) {
  for (size_t lo = 0; lo < order.size();) {
    size_t hi = lo + 1;
    while (hi < order.size() && same_row(codes, order[lo], order[hi])) ++hi;
    visit(lo, hi);
    lo = hi;
  }
}

std::vector<int32_t> resolve_sizes(const CodeMatrix& codes, std::vector<int32_t> sizes) {
  if (sizes.empty()) {
    sizes.assign(codes.cols(), 1);
    for (Eigen::Index l = 0; l < codes.cols() && codes.rows() > 0; ++l)
      sizes[l] = std::max(1, codes.col(l).maxCoeff() + 1);
  }
  if (static_cast<Eigen::Index>(sizes.size()) != codes.cols())
    throw_input_error("SID map: {} codebook sizes for {} code levels", sizes.size(), codes.cols());
  for (Eigen::Index i = 0; i < codes.rows(); ++i)
    for (Eigen::Index l = 0; l < codes.cols(); ++l)
      if (codes(i, l) < 0 || codes(i, l) >= sizes[l])
        throw_input_error("SID map: item {} level {}: code {} is outside [0, {})", i, l,
                          codes(i, l), sizes[l]);
  return sizes;
}

LevelStats level_stats(const CodeMatrix& codes, Eigen::Index level, int32_t size) {
  std::vector<int64_t> counts(size, 0);
  for (Eigen::Index i = 0; i < codes.rows(); ++i) ++counts[codes(i, level)];
  LevelStats s;
  s.codebook_size = size;
  double entropy = 0.0;
  for (int64_t c : counts) {
    if (c == 0) continue;
    ++s.used_codes;
    const double p = static_cast<double>(c) / static_cast<double>(codes.rows());
    entropy -= p * std::log(p);
  }
  s.utilisation = static_cast<double>(s.used_codes) / size;
  s.perplexity = codes.rows() > 0 ? std::exp(entropy) : 0.0;
  return s;
}

}  // namespace

nlohmann::json SidStats::to_json() const {
  nlohmann::json levels_json = nlohmann::json::array();
  for (const auto& l : per_level)
    levels_json.push_back({{"codebook_size", l.codebook_size},
                           {"used_codes", l.used_codes},
                           {"utilisation", l.utilisation},
                           {"perplexity", l.perplexity}});
  return {{"num_items", num_items},
          {"base_levels", base_levels},
          {"levels", levels},
          {"unique_tuples", unique_tuples},
          {"colliding_items", colliding_items},
          {"collision_rate", collision_rate},
          {"largest_collision_group", largest_collision_group},
          {"per_level", levels_json}};
}

SidStats sid_stats(const CodeMatrix& codes, const std::vector<int32_t>& codebook_sizes) {
  const std::vector<int32_t> sizes = resolve_sizes(codes, codebook_sizes);
  SidStats s;
  s.num_items = static_cast<int32_t>(codes.rows());
  s.base_levels = s.levels = static_cast<int32_t>(codes.cols());
  for_each_group(codes, sort_by_tuple(codes), [&](size_t lo, size_t hi) {
    const auto size = static_cast<int32_t>(hi - lo);
    ++s.unique_tuples;
    if (size > 1) s.colliding_items += size;
    s.largest_collision_group = std::max(s.largest_collision_group, size);
  });
  s.collision_rate = s.num_items > 0 ? static_cast<double>(s.colliding_items) / s.num_items : 0.0;
  for (Eigen::Index l = 0; l < codes.cols(); ++l)
    s.per_level.push_back(level_stats(codes, l, sizes[l]));
  return s;
}

SidMap SidMap::build(const CodeMatrix& codes, std::vector<int32_t> codebook_sizes,
                     const std::vector<int64_t>& popularity) {
  codebook_sizes = resolve_sizes(codes, std::move(codebook_sizes));
  if (!popularity.empty() && static_cast<Eigen::Index>(popularity.size()) != codes.rows())
    throw_input_error("SID map: {} popularity counts for {} items", popularity.size(),
                      codes.rows());
  const auto base = static_cast<int32_t>(codes.cols());
  const std::vector<int32_t> order = sort_by_tuple(codes);
  int32_t largest = 0;
  for_each_group(codes, order, [&](size_t lo, size_t hi) {
    largest = std::max(largest, static_cast<int32_t>(hi - lo));
  });
  if (largest <= 1) return from_sids(codes, base, std::move(codebook_sizes));

  CodeMatrix sids(codes.rows(), base + 1);
  sids.leftCols(base) = codes;
  auto before = [&](int32_t a, int32_t b) {
    const int64_t pa = popularity.empty() ? 0 : popularity[a];
    const int64_t pb = popularity.empty() ? 0 : popularity[b];
    return pa != pb ? pa > pb : a < b;
  };
  for_each_group(codes, order, [&](size_t lo, size_t hi) {
    std::vector<int32_t> group(order.begin() + lo, order.begin() + hi);
    std::sort(group.begin(), group.end(), before);
    for (size_t k = 0; k < group.size(); ++k) sids(group[k], base) = static_cast<SidCode>(k);
  });
  codebook_sizes.push_back(largest);
  return from_sids(std::move(sids), base, std::move(codebook_sizes));
}

SidMap SidMap::from_sids(CodeMatrix sids, int32_t base_levels, std::vector<int32_t> level_sizes) {
  SidMap map;
  const CodeMatrix base_codes = sids.leftCols(base_levels);
  map.stats_ = sid_stats(base_codes, {level_sizes.begin(), level_sizes.begin() + base_levels});
  map.stats_.levels = static_cast<int32_t>(sids.cols());
  map.trie_ = PrefixTrie::from_codes(sids);
  map.sids_ = std::move(sids);
  map.level_sizes_ = std::move(level_sizes);
  return map;
}

Sid SidMap::sid(ItemIndex item) const {
  if (item < 0 || item >= num_items())
    throw_input_error("SID map: item index {} is outside [0, {})", item, num_items());
  return Sid(sids_.row(item).data(), sids_.row(item).data() + sids_.cols());
}

void SidMap::save(const std::filesystem::path& path) const {
  // One SID per line keeps the file greppable and diffable; the header is ordinary JSON.
  std::string out = fmt::format(
      "{{\n\"format\": \"{}\",\n\"format_version\": {},\n\"num_items\": {},\n\"base_levels\": {},\n"
      "\"level_sizes\": [{}],\n\"sids\": [\n",
      kFormatTag, kFormatVersion, num_items(), base_levels(), fmt::join(level_sizes_, ", "));
  for (Eigen::Index i = 0; i < sids_.rows(); ++i) {
    fmt::format_to(std::back_inserter(out), "[{}]{}\n",
                   fmt::join(sid(static_cast<ItemIndex>(i)), ","), i + 1 < sids_.rows() ? "," : "");
  }
  out += "]\n}\n";
  write_file_atomic(path, out);
}

SidMap SidMap::load(const std::filesystem::path& path) {
  const std::string file = path.string();
  try {
    const nlohmann::json j = nlohmann::json::parse(read_file(path));
    if (j.value("format", "") != kFormatTag) throw_input_error("not a SID map (format tag)");
    const int version = j.at("format_version").get<int>();
    if (version > kFormatVersion)
      throw_input_error("format version {} is newer than this build supports ({})", version,
                        kFormatVersion);
    const auto base = j.at("base_levels").get<int32_t>();
    const auto sizes = j.at("level_sizes").get<std::vector<int32_t>>();
    const auto rows = j.at("sids").get<std::vector<std::vector<int32_t>>>();
    if (base < 1 || base > static_cast<int32_t>(sizes.size()))
      throw_input_error("base_levels {} does not fit {} level sizes", base, sizes.size());
    CodeMatrix sids(rows.size(), sizes.size());
    for (size_t i = 0; i < rows.size(); ++i) {
      if (rows[i].size() != sizes.size())
        throw_input_error("item {}: SID has {} codes, expected {}", i, rows[i].size(),
                          sizes.size());
      for (size_t l = 0; l < sizes.size(); ++l) sids(i, l) = rows[i][l];
    }
    resolve_sizes(sids, sizes);  // Range check.
    return from_sids(std::move(sids), base, sizes);
  } catch (const nlohmann::json::exception& e) {
    throw_input_error("{}: malformed SID map: {}", file, e.what());
  } catch (const InputError& e) {
    if (std::string(e.what()).rfind(file, 0) == 0) throw;
    throw_input_error("{}: {}", file, e.what());
  }
}

}  // namespace twistar
