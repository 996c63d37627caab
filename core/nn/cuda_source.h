// Internal: our CUDA custom kernels, created through one function. MLX's custom kernel builds
// the kernel's whole source (header + body) again at every call and hashes it again at every
// launch to find the compiled module: host time per launch grows with the source's length, and a
// decode step launches several of these per layer. So the sources are compacted once, when the
// kernel function is made: comments, indentation and blank lines dropped.
#pragma once

#include <mlx/fast.h>

#include <string>
#include <string_view>
#include <vector>

namespace ominix::nn::detail {

/// source without // comments, leading and trailing blanks and empty lines.
std::string compact_source(std::string_view source);

/// mlx::core::fast::cuda_kernel with source and header compacted.
mlx::core::fast::CustomKernelFunction cuda_kernel(const std::string& name,
                                                  const std::vector<std::string>& input_names,
                                                  const std::vector<std::string>& output_names,
                                                  std::string_view source,
                                                  std::string_view header = {});

}  // namespace ominix::nn::detail
