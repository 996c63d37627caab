# Unit tests of the generate wing (caches, logits processors, sampler) against fixtures dumped by
# tools/fixtures/gen_generate.py from mlx-lm and transformers.
add_executable(generate_tests
  generate/test_cache.cpp
  generate/test_sampler.cpp
  support/cpu_by_default.cpp
)
target_link_libraries(generate_tests PRIVATE ominix::core GTest::gtest GTest::gtest_main)
target_include_directories(generate_tests PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_compile_definitions(generate_tests PRIVATE
  OMINIX_FIXTURES="${CMAKE_CURRENT_SOURCE_DIR}/fixtures")
ominix_target_options(generate_tests)
gtest_discover_tests(generate_tests PROPERTIES LABELS unit DISCOVERY_TIMEOUT 60)
