# tokenizer
add_executable(tokenizer_tests
  ${CMAKE_CURRENT_LIST_DIR}/test_tokenizer.cpp
  ${CMAKE_CURRENT_LIST_DIR}/test_tokenizer_units.cpp
)
target_link_libraries(tokenizer_tests PRIVATE ominix::core nlohmann_json::nlohmann_json GTest::gtest GTest::gtest_main)
target_include_directories(tokenizer_tests PRIVATE ${PROJECT_SOURCE_DIR}/core/text)
target_compile_definitions(tokenizer_tests PRIVATE
  OMINIX_TOKENIZER_FIXTURES="${CMAKE_CURRENT_LIST_DIR}/../fixtures/text/tokenizer"
  OMINIX_SHARED_TOKENIZERS="${PROJECT_SOURCE_DIR}/../shared/data/tokenizers")
ominix_target_options(tokenizer_tests)
gtest_discover_tests(tokenizer_tests PROPERTIES LABELS unit DISCOVERY_TIMEOUT 60)
# end tokenizer
# chat templates
add_executable(template_tests
  ${CMAKE_CURRENT_LIST_DIR}/test_jinja.cpp
  ${CMAKE_CURRENT_LIST_DIR}/test_chat_template.cpp
)
target_link_libraries(template_tests PRIVATE ominix::core GTest::gtest GTest::gtest_main)
target_compile_definitions(template_tests PRIVATE
  OMINIX_TEMPLATE_FIXTURES="${CMAKE_CURRENT_LIST_DIR}/../fixtures/text/templates"
  OMINIX_SHARED_TOKENIZERS="${PROJECT_SOURCE_DIR}/../shared/data/tokenizers")
ominix_target_options(template_tests)
gtest_discover_tests(template_tests PROPERTIES LABELS unit DISCOVERY_TIMEOUT 60)
if(TARGET ominix)
  add_test(NAME cli.template COMMAND ominix template
           --model ${PROJECT_SOURCE_DIR}/../shared/data/tokenizers/qwen3
           --messages ${CMAKE_CURRENT_LIST_DIR}/../fixtures/text/templates/cli_messages.json
           --add-generation-prompt --no-thinking)
  set_tests_properties(cli.template PROPERTIES LABELS cli PASS_REGULAR_EXPRESSION
    "<\\|im_start\\|>system\nBe brief\\.<\\|im_end\\|>\n<\\|im_start\\|>user\nHi<\\|im_end\\|>\n<\\|im_start\\|>assistant\n<think>\n\n</think>\n\n$")
  add_test(NAME cli.template_missing_file COMMAND ominix template
           --model ${PROJECT_SOURCE_DIR}/../shared/data/tokenizers/qwen3 --messages /nonexistent.json)
  set_tests_properties(cli.template_missing_file PROPERTIES LABELS cli WILL_FAIL TRUE)
endif()
# end chat templates
