# The generation loop, speculative decoding and the library API (ominix::all) on the tiny Qwen
# fixtures (tools/fixtures/gen_qwen3.py) and the tiny tokenizer (tools/fixtures/gen_tiny_chat.py).
add_executable(generation_tests
  generate/test_generation.cpp
  support/cpu_by_default.cpp
)
target_link_libraries(generation_tests PRIVATE ominix::all GTest::gtest GTest::gtest_main)
target_compile_definitions(generation_tests PRIVATE
  OMINIX_FIXTURES="${CMAKE_CURRENT_SOURCE_DIR}/fixtures")
target_include_directories(generation_tests PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
ominix_target_options(generation_tests)
gtest_discover_tests(generation_tests PROPERTIES LABELS unit DISCOVERY_TIMEOUT 60)

