#include "cuda_source.h"

namespace ominix::nn::detail {

std::string compact_source(std::string_view source) {
  std::string out;
  out.reserve(source.size());
  std::size_t at = 0;
  while (at < source.size()) {
    auto end = source.find('\n', at);
    if (end == std::string_view::npos) end = source.size();
    auto line = source.substr(at, end - at);
    at = end + 1;
    bool quoted = false;  // a // inside a string literal (asm text) is not a comment
    for (std::size_t i = 0; i < line.size(); ++i) {
      if (line[i] == '"' && (i == 0 || line[i - 1] != '\\')) quoted = !quoted;
      if (!quoted && line[i] == '/' && i + 1 < line.size() && line[i + 1] == '/') {
        line = line.substr(0, i);
        break;
      }
    }
    const auto first = line.find_first_not_of(" \t\r");
    if (first == std::string_view::npos) continue;
    line = line.substr(first, line.find_last_not_of(" \t\r") - first + 1);
    out.append(line);
    out.push_back('\n');
  }
  return out;
}

mlx::core::fast::CustomKernelFunction cuda_kernel(const std::string& name,
                                                  const std::vector<std::string>& input_names,
                                                  const std::vector<std::string>& output_names,
                                                  std::string_view source,
                                                  std::string_view header) {
  return mlx::core::fast::cuda_kernel(name, input_names, output_names, compact_source(source),
                                      compact_source(header));
}

}  // namespace ominix::nn::detail
