// Qwen2.5-VL against transformers 5.24's Qwen2_5_VLForConditionalGeneration on a tiny random
// checkpoint (tools/fixtures/gen_qwen_vl.py): get_rope_index's positions and deltas exactly, the
// vision tower's outputs and the logits at every position by normalised error, 12 greedy tokens
// through the generation loop exactly, for text, images and a video; both checkpoint key layouts
// and config styles; M-RoPE with equal axes against plain RoPE; bad inputs. Qwen3-VL the same way
// against Qwen3VLForConditionalGeneration (tools/fixtures/gen_qwen3_vl.py), its vision tower's
// DeepStack features included.
#include <gtest/gtest.h>
#include <mlx/mlx.h>

#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "ominix/base/error.h"
#include "ominix/generate/generate.h"
#include "ominix/io/config.h"
#include "ominix/io/safetensors.h"
#include "ominix/models/qwen_vl.h"
#include "ominix/nn/rope.h"
#include "support/testing.h"

namespace mx = mlx::core;
namespace fs = std::filesystem;
namespace vl = ominix::qwen_vl;
using ominix::tests::expect_rel;
using ominix::tests::fixture;

namespace {

const fs::path kDir = fixture("models/qwen_vl/qwen2_5_vl");
constexpr double kTol = 1e-4;  // normalised error, fp32

struct Fixture {
  std::unique_ptr<vl::Model> model = vl::load(kDir);
  ominix::io::TensorMap want = ominix::io::load_safetensors(kDir / "expected.safetensors");
  nlohmann::json meta = ominix::tests::load_json(kDir / "expected.json");

