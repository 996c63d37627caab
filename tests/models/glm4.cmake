# The GLM-4 / GLM-4-MoE family against fixtures dumped by tools/fixtures/gen_glm4.py from
# transformers (fp32) and mlx-lm (quantized).
add_executable(glm4_tests
  models/test_glm4.cpp
  support/cpu_by_default.cpp
)
target_link_libraries(glm4_tests PRIVATE ominix::glm4 ominix::core GTest::gtest GTest::gtest_main)
target_compile_definitions(glm4_tests PRIVATE OMINIX_FIXTURES="${CMAKE_CURRENT_SOURCE_DIR}/fixtures")
target_include_directories(glm4_tests PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
ominix_target_options(glm4_tests)
gtest_discover_tests(glm4_tests PROPERTIES LABELS unit DISCOVERY_TIMEOUT 60)
