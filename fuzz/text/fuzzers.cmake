# tokenizer
# Encodes arbitrary bytes with the real Qwen3 and Llama-2 tokenizers and decodes arbitrary ids;
# streaming must equal decode. Run: fuzz_tokenizer -max_total_time=180 (see docs/text.md).
add_executable(fuzz_tokenizer ${CMAKE_CURRENT_LIST_DIR}/fuzz_tokenizer.cpp)
target_link_libraries(fuzz_tokenizer PRIVATE ominix::core)
target_compile_definitions(fuzz_tokenizer PRIVATE
  OMINIX_SHARED_TOKENIZERS="${PROJECT_SOURCE_DIR}/../shared/data/tokenizers")
target_compile_options(fuzz_tokenizer PRIVATE -fsanitize=fuzzer,address,undefined)
target_link_options(fuzz_tokenizer PRIVATE -fsanitize=fuzzer,address,undefined)
ominix_target_options(fuzz_tokenizer)
# end tokenizer
# chat templates
add_executable(fuzz_template ${CMAKE_CURRENT_LIST_DIR}/fuzz_template.cpp)
target_link_libraries(fuzz_template PRIVATE ominix::core)
target_compile_options(fuzz_template PRIVATE -fsanitize=fuzzer,address,undefined)
target_link_options(fuzz_template PRIVATE -fsanitize=fuzzer,address,undefined)
ominix_target_options(fuzz_template)
# end chat templates