  const mx::array& get(const std::string& key) const { return want.at(key); }
  bool has(const std::string& key) const { return want.count(key) > 0; }
};
Fixture& fx() {
  static Fixture f;
  return f;
}

std::vector<int> ints(const mx::array& a) {
  auto c = mx::astype(a, mx::int32);
  mx::eval(c);
  return {c.data<int32_t>(), c.data<int32_t>() + c.size()};
}

/// The case's prompt: its ids and, when it has images, their pixel rows and grids.
vl::Prompt prompt(const std::string& name) {
  const auto p = "case." + name + ".";
  vl::Prompt out{.ids = ints(fx().get(p + "input_ids")), .images = std::nullopt};
  if (!fx().has(p + "image_grid_thw")) return out;
  const auto g = ints(fx().get(p + "image_grid_thw"));
  vl::Images images{.pixel_values = mx::array(0.0f), .grids = {}};
  std::vector<mx::array> pixels;
  for (std::size_t i = 0; i < g.size(); i += 3) {
    images.grids.push_back({g[i], g[i + 1], g[i + 2]});
    // The fixture's two images: the square one first where there are two.
    const bool square = name == "square" || (name == "two" && i == 0);
    pixels.push_back(fx().get(square ? "square.pixel_values" : "nonsquare.pixel_values"));
  }
  images.pixel_values = mx::concatenate(pixels, 0);
  out.images = std::move(images);
  return out;
}

std::vector<std::string> cases() {
  return fx().meta["cases"].get<std::vector<std::string>>();
}

mx::array as_batch(const std::vector<int>& ids) {
  return mx::array(ids.data(), {1, static_cast<int>(ids.size())}, mx::int32);
}

mx::array prompt_logits(const vl::Model& model, const vl::Prompt& p) {
  auto bound = model.bind(p);
  auto cache = bound->make_cache();
  return (*bound)(as_batch(p.ids), cache);
}

std::vector<int> greedy(const ominix::generate::LanguageModel& model, const std::vector<int>& ids,
                        int prefill_step) {
  ominix::generate::PromptCache cache(model);
  ominix::generate::GenerateParams params;
  params.max_tokens = fx().meta["max_new_tokens"].get<int>();
  params.ignore_eos = true;
  params.prefill_step_size = prefill_step;
  return ominix::generate::generate(model, cache, ids, params).tokens;
}

TEST(QwenVl, RopeIndexMatchesTransformers) {
  for (const auto& name : cases()) {
    const auto p = prompt(name);
    std::vector<vl::Grid> grids = p.images ? p.images->grids : std::vector<vl::Grid>{};
    const auto index = fx().model->rope_index(p.ids, {.images = grids});
    EXPECT_EQ(ints(index.positions), ints(fx().get("case." + name + ".position_ids"))) << name;
    EXPECT_EQ(index.positions.shape(), fx().get("case." + name + ".position_ids").shape()) << name;
    EXPECT_EQ(index.delta, ints(fx().get("case." + name + ".rope_deltas"))[0]) << name;
  }
}

TEST(QwenVl, VisionTowerMatchesTransformers) {
  for (const auto& name : cases()) {
    const auto p = prompt(name);
    if (!p.images) continue;
    const auto out = fx().model->encode_images(*p.images);
    expect_rel(out.hidden, fx().get("case." + name + ".vision_hidden"), kTol, name + " hidden");
    expect_rel(out.features, fx().get("case." + name + ".image_features"), kTol,
               name + " features");
  }
}

TEST(QwenVl, LogitsMatchTransformers) {
  for (const auto& name : cases())
    expect_rel(prompt_logits(*fx().model, prompt(name)), fx().get("case." + name + ".logits"), kTol,
               name);
}

TEST(QwenVl, TextOnlyModelIsPlainRope) {
  // Unbound, the model reads text at the cache offset: transformers' text-only positions.
  const auto p = prompt("text");
  auto cache = fx().model->make_cache();
  expect_rel((*fx().model)(as_batch(p.ids), cache), fx().get("case.text.logits"), kTol, "text");
}

TEST(QwenVl, GreedyTokensMatchTransformers) {
  for (const auto& name : cases()) {
    const auto p = prompt(name);
    auto bound = fx().model->bind(p);
    const auto want = ints(fx().get("case." + name + ".greedy"));
    EXPECT_EQ(greedy(*bound, p.ids, 2048), want) << name;
    // Prefill chunks of 5 tokens cut through the images' runs of pads.
    EXPECT_EQ(greedy(*bound, p.ids, 5), want) << name << " (chunked prefill)";
  }
}

TEST(QwenVl, VideoMatchesTransformers) {
  // 4 frames -> a 2 x 4 x 6 grid at 2 / 1.5 s per temporal patch: time positions 0 and
  // trunc(tokens_per_second * 4 / 3) = 2.
  const auto g = ints(fx().get("case.video.video_grid_thw"));
  auto seconds = fx().get("case.video.second_per_grid_ts");
  mx::eval(seconds);
  vl::Videos videos{.pixel_values = fx().get("video.pixel_values"),
                    .grids = {{g[0], g[1], g[2]}},
                    .second_per_grid = {seconds.item<float>()}};
  const vl::Prompt p{.ids = ints(fx().get("case.video.input_ids")), .images = {}, .videos = videos};
  const auto index = fx().model->rope_index(
      p.ids, {.videos = videos.grids, .second_per_grid = videos.second_per_grid});
  EXPECT_EQ(ints(index.positions), ints(fx().get("case.video.position_ids")));
  EXPECT_EQ(index.delta, ints(fx().get("case.video.rope_deltas"))[0]);
  const auto out =
      fx().model->encode_images({.pixel_values = videos.pixel_values, .grids = videos.grids});
  expect_rel(out.hidden, fx().get("case.video.vision_hidden"), kTol, "video hidden");
  expect_rel(out.features, fx().get("case.video.video_features"), kTol, "video features");
  expect_rel(prompt_logits(*fx().model, p), fx().get("case.video.logits"), kTol, "video logits");
  auto bound = fx().model->bind(p);
  const auto want = ints(fx().get("case.video.greedy"));
  EXPECT_EQ(greedy(*bound, p.ids, 2048), want);
  EXPECT_EQ(greedy(*bound, p.ids, 5), want) << "chunked prefill";
}

TEST(QwenVl, PromptCacheReuseKeepsPositions) {
  // A second request sharing the cached prompt prefills only its new tokens, which still sit at
  // the positions get_rope_index gives the whole prompt.
  const auto p = prompt("two");
  auto bound = fx().model->bind(p);
  ominix::generate::PromptCache cache(*bound);
  ominix::generate::GenerateParams params;
  params.max_tokens = 1;
  params.ignore_eos = true;
  std::vector<int> head(p.ids.begin(), p.ids.end() - 4);
  ominix::generate::generate(*bound, cache, head, params);
  params.max_tokens = fx().meta["max_new_tokens"].get<int>();
  auto result = ominix::generate::generate(*bound, cache, p.ids, params);
  EXPECT_GT(result.stats.cached_prompt_tokens, 0);
  EXPECT_EQ(result.tokens, ints(fx().get("case.two.greedy")));
}

// A scratch copy of the checkpoint in the other key layout / config style.
fs::path scratch(const std::string& name) {
  auto dir =
      fs::temp_directory_path() / ("ominix_qwen_vl_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  for (const char* f : {"generation_config.json", "tokenizer.json"})
    fs::copy_file(kDir / f, dir / f);
  return dir;
}

void write_json(const fs::path& path, const nlohmann::json& j) {
  std::ofstream(path) << j.dump(1);
}

TEST(QwenVl, LoadsTransformers5KeysAndFlat4xConfig) {
  // transformers 5.x keys (model.language_model.*, model.visual.*) with a 4.x flat config
  // (text fields at the top, rope_theta + rope_scaling {type: mrope}).
  const auto dir = scratch("v5keys");
  ominix::io::TensorMap renamed;
  for (auto& [k, v] : ominix::io::load_safetensors(kDir / "model.safetensors")) {
    std::string key = k.starts_with("model.")    ? "model.language_model." + k.substr(6)
                      : k.starts_with("visual.") ? "model." + k
                                                 : k;
    renamed.insert_or_assign(key, v);
  }
  ominix::io::save_safetensors(dir / "model.safetensors", renamed);
  auto config = ominix::tests::load_json(kDir / "config.json");
  auto text = config["text_config"];
  config.erase("text_config");
  for (auto& [k, v] : text.items())
    if (k != "rope_parameters" && k != "model_type") config[k] = v;
  config["rope_theta"] = text["rope_parameters"]["rope_theta"];
  config["rope_scaling"] = {{"type", "mrope"},
                            {"mrope_section", text["rope_parameters"]["mrope_section"]}};
  write_json(dir / "config.json", config);

  vl::register_family();
  auto any = ominix::generate::load_model(dir);
  auto* model = dynamic_cast<vl::Model*>(any.get());
  ASSERT_NE(model, nullptr);
  EXPECT_EQ(model->info().model_type, "qwen2_5_vl");
  expect_rel(prompt_logits(*model, prompt("nonsquare")), fx().get("case.nonsquare.logits"), kTol,
             "5.x keys");
  fs::remove_all(dir);
}

TEST(QwenVl, LoadsMlxVlmKeyLayout) {
  // mlx-vlm's names (language_model.model.*, language_model.lm_head.*, vision_tower.*) and its
  // channels-last patch embedding [D, T, P, P, C].
  const auto dir = scratch("mlxvlm");
  fs::copy_file(kDir / "config.json", dir / "config.json");
  ominix::io::TensorMap renamed;
  for (auto& [k, v] : ominix::io::load_safetensors(kDir / "model.safetensors")) {
    std::string key =
        k.starts_with("visual.") ? "vision_tower." + k.substr(7) : "language_model." + k;
    renamed.insert_or_assign(
        key, key == "vision_tower.patch_embed.proj.weight" ? mx::transpose(v, {0, 2, 3, 4, 1}) : v);
  }
  ominix::io::save_safetensors(dir / "model.safetensors", renamed);
  auto model = vl::load(dir);
  expect_rel(prompt_logits(*model, prompt("two")), fx().get("case.two.logits"), kTol,
             "mlx-vlm keys");
  fs::remove_all(dir);
}

TEST(QwenVl, MropeWithEqualAxesIsPlainRope) {
  ominix::io::RopeConfig config;
  config.theta = 10000.0;
  const ominix::nn::RoPE rope(config, 32);
  auto x = mx::random::normal({1, 2, 5, 32}, mx::float32, 0.0f, 1.0f, mx::random::key(3));
  const int offset = 7;
  auto pos = mx::broadcast_to(mx::reshape(mx::arange(offset, offset + 5, mx::int32), {1, 1, 5}),
                              {3, 1, 5});
  auto tables = ominix::nn::mrope_tables(pos, rope.inv_freq(0), {.sections = {4, 6, 6}});
  expect_rel(ominix::nn::apply_rotary(x, tables), rope(x, offset), 1e-6, "mrope");
  auto interleaved =
      ominix::nn::mrope_tables(pos, rope.inv_freq(0), {.sections = {4, 6, 6}, .interleaved = true});
  expect_rel(ominix::nn::apply_rotary(x, interleaved), rope(x, offset), 1e-6, "interleaved");
}

TEST(QwenVl, RejectsMismatchedImages) {
  auto p = prompt("square");
  // One image-pad token too few for the grid.
  auto ids = p.ids;
  ids.erase(std::find(ids.begin(), ids.end(), fx().meta["image_token_id"].get<int>()));
  EXPECT_THROW(fx().model->rope_index(ids, {.images = p.images->grids}), ominix::InvalidArgument);
  // Image pads but no image.
  EXPECT_THROW(fx().model->bind({.ids = p.ids, .images = std::nullopt}), ominix::InvalidArgument);
  // pixel rows that do not make the grid.
  auto bad = *p.images;
  bad.pixel_values = mx::slice(bad.pixel_values, {0, 0}, {4, bad.pixel_values.shape(1)});
  EXPECT_THROW(fx().model->encode_images(bad), ominix::InvalidArgument);
  // A video token without a video.
  const int video =
      ominix::io::ConfigReader::load(kDir / "config.json").required<int>("video_token_id");
  EXPECT_THROW(fx().model->rope_index(std::vector<int>{1, video, 2}, {}), ominix::InvalidArgument);
}

TEST(QwenVl, MissingVisionTensorIsNamed) {
  const auto dir = scratch("missing");
  fs::copy_file(kDir / "config.json", dir / "config.json");
  auto tensors = ominix::io::load_safetensors(kDir / "model.safetensors");
  tensors.erase("visual.merger.mlp.2.bias");
  ominix::io::save_safetensors(dir / "model.safetensors", tensors);
  try {
    vl::load(dir);
    ADD_FAILURE() << "no WeightError";
  } catch (const ominix::WeightError& e) {
    EXPECT_NE(std::string(e.what()).find("visual.merger.mlp.2.bias"), std::string::npos)
        << e.what();
  }
  fs::remove_all(dir);
}

}  // namespace

namespace {

// Qwen3-VL's vision tower (tools/fixtures/gen_qwen3_vl_vision.py): transformers 5.24's
// Qwen3VLVisionModel on one square image, one non-square image (the 4x4 learned position grid
// resampled to 4x4 and 4x8) and both.
TEST(Qwen3VlVision, MatchesTransformers) {
  const fs::path dir = fixture("models/qwen_vl/qwen3_vl");
  const auto want = ominix::io::load_safetensors(dir / "expected.safetensors");
  const auto meta = ominix::tests::load_json(dir / "expected.json");
  const auto encoder = vl::load_vision(dir);
  for (const auto& name : meta["cases"].get<std::vector<std::string>>()) {
    const auto p = "case." + name + ".";
    const auto g = ints(want.at(p + "image_grid_thw"));
    vl::Images images{.pixel_values = mx::array(0.0f), .grids = {}};
    std::vector<mx::array> pixels;
    for (std::size_t i = 0; i < g.size(); i += 3) {
      images.grids.push_back({g[i], g[i + 1], g[i + 2]});
      const bool square = name == "square" || (name == "two" && i == 0);
      pixels.push_back(want.at(square ? "square.pixel_values" : "nonsquare.pixel_values"));
    }
    images.pixel_values = mx::concatenate(pixels, 0);
    const auto out = (*encoder)(images);
    expect_rel(out.hidden, want.at(p + "vision_hidden"), kTol, name + " hidden");
    expect_rel(out.features, want.at(p + "image_features"), kTol, name + " features");
    ASSERT_EQ(out.deepstack.size(), meta["deepstack"].get<std::size_t>()) << name;
    for (std::size_t i = 0; i < out.deepstack.size(); ++i)
      expect_rel(out.deepstack[i], want.at(p + "deepstack." + std::to_string(i)), kTol,
                 name + " deepstack " + std::to_string(i));
  }
}

TEST(Qwen3VlVision, Qwen25TowerLoadsAlone) {
  const auto encoder = vl::load_vision(kDir);
  const auto p = prompt("nonsquare");
  expect_rel((*encoder)(*p.images).features, fx().get("case.nonsquare.image_features"), kTol,
             "qwen2.5 tower alone");
}

}  // namespace

namespace {

// Qwen3-VL whole (tools/fixtures/gen_qwen3_vl.py): Qwen3 text model with interleaved M-RoPE and
// DeepStack features added after its first layers, against Qwen3VLForConditionalGeneration.
struct Qwen3Fixture {
  fs::path dir = fixture("models/qwen_vl/qwen3_vl");
  std::unique_ptr<vl::Model> model = vl::load(dir);
  ominix::io::TensorMap want = ominix::io::load_safetensors(dir / "expected.safetensors");
  nlohmann::json meta = ominix::tests::load_json(dir / "expected.json");

