# tokenizer
# Encodes arbitrary bytes with the real Qwen3 and Llama-2 tokenizers and decodes arbitrary ids;
# streaming must equal decode (see docs/text.md).
add_executable(fuzz_tokenizer ${CMAKE_CURRENT_LIST_DIR}/fuzz_tokenizer.cpp)
target_link_libraries(fuzz_tokenizer PRIVATE ominix::core)
target_compile_definitions(fuzz_tokenizer PRIVATE
  OMINIX_SHARED_TOKENIZERS="${PROJECT_SOURCE_DIR}/../shared/data/tokenizers")
ominix_fuzz_target(fuzz_tokenizer MAX_LEN 4096 SEEDS "tests/fixtures/text/templates/*.jinja")
# end tokenizer
# tokenizer.json
add_executable(fuzz_tokenizer_json ${CMAKE_CURRENT_LIST_DIR}/fuzz_tokenizer_json.cpp)
target_link_libraries(fuzz_tokenizer_json PRIVATE ominix::core)
ominix_fuzz_target(fuzz_tokenizer_json MAX_LEN 65536
  SEEDS "tests/fixtures/*/*/tokenizer.json" "tests/fixtures/models/*/*/*/tokenizer.json"
        "tests/fixtures/text/tokenizer/syn_*.json")
# end tokenizer.json
# chat templates
add_executable(fuzz_template ${CMAKE_CURRENT_LIST_DIR}/fuzz_template.cpp)
target_link_libraries(fuzz_template PRIVATE ominix::core)
ominix_fuzz_target(fuzz_template MAX_LEN 8192 SEEDS "tests/fixtures/text/templates/*.jinja")
# end chat templates
# chat templates' JSON (tokenizer_config.json, chat_template.json, special_tokens_map.json)
add_executable(fuzz_chat_template_json ${CMAKE_CURRENT_LIST_DIR}/fuzz_chat_template_json.cpp)
target_link_libraries(fuzz_chat_template_json PRIVATE ominix::core)
ominix_fuzz_target(fuzz_chat_template_json MAX_LEN 16384 PREFIXES 0 1 2
  SEEDS "tests/fixtures/*/*/tokenizer_config.json" "tests/fixtures/models/*/*/*/tokenizer_config.json"
        "tests/fixtures/text/templates/cli_messages.json")
# end chat templates' JSON
