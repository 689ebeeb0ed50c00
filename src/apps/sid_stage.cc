#include "apps/sid_stage.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <chrono>
#include <map>
#include <memory>
#include <unordered_map>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/hash.h"
#include "core/manifest.h"
#include "data/split.h"
#include "graph/popularity.h"
#include "models/sasrec_trainer.h"
#include "sid/npy.h"
#include "sid/sid_map.h"

namespace twistar {
namespace fs = std::filesystem;
namespace {

constexpr const char* kStage = "sid";

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

bool uses_content(const SidStageOptions& o) {
  return o.embedding == "content" || o.embedding == "hybrid";
}
bool uses_sasrec(const SidStageOptions& o) {
  return o.embedding == "collaborative" || o.embedding == "hybrid";
}

// The tokenizer options the stage actually runs: L, K, the seed and the threads come from the stage.
template <typename TokenizerOptions>
TokenizerOptions effective(TokenizerOptions r, const SidStageOptions& o, const Context& ctx) {
  r.levels = o.levels;
  r.codebook_size = o.codebook_size;
  r.seed = ctx.seed;
  r.threads = ctx.resolved_threads();
  return r;
}
RqvaeOptions effective_rqvae(const SidStageOptions& o, const Context& ctx) {
  return effective(o.rqvae, o, ctx);
}
ResidualKMeansOptions effective_rkmeans(const SidStageOptions& o, const Context& ctx) {
  return effective(o.rkmeans, o, ctx);
}
ContentEmbeddingOptions effective_content(const SidStageOptions& o, const Context& ctx) {
  ContentEmbeddingOptions c = o.content;
  c.dim = o.dim;
  c.seed = ctx.seed;
  return c;
}

// The run's backbone (run/bsarec, else run/sasrec).
fs::path sasrec_dir(const fs::path& run_dir) { return backbone_dir(run_dir); }

void require_sasrec(const SidStageOptions& o, const fs::path& run_dir) {
  auto m = Manifest::load(sasrec_dir(run_dir));
  if (!m || (m->stage != "sasrec" && m->stage != "bsarec") || !fs::exists(sasrec_dir(run_dir) / "model.pt"))
    throw_input_error(
        "{}: no trained sequential backbone; {} embeddings use its item table: run `twistar train "
        "bsarec --run {}` (or `train sasrec`) first",
        sasrec_dir(run_dir).string(), o.embedding, run_dir.string());
}

// The backbone's item table as float rows (row = item index).
EmbeddingMatrix sasrec_item_table(const fs::path& run_dir, const Context& ctx) {
  Sasrec model = load_sasrec(sasrec_dir(run_dir), ctx);
  torch::NoGradGuard no_grad;
  const torch::Tensor w = model->item_weights().to(torch::kCPU, torch::kFloat32).contiguous();
  EmbeddingMatrix table(w.size(0), w.size(1));
  std::memcpy(table.data(), w.data_ptr<float>(), sizeof(float) * static_cast<size_t>(table.size()));
  return table;
}

// The tokenizer input; `info` gets what the report says about it.
EmbeddingMatrix build_embeddings(const Dataset& data, const SidStageOptions& o, const Context& ctx,
                                 const fs::path& run_dir, nlohmann::json* info) {
  if (o.embedding == "external") return external_embeddings(o.external_path, data.num_items());
  EmbeddingMatrix collaborative;
  if (uses_sasrec(o))
    collaborative = collaborative_embeddings(sasrec_item_table(run_dir, ctx), data.num_items(),
                                             (sasrec_dir(run_dir) / "model.pt").string());
  if (o.embedding == "collaborative") return collaborative;
  ContentEmbeddings content = content_embeddings(data.items, effective_content(o, ctx));
  (*info)["items_without_text"] = content.without_text.size();
  (*info)["vocabulary_size"] = content.vocabulary_size;
  if (o.embedding == "content") return std::move(content.matrix);
  return hybrid_embeddings(content.matrix, collaborative, o.hybrid_weight);
}

std::unique_ptr<SidTokenizer> make_tokenizer(const SidStageOptions& o, const Context& ctx) {
  if (o.tokenizer == "rkmeans") return std::make_unique<ResidualKMeans>(effective_rkmeans(o, ctx));
  return std::make_unique<Rqvae>(effective_rqvae(o, ctx), ctx.device);
}

std::map<std::string, std::string> stage_inputs(const Dataset& data, const SidStageOptions& o,
                                                const fs::path& run_dir) {
  std::map<std::string, std::string> inputs = {{"data", data.fingerprint()}};
  if (uses_sasrec(o)) inputs["sasrec"] = hash_file(sasrec_dir(run_dir) / "model.pt");
  if (o.embedding == "external") inputs["external"] = hash_file(o.external_path);
  return inputs;
}

std::vector<int64_t> training_popularity(const Dataset& data) {
  const std::vector<float> counts = item_popularity(training_parts(data), data.num_items());
  return std::vector<int64_t>(counts.begin(), counts.end());
}

// Leaf category of every item as a small integer (the full path names the leaf); -1 without one.
std::vector<int32_t> leaf_ids(const std::vector<ItemMeta>& items) {
  std::unordered_map<std::string, int32_t> ids;
  std::vector<int32_t> out;
  out.reserve(items.size());
  for (const auto& item : items) {
    if (item.categories.empty()) {
      out.push_back(-1);
      continue;
    }
    std::string path;
    for (const auto& c : item.categories) path += c + '\x1f';
    out.push_back(ids.emplace(path, static_cast<int32_t>(ids.size())).first->second);
  }
  return out;
}

double pairs(int64_t n) { return 0.5 * static_cast<double>(n) * static_cast<double>(n - 1); }

}  // namespace

void SidStageOptions::validate() const {
  if (embedding != "content" && embedding != "collaborative" && embedding != "hybrid" &&
      embedding != "external")
    throw_input_error(
        "sid.embedding: expected content, collaborative, hybrid or external, got '{}'", embedding);
  if (tokenizer != "rqvae" && tokenizer != "rkmeans")
    throw_input_error("sid.tokenizer: expected rqvae or rkmeans, got '{}'", tokenizer);
  if (embedding == "external" && external_path.empty())
    throw_input_error("sid.external_path: required with --embedding external");
  if (!(hybrid_weight >= 0.0f && hybrid_weight < 1e6f))
    throw_input_error("sid.hybrid_weight: must be a finite value >= 0, got {}", hybrid_weight);
  if (dim < 1) throw_input_error("sid.dim: must be >= 1, got {}", dim);
  ContentEmbeddingOptions c = content;
  c.dim = dim;
  c.validate();
  RqvaeOptions r = rqvae;
  r.levels = levels;
  r.codebook_size = codebook_size;
  r.validate();
  ResidualKMeansOptions k = rkmeans;
  k.levels = levels;
  k.codebook_size = codebook_size;
  k.validate();
}

nlohmann::json SidStageOptions::to_json() const {
  nlohmann::json j = {{"embedding", embedding},
                      {"tokenizer", tokenizer},
                      {"levels", levels},
                      {"codebook_size", codebook_size}};
  if (uses_content(*this))
    j["content"] = {{"dim", dim},
                    {"singular_value_power", content.singular_value_power},
                    {"min_df", content.tfidf.min_df},
                    {"max_df_ratio", content.tfidf.max_df_ratio},
                    {"oversampling", content.oversampling},
                    {"power_iterations", content.power_iterations},
                    {"fields",
                     {content.text.title, content.text.short_text, content.text.brand,
                      content.text.categories, content.text.description}},
                    {"max_description_tokens", content.text.max_description_tokens}};
  if (embedding == "hybrid") j["hybrid_weight"] = hybrid_weight;
  if (embedding == "external") j["external_path"] = external_path;
  if (tokenizer == "rqvae") {
    j["rqvae"] = rqvae.to_json();
    for (const char* key : {"levels", "codebook_size", "seed"}) j["rqvae"].erase(key);
  } else {
    j["rkmeans"] = {{"iterations", rkmeans.iterations},
                    {"normalize_residuals", rkmeans.normalize_residuals}};
  }
  return j;
}

nlohmann::json Coherence::to_json() const {
  return {{"ratio", ratio},
          {"p_same_leaf_given_same_prefix", p_same_prefix},
          {"p_same_leaf_random_pair", p_random},
          {"items_with_categories", items},
          {"pairs_sharing_prefix", prefix_pairs}};
}

Coherence semantic_coherence(const CodeMatrix& codes, int prefix,
                             const std::vector<ItemMeta>& items) {
  if (codes.rows() != static_cast<Eigen::Index>(items.size()))
    throw_error("semantic_coherence: {} code rows for {} items", codes.rows(), items.size());
  if (prefix < 1 || prefix > codes.cols())
    throw_error("semantic_coherence: prefix {} outside [1, {}]", prefix, codes.cols());
  const std::vector<int32_t> leaf = leaf_ids(items);
  // Pairs sharing both prefix and leaf are counted per (prefix, leaf) cell; pairs sharing the
  // prefix per prefix; pairs sharing the leaf per leaf.
  std::map<std::vector<int32_t>, int64_t> by_prefix;
  std::map<std::pair<std::vector<int32_t>, int32_t>, int64_t> by_prefix_leaf;
  std::unordered_map<int32_t, int64_t> by_leaf;
  Coherence c;
  for (Eigen::Index i = 0; i < codes.rows(); ++i) {
    if (leaf[i] < 0) continue;
    std::vector<int32_t> key(codes.row(i).data(), codes.row(i).data() + prefix);
    ++by_leaf[leaf[i]];
    ++by_prefix_leaf[{key, leaf[i]}];
    ++by_prefix[std::move(key)];
    ++c.items;
  }
  double same_prefix = 0, same_both = 0, same_leaf = 0;
  for (const auto& [key, n] : by_prefix) same_prefix += pairs(n);
  for (const auto& [key, n] : by_prefix_leaf) same_both += pairs(n);
  for (const auto& [key, n] : by_leaf) same_leaf += pairs(n);
  c.prefix_pairs = static_cast<int64_t>(same_prefix);
  c.p_same_prefix = same_prefix > 0 ? same_both / same_prefix : 0.0;
  c.p_random = c.items > 1 ? same_leaf / pairs(c.items) : 0.0;
  c.ratio = c.p_random > 0 ? c.p_same_prefix / c.p_random : 0.0;
  return c;
}

namespace {

nlohmann::json build_report(const Dataset& data, const SidStageOptions& o, const SidMap& map,
                            const CodeMatrix& codes, nlohmann::json info) {
  const SidStats& s = map.stats();
  nlohmann::json per_level = nlohmann::json::array();
  for (int l = 0; l < s.base_levels; ++l) {
    const LevelStats& ls = s.per_level[l];
    const Coherence c = semantic_coherence(codes, l + 1, data.items);
    // No two items share the prefix (unique tuples): the ratio is undefined, not zero.
    const nlohmann::json ratio = c.prefix_pairs > 0 ? nlohmann::json(c.ratio) : nlohmann::json();
    per_level.push_back({{"level", l + 1},
                         {"codebook_size", ls.codebook_size},
                         {"used_codes", ls.used_codes},
                         {"utilisation", ls.utilisation},
                         {"perplexity", ls.perplexity},
                         {"coherence", ratio}});
  }
  nlohmann::json report = std::move(info);
  report.update({{"dataset", data.name},
                 {"num_items", data.num_items()},
                 {"embedding", o.embedding},
                 {"tokenizer", o.tokenizer},
                 {"levels", s.base_levels},
                 {"codebook_size", o.codebook_size},
                 {"sid_levels", s.levels},
                 {"collision_rate", s.collision_rate},
                 {"colliding_items", s.colliding_items},
                 {"largest_collision_group", s.largest_collision_group},
                 {"unique_tuples", s.unique_tuples},
                 {"per_level", per_level},
                 {"coherence", semantic_coherence(codes, 1, data.items).to_json()}});
  if (o.embedding == "hybrid") report["hybrid_weight"] = o.hybrid_weight;
  return report;
}

void write_outputs(const fs::path& dir, const SidTokenizer& tokenizer, const SidMap& map,
                   const EmbeddingMatrix& embeddings, const nlohmann::json& report) {
  fs::create_directories(dir);
  map.save(dir / "sid_map.json");
  tokenizer.save(dir);
  save_npy(dir / "embeddings.npy", embeddings);
  write_file_atomic(dir / "report.json", report.dump(2) + "\n");
  write_file_atomic(dir / "report.md", sid_report_markdown(report));
}

}  // namespace

SidStageOutcome run_sid_stage(const Dataset& data, const SidStageOptions& options,
                              const Context& ctx, const fs::path& run_dir, bool force) {
  options.validate();
  ctx.apply();
  const fs::path dir = run_dir / kStage;
  if (uses_sasrec(options)) require_sasrec(options, run_dir);
  nlohmann::json config = options.to_json();
  config["seed"] = ctx.seed;
  const auto inputs = stage_inputs(data, options, run_dir);
  SidStageOutcome out;
  if (!force && stage_is_current(dir, kStage, config, inputs) && fs::exists(dir / "report.json")) {
    spdlog::info("sid: {} is up to date; reusing it", dir.string());
    out.report = nlohmann::json::parse(read_file(dir / "report.json"));
    out.skipped = true;
    out.seconds = Manifest::load(dir)->wall_seconds;
    return out;
  }
  // Files of another tokenizer or an older run must not outlive this one.
  if (fs::exists(dir)) fs::remove_all(dir);
  const auto start = std::chrono::steady_clock::now();
  nlohmann::json info;
  const EmbeddingMatrix embeddings = build_embeddings(data, options, ctx, run_dir, &info);
  info["embedding_dim"] = embeddings.cols();
  info["embedding_seconds"] = seconds_since(start);
  spdlog::info("sid: {} embeddings {} x {} in {:.1f} s", options.embedding, embeddings.rows(),
               embeddings.cols(), info["embedding_seconds"].get<double>());
  const auto tokenizer_start = std::chrono::steady_clock::now();
  auto tokenizer = make_tokenizer(options, ctx);
  tokenizer->fit(embeddings);
  const CodeMatrix codes = tokenizer->encode(embeddings);
  info["tokenizer_seconds"] = seconds_since(tokenizer_start);
  if (auto* rqvae = dynamic_cast<Rqvae*>(tokenizer.get())) {
    info["rqvae_train"] = rqvae->train_stats().to_json();
    // What the matching bought: the collision rate of plain argmin codes.
    if (rqvae->options().unique_last_level)
      info["collision_rate_argmin"] =
          sid_stats(rqvae->encode_nearest(embeddings), {}).collision_rate;
  }
  const std::vector<int32_t> sizes(options.levels, tokenizer->codebook_size());
  const SidMap map = SidMap::build(codes, sizes, training_popularity(data));
  out.report = build_report(data, options, map, codes, std::move(info));
  out.seconds = seconds_since(start);
  out.report["seconds"] = out.seconds;
  write_outputs(dir, *tokenizer, map, embeddings, out.report);
  Manifest m;
  m.stage = kStage;
  m.config = config;
  m.inputs = inputs;
  m.metrics = {{"collision_rate", out.report["collision_rate"]},
               {"level1_utilisation", out.report["per_level"][0]["utilisation"]},
               {"coherence", out.report["coherence"]["ratio"]},
               {"sid_levels", out.report["sid_levels"]}};
  m.wall_seconds = out.seconds;
  m.save(dir);
  return out;
}

std::string sid_report_markdown(const nlohmann::json& r) {
  std::string md = fmt::format(
      "SIDs of {} ({} items): {} embeddings (d = {}) -> {} {} x {}\n\n", r.value("dataset", ""),
      r.value("num_items", 0), r.value("embedding", ""), r.value("embedding_dim", 0),
      r.value("tokenizer", ""), r.value("levels", 0), r.value("codebook_size", 0));
  md +=
      "| collision rate | colliding items | largest group | unique tuples | SID levels | "
      "coherence | seconds |\n|---|---|---|---|---|---|---|\n";
  md += fmt::format("| {:.2f}% | {} | {} | {} | {} | {:.2f} | {:.0f} |\n\n",
                    100.0 * r.value("collision_rate", 0.0), r.value("colliding_items", 0),
                    r.value("largest_collision_group", 0), r.value("unique_tuples", 0),
                    r.value("sid_levels", 0), r["coherence"].value("ratio", 0.0),
                    r.value("seconds", 0.0));
  if (r.contains("collision_rate_argmin"))
    md += fmt::format(
        "Plain argmin codes, before the RQ-VAE's last-level matching: {:.2f}% collide.\n\n",
        100.0 * r["collision_rate_argmin"].get<double>());
  md +=
      "| level | codes used | utilisation | perplexity | coherence of prefix |\n"
      "|---|---|---|---|---|\n";
  for (const auto& l : r["per_level"]) {
    const auto& c = l["coherence"];
    md += fmt::format("| {} | {}/{} | {:.1f}% | {:.1f} | {} |\n", l.value("level", 0),
                      l.value("used_codes", 0), l.value("codebook_size", 0),
                      100.0 * l.value("utilisation", 0.0), l.value("perplexity", 0.0),
                      c.is_number() ? fmt::format("{:.2f}", c.get<double>()) : "-");
  }
  const auto& c = r["coherence"];
  md += fmt::format(
      "\nCoherence = P(same leaf category | same prefix) / P(same leaf category | random pair); "
      "level 1: {:.4f} / {:.4f} over {} items with categories.\n",
      c.value("p_same_leaf_given_same_prefix", 0.0), c.value("p_same_leaf_random_pair", 0.0),
      c.value("items_with_categories", 0));
  return md;
}

}  // namespace twistar
