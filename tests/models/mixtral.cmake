# The Mistral / Mixtral family against fixtures dumped by tools/fixtures/gen_mixtral.py from
# transformers (fp32) and mlx-lm (quantized).
add_executable(mixtral_tests
  models/test_mixtral.cpp
  support/cpu_by_default.cpp
)
target_link_libraries(mixtral_tests PRIVATE ominix::mixtral ominix::core GTest::gtest GTest::gtest_main)
target_compile_definitions(mixtral_tests PRIVATE OMINIX_FIXTURES="${CMAKE_CURRENT_SOURCE_DIR}/fixtures")
target_include_directories(mixtral_tests PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
ominix_target_options(mixtral_tests)
gtest_discover_tests(mixtral_tests PROPERTIES LABELS unit DISCOVERY_TIMEOUT 60)
