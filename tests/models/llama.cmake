# Llama (HF, mlx-lm quantized) and the llama GGUF architecture (Llama, Mistral, Mixtral) against
# fixtures dumped by tools/fixtures/gen_llama.py from transformers, mlx-lm and gguf.
add_executable(llama_tests
  models/test_llama.cpp
  support/cpu_by_default.cpp
)
target_link_libraries(llama_tests PRIVATE ominix::all ominix::mixtral ominix::core GTest::gtest GTest::gtest_main)
target_compile_definitions(llama_tests PRIVATE OMINIX_FIXTURES="${CMAKE_CURRENT_SOURCE_DIR}/fixtures")
target_include_directories(llama_tests PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
ominix_target_options(llama_tests)
gtest_discover_tests(llama_tests PROPERTIES LABELS unit DISCOVERY_TIMEOUT 60)
