# config.yaml of the speech families
# FunASR-Nano's config reader is compiled in (its library would bring the Qwen3 decoder along).
find_package(yaml-cpp REQUIRED)
add_executable(fuzz_config_yaml ${CMAKE_CURRENT_LIST_DIR}/fuzz_config_yaml.cpp
                                ${PROJECT_SOURCE_DIR}/models/funasr_nano/config.cpp)
target_link_libraries(fuzz_config_yaml PRIVATE ominix::paraformer yaml-cpp)
ominix_fuzz_target(fuzz_config_yaml MAX_LEN 8192 PREFIXES 0 1
  SEEDS "tests/fixtures/models/*/tiny/config.yaml" "tests/fixtures/models/*/tiny/variants/*/config.yaml")
# end config.yaml