  vl::Prompt prompt(const std::string& name) const {
    vl::Prompt out{.ids = ints(want.at("prompt." + name + ".input_ids")), .images = std::nullopt};
    std::vector<std::string> parts;
    if (name == "square" || name == "nonsquare") parts = {name};
    if (name == "two") parts = {"square", "nonsquare"};
    if (parts.empty()) return out;
    vl::Images images{.pixel_values = mx::array(0.0f), .grids = {}};
    std::vector<mx::array> pixels;
    for (const auto& part : parts) {
      const auto g = ints(want.at("case." + part + ".image_grid_thw"));
      images.grids.push_back({g[0], g[1], g[2]});
      pixels.push_back(want.at(part + ".pixel_values"));
    }
    images.pixel_values = mx::concatenate(pixels, 0);
    out.images = std::move(images);
    return out;
  }
};
Qwen3Fixture& fx3() {
  static Qwen3Fixture f;
  return f;
}

TEST(Qwen3Vl, RopeIndexLogitsAndGreedyMatchTransformers) {
  for (const auto& name : fx3().meta["prompts"].get<std::vector<std::string>>()) {
    const auto p = fx3().prompt(name);
    const auto key = "prompt." + name + ".";
    std::vector<vl::Grid> grids = p.images ? p.images->grids : std::vector<vl::Grid>{};
    const auto index = fx3().model->rope_index(p.ids, {.images = grids});
    EXPECT_EQ(ints(index.positions), ints(fx3().want.at(key + "position_ids"))) << name;
    EXPECT_EQ(index.delta, ints(fx3().want.at(key + "rope_deltas"))[0]) << name;
    expect_rel(prompt_logits(*fx3().model, p), fx3().want.at(key + "logits"), kTol,
               "qwen3 " + name);
    auto bound = fx3().model->bind(p);
    const auto want = ints(fx3().want.at(key + "greedy"));
    EXPECT_EQ(greedy(*bound, p.ids, 2048), want) << name;
    EXPECT_EQ(greedy(*bound, p.ids, 5), want) << name << " (chunked prefill)";
  }
}

TEST(Qwen3Vl, VideoIsUnsupported) {
  const int video =
      ominix::io::ConfigReader::load(fx3().dir / "config.json").required<int>("video_token_id");
  EXPECT_THROW(fx3().model->rope_index(std::vector<int>{1, video, 2}, {}),
               ominix::UnsupportedError);
}

TEST(Qwen3Vl, LoadModelPicksItFromConfig) {
  vl::register_family();
  auto any = ominix::generate::load_model(fx3().dir);
  ASSERT_NE(dynamic_cast<vl::Model*>(any.get()), nullptr);
  EXPECT_EQ(any->info().model_type, "qwen3_vl");
}

}  // namespace
