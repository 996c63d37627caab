# The Qwen2 / Qwen3 / Qwen3-MoE family against fixtures dumped by tools/fixtures/gen_qwen3.py from
# transformers (fp32) and mlx-lm (quantized).
add_executable(qwen3_tests
  models/test_qwen3.cpp
  support/cpu_by_default.cpp
)
target_link_libraries(qwen3_tests PRIVATE ominix::qwen3 ominix::core GTest::gtest GTest::gtest_main)
target_compile_definitions(qwen3_tests PRIVATE OMINIX_FIXTURES="${CMAKE_CURRENT_SOURCE_DIR}/fixtures")
target_include_directories(qwen3_tests PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
ominix_target_options(qwen3_tests)
gtest_discover_tests(qwen3_tests PROPERTIES LABELS unit DISCOVERY_TIMEOUT 60)
