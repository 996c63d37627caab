// detail::compact_source: what the CUDA custom kernels' sources become before MLX sees them.
#include "core/nn/cuda_source.h"
#include "core/nn/quant_cuda.h"

#include <gtest/gtest.h>

#include <string>

namespace {

using ominix::nn::detail::compact_source;

TEST(CudaSource, DropsCommentsIndentationAndBlankLines) {
  const std::string source =
      "// a leading comment\n"
      "  __device__ float f(float x) {  // trailing\n"
      "\n"
      "#pragma unroll\n"
      "    for (int i = 0; i < 4; ++i) x *= 2.0f;   \n"
      "    return x / 2.0f;\n"
      "  }\n";
  EXPECT_EQ(compact_source(source),
            "__device__ float f(float x) {\n"
            "#pragma unroll\n"
            "for (int i = 0; i < 4; ++i) x *= 2.0f;\n"
            "return x / 2.0f;\n"
            "}\n");
}

TEST(CudaSource, KeepsSlashesInsideStringLiterals) {
  EXPECT_EQ(compact_source("  asm(\"// not a comment \\\" still //\");  // a comment\n"),
            "asm(\"// not a comment \\\" still //\");\n");
  EXPECT_EQ(compact_source("x = a / b;"), "x = a / b;\n");
  EXPECT_EQ(compact_source(""), "");
}

// The tensor-core kernels' header keeps every line of code, in order.
TEST(CudaSource, QuantHeaderKeepsItsCode) {
  const std::string header = ominix::nn::detail::quant_mma_header();
  const auto compact = compact_source(header);
  EXPECT_LT(compact.size(), header.size() * 3 / 4);
  std::size_t at = 0;
  for (const char* code :
       {"namespace ominix_q {", "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32",
        "constexpr int XPITCH = 40;", "__device__ __forceinline__ void tile_sum(",
        "}  // namespace ominix_q"}) {
    const std::string line = std::string(code).substr(0, std::string(code).find("  //"));
    const auto found = compact.find(line, at);
    ASSERT_NE(found, std::string::npos) << line;
    at = found;
  }
  EXPECT_EQ(compact.find("//"), std::string::npos);
}

// Each kind of quantized kernel takes the shared part and its own, not the other kind's.
TEST(CudaSource, QuantKernelsTakeTheirOwnPart) {
  const auto cores = ominix::nn::detail::quant_cores_header();
  const auto mma = ominix::nn::detail::quant_mma_header();
  for (const auto* header : {&cores, &mma}) {
    EXPECT_NE(header->find("uint4 load16("), std::string::npos);
    EXPECT_NE(header->find("T silu_mul("), std::string::npos);
  }
  EXPECT_NE(cores.find("float load_x("), std::string::npos);
  EXPECT_EQ(cores.find("mma.sync"), std::string::npos);
  EXPECT_NE(mma.find("void mma_steps("), std::string::npos);
  EXPECT_EQ(mma.find("float load_x("), std::string::npos);
  EXPECT_LT(compact_source(mma).size(), 8000u);
}

}  // namespace
