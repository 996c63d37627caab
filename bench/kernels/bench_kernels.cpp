// The quantized decode kernels in isolation, side by side with MLX's own ops on the same device,
// in the shapes of real checkpoints: the dense GEMV (QuantizedLinear: ours vs mx::quantized_matmul)
// and the MoE expert path (SwitchGLU(x, routes): our two kernels vs gather_qmm + SwiGLU +
// combine). Each case cycles through enough weight copies (and, for experts, random routes) that
// every call reads its weights from memory rather than L2. Prints one JSON object per case:
// microseconds a call (wall, a batch of calls evaluated together, median of repeats) and the
// weight bytes read per second.
//
// Also the launch floor: chains of tiny dependent ops (floor.add_chain), and of one custom kernel
// with more or less source (floor.custom_chain).
//
//   bench_kernels [--reps 200] [--repeat 5] [--only SUBSTRING,...]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <mlx/mlx.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "ominix/base/device.h"
#include "ominix/nn/fused.h"
#include "ominix/nn/linear.h"
#include "ominix/nn/moe.h"
#include "ominix/nn/switch.h"

namespace mx = mlx::core;
namespace nn = ominix::nn;
using Clock = std::chrono::steady_clock;

namespace {

constexpr double kColdBytes = 256e6;  // weights cycled through per case: five times the H100's L2

struct QmvCase {
  std::string name;
  int out, in, rows, bits, group;
};

struct ExpertCase {
  std::string name;
  int experts, dim, hidden, top_k, tokens, bits, group;
};

double bytes_of(const std::vector<mx::array>& arrays) {
  double b = 0;
  for (const auto& a : arrays) b += double(a.nbytes());
  return b;
}

// Median seconds per call of make(i) over `reps` calls evaluated together, `repeat` times.
template <typename Make>
double time_calls(Make make, int reps, int repeat) {
  std::vector<double> t;
  for (int r = -1; r < repeat; ++r) {  // r = -1: warm-up (compiles the kernels)
    std::vector<mx::array> outs;
    outs.reserve(reps);
    mx::synchronize();
    const auto t0 = Clock::now();
    for (int i = 0; i < reps; ++i) outs.push_back(make(i));
    mx::eval(outs);
    mx::synchronize();
    if (r >= 0) t.push_back(std::chrono::duration<double>(Clock::now() - t0).count() / reps);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// Timings of both, and how far our output is from the peer's: max |ours - peer| / max |peer|.
nlohmann::json result(double ours_s, double peer_s, double bytes, const mx::array& ours,
                      const mx::array& peer) {
  auto a = mx::astype(ours, mx::float32), b = mx::astype(peer, mx::float32);
  auto rel = mx::divide(mx::max(mx::abs(mx::subtract(a, b))), mx::max(mx::abs(b)));
  return {{"ours_us", ours_s * 1e6},         {"max_abs_diff_over_max", rel.item<float>()},
          {"peer_us", peer_s * 1e6},         {"speedup", peer_s / ours_s},
          {"weight_bytes", bytes},           {"ours_gbs", bytes / ours_s / 1e9},
          {"peer_gbs", bytes / peer_s / 1e9}};
}

nlohmann::json run_qmv(const QmvCase& c, int reps, int repeat) {
  const ominix::io::QuantSpec spec{c.group, c.bits, ominix::io::QuantMode::affine};
  auto dense = mx::astype(mx::multiply(mx::random::normal({c.out, c.in}), mx::array(0.02f)),
                          mx::bfloat16);  // bf16 weights: scales and biases in x's dtype
  auto q0 = nn::QuantizedLinear::from(nn::Linear{dense}, spec);
  const double bytes = bytes_of({q0.weight, q0.scales, *q0.biases});
  const int copies = std::max(1, int(kColdBytes / bytes + 0.999));
  std::vector<nn::QuantizedLinear> layers{q0};
  for (int i = 1; i < copies; ++i)  // distinct buffers with the same values
    layers.push_back({mx::add(q0.weight, mx::array(0u, mx::uint32)),
                      mx::add(q0.scales, mx::array(0.0f, mx::bfloat16)),
                      mx::add(*q0.biases, mx::array(0.0f, mx::bfloat16)), std::nullopt, spec});
  for (const auto& l : layers) mx::eval(l.weight, l.scales, *l.biases);
  auto x = mx::astype(mx::random::normal({1, c.rows, c.in}), mx::bfloat16);
  mx::eval(x);
  auto call = [&](int i) { return layers[i % copies](x); };
  nn::set_fused_kernels(true);
  const double ours = time_calls(call, reps, repeat);
  auto y_ours = call(0);
  mx::eval(y_ours);
  nn::set_fused_kernels(false);
  const double peer = time_calls(call, reps, repeat);
  auto y_peer = call(0);
  nn::set_fused_kernels(true);
  auto out = result(ours, peer, bytes, y_ours, y_peer);
  out["kernel"] = "qmv";
  out["case"] = c.name;
  out["shape"] = {
      {"out", c.out}, {"in", c.in}, {"rows", c.rows}, {"bits", c.bits}, {"group", c.group}};
  return out;
}

nlohmann::json run_experts(const ExpertCase& c, int reps, int repeat) {
  const ominix::io::QuantSpec spec{c.group, c.bits, ominix::io::QuantMode::affine};
  auto experts = [&](int out, int in) {
    auto w = mx::astype(mx::multiply(mx::random::normal({c.experts, out, in}), mx::array(0.02f)),
                        mx::bfloat16);
    auto q = mx::quantize(w, c.group, c.bits);
    mx::eval(q);
    return nn::SwitchLinear{q[0], q[1], q[2], spec};
  };
  auto gate = experts(c.hidden, c.dim), up = experts(c.hidden, c.dim),
       down = experts(c.dim, c.hidden);
  const double all_bytes = bytes_of({gate.weight, *gate.scales, *gate.biases}) * 3;
  const double bytes = all_bytes / c.experts * c.top_k * c.tokens;  // the routed experts' share
  nn::SwitchGLU fused{gate, up, down, {.path = nn::KernelPath::fused}};
  nn::SwitchGLU plain{gate, up, down, {.path = nn::KernelPath::plain}};
  constexpr int kRouteSets = 64;
  std::vector<nn::Routes> routes;
  for (int i = 0; i < kRouteSets; ++i) {
    routes.push_back(
        nn::route(mx::random::normal({1, c.tokens, c.experts}), {.routing = nn::Routing::softmax,
                                                                 .top_k = c.top_k,
                                                                 .norm_topk_prob = true,
                                                                 .path = nn::KernelPath::plain}));
    mx::eval(routes.back().indices, routes.back().weights);
  }
  auto x = mx::astype(mx::random::normal({1, c.tokens, c.dim}), mx::bfloat16);
  mx::eval(x);
  const double ours =
      time_calls([&](int i) { return fused(x, routes[i % kRouteSets]); }, reps, repeat);
  const double peer =
      time_calls([&](int i) { return plain(x, routes[i % kRouteSets]); }, reps, repeat);
  auto y_ours = fused(x, routes[0]), y_peer = plain(x, routes[0]);
  auto out = result(ours, peer, bytes, y_ours, y_peer);
  out["kernel"] = "experts";
  out["case"] = c.name;
  out["shape"] = {{"experts", c.experts}, {"dim", c.dim},       {"hidden", c.hidden},
                  {"top_k", c.top_k},     {"tokens", c.tokens}, {"bits", c.bits},
                  {"group", c.group}};
  return out;
}

// Host microseconds an op to encode a chain of `ops` ops (until async_eval returns) and wall
// microseconds an op until it is done, medians of `repeat`; step(x) adds one op to the chain.
template <typename Step>
nlohmann::json time_chain(const std::string& name, int ops, int repeat, Step step) {
  std::vector<double> encode, total;
  for (int r = -1; r < repeat; ++r) {  // r = -1: warm-up (compiles the kernels)
    auto x = mx::zeros({1, 2048}, mx::bfloat16);
    mx::eval(x);
    mx::synchronize();
    const auto t0 = Clock::now();
    for (int i = 0; i < ops; ++i) x = step(x);
    const auto t1 = Clock::now();
    mx::async_eval(x);
    const auto t2 = Clock::now();
    mx::eval(x);
    mx::synchronize();
    const auto t3 = Clock::now();
    if (r < 0) continue;
    encode.push_back(std::chrono::duration<double>(t2 - t1).count() / ops);
    total.push_back(std::chrono::duration<double>(t3 - t0).count() / ops);
  }
  std::sort(encode.begin(), encode.end());
  std::sort(total.begin(), total.end());
  return {{"name", name},
          {"ops", ops},
          {"encode_us_per_op", 1e6 * encode[encode.size() / 2]},
          {"wall_us_per_op", 1e6 * total[total.size() / 2]}};
}

// The floor under any decode step: a chain of dependent one-row adds (each a kernel of next to no
// work), evaluated at once.
nlohmann::json run_floor(int ops, int repeat) {
  const auto one = mx::array(1.0f, mx::bfloat16);
  return time_chain("floor.add_chain", ops, repeat,
                    [&](const mx::array& x) { return mx::add(x, one); });
}

// The same chain made of one custom kernel (x + 1 on one row) whose source carries
// `header_bytes` of unused device functions: MLX builds a custom kernel's whole source at every
// call and hashes it at every launch, so host time a launch grows with the source.
nlohmann::json run_floor_custom(int ops, int header_bytes, int repeat) {
  std::string header;
  for (int i = 0; header.size() < std::size_t(header_bytes); ++i)
    header += "__device__ __forceinline__ float ominix_unused_" + std::to_string(i) +
              "(float a) { return a * " + std::to_string(i) + ".0f + 1.0f; }\n";
  auto kernel =
      mx::fast::cuda_kernel("ominix_bench_floor_" + std::to_string(header_bytes), {"x"}, {"y"},
                            "  const unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;\n"
                            "  if (i < 2048u) y[i] = x[i] + T(1.0f);\n",
                            header);
  auto j = time_chain("floor.custom_chain", ops, repeat, [&](const mx::array& x) {
    return kernel({x}, {x.shape()}, {x.dtype()}, {2048, 1, 1}, {256, 1, 1}, {{"T", x.dtype()}},
                  std::nullopt, false, {})[0];
  });
  j["header_bytes"] = header.size();
  return j;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_kernels: quantized decode kernels vs MLX's ops"};
  int reps = 200, repeat = 5;
  std::string only;
  app.add_option("--reps", reps, "calls evaluated together per timing");
  app.add_option("--repeat", repeat, "timings per case (the median is printed)");
  app.add_option("--only", only,
                 "run the cases whose name contains one of these (comma-separated)");
  CLI11_PARSE(app, argc, argv);
  ominix::set_device(ominix::DeviceKind::gpu);
  mx::random::seed(7);

  // Projections of the benchmarked checkpoints (bench/llm/shapes.py), 4-bit groups of 64 as
  // mlx-community publishes them.
  const std::vector<QmvCase> qmv{
      {"qwen3-30b-a3b.qkv", 5120, 2048, 1, 4, 64},
      {"qwen3-30b-a3b.o", 2048, 4096, 1, 4, 64},
      {"qwen3-30b-a3b.lm_head", 151936, 2048, 1, 4, 64},
      {"mixtral-8x7b.qkv", 6144, 4096, 1, 4, 64},
      {"mixtral-8x7b.o", 4096, 4096, 1, 4, 64},
      {"glm4-9b.gate_up", 27392, 4096, 1, 4, 64},
      {"glm4-9b.down", 4096, 13696, 1, 4, 64},
      {"glm4-9b.gate_up.8bit", 27392, 4096, 1, 8, 64},
      {"glm4-9b.gate_up.rows2", 27392, 4096, 2, 4, 64},
      {"glm4-9b.gate_up.rows4", 27392, 4096, 4, 4, 64},
      {"glm4-9b.gate_up.rows8", 27392, 4096, 8, 4, 64},
  };
  const std::vector<ExpertCase> moe{
      {"qwen3-30b-a3b.experts", 128, 2048, 768, 8, 1, 4, 64},
      {"glm4.5-air.experts", 128, 4096, 1408, 8, 1, 4, 64},
      {"mixtral-8x7b.experts", 8, 4096, 14336, 2, 1, 4, 64},
      {"qwen3-30b-a3b.experts.8bit", 128, 2048, 768, 8, 1, 8, 64},
      {"qwen3-30b-a3b.experts.tokens4", 128, 2048, 768, 8, 4, 4, 64},
  };
  auto wanted = [&](const std::string& name) {
    if (only.empty()) return true;
    for (std::size_t at = 0; at <= only.size();) {
      auto end = std::min(only.find(',', at), only.size());
      if (end > at && name.find(only.substr(at, end - at)) != std::string::npos) return true;
      at = end + 1;
    }
    return false;
  };
  const std::string device = ominix::mlx_backend();
  auto print = [&](nlohmann::json j) {
    j["backend"] = device;
    std::printf("%s\n", j.dump().c_str());
    std::fflush(stdout);
  };
  for (const auto& c : qmv)
    if (wanted(c.name)) print(run_qmv(c, reps, repeat));
  for (const auto& c : moe)
    if (wanted(c.name)) print(run_experts(c, reps, repeat));
  if (wanted("floor.add_chain"))
    for (int ops : {100, 600, 2000}) print(run_floor(ops, repeat));
  if (wanted("floor.custom_chain"))
    for (int bytes : {0, 2000, 5000, 10000, 20000}) print(run_floor_custom(600, bytes, repeat));
  return 0;
}
