# Gemma 3 against fixtures dumped by tools/fixtures/gen_gemma3.py from transformers (fp32, GGUF
# F32 / Q8_0 dequantized), and the default model that scripts/setup.sh installs.
add_executable(gemma3_tests
  models/test_gemma3.cpp
  support/cpu_by_default.cpp
)
target_link_libraries(gemma3_tests PRIVATE ominix::gemma3 ominix::core GTest::gtest GTest::gtest_main)
target_compile_definitions(gemma3_tests PRIVATE OMINIX_FIXTURES="${CMAKE_CURRENT_SOURCE_DIR}/fixtures")
target_include_directories(gemma3_tests PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
ominix_target_options(gemma3_tests)
gtest_discover_tests(gemma3_tests PROPERTIES LABELS unit DISCOVERY_TIMEOUT 60)

# The default model end to end through the CLI: a completion and a chat answer (CPU).
if(TARGET ominix)
  add_test(NAME cli.generate_default_model
           COMMAND ominix --device cpu generate --prompt "The capital of France is Paris. The capital of Germany is" --max-tokens 8)
  set_tests_properties(cli.generate_default_model PROPERTIES PASS_REGULAR_EXPRESSION "Berlin")
  add_test(NAME cli.chat_default_model
           COMMAND sh -c "printf 'What is the capital of France?\\n/exit\\n' | \"$<TARGET_FILE:ominix>\" --device cpu chat --max-tokens 16")
  set_tests_properties(cli.chat_default_model PROPERTIES PASS_REGULAR_EXPRESSION "Paris")
  set_tests_properties(cli.generate_default_model cli.chat_default_model PROPERTIES LABELS cli)
endif()
