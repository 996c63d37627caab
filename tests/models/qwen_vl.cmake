# Qwen2.5-VL against transformers' Qwen2_5_VLForConditionalGeneration (tools/fixtures/gen_qwen_vl.py).
add_executable(qwen_vl_tests
  models/test_qwen_vl.cpp
  support/cpu_by_default.cpp
)
target_link_libraries(qwen_vl_tests PRIVATE ominix::qwen_vl ominix::qwen3 ominix::core GTest::gtest
                                            GTest::gtest_main)
target_compile_definitions(qwen_vl_tests PRIVATE OMINIX_FIXTURES="${CMAKE_CURRENT_SOURCE_DIR}/fixtures")
target_include_directories(qwen_vl_tests PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
ominix_target_options(qwen_vl_tests)
gtest_discover_tests(qwen_vl_tests PROPERTIES LABELS unit DISCOVERY_TIMEOUT 60)
