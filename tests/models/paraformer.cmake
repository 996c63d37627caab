# Paraformer against funasr's tensors (tools/fixtures/gen_paraformer.py).
add_executable(paraformer_tests
  models/test_paraformer.cpp
  support/cpu_by_default.cpp
)
target_link_libraries(paraformer_tests PRIVATE ominix::paraformer ominix::core GTest::gtest GTest::gtest_main)
target_compile_definitions(paraformer_tests PRIVATE OMINIX_FIXTURES="${CMAKE_CURRENT_SOURCE_DIR}/fixtures")
target_include_directories(paraformer_tests PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
ominix_target_options(paraformer_tests)
gtest_discover_tests(paraformer_tests PROPERTIES LABELS unit DISCOVERY_TIMEOUT 60)
