# tokenizer
# Encodes arbitrary bytes with the real Qwen3 and Llama-2 tokenizers and decodes arbitrary ids;
# streaming must equal decode. Run: fuzz_tokenizer -max_total_time=180 (see docs/text.md).
# The tokenizer's sources are compiled into the target so that libFuzzer instruments them.
find_package(PkgConfig REQUIRED)
pkg_check_modules(OMINIX_FUZZ_PCRE2 REQUIRED libpcre2-8)
pkg_check_modules(OMINIX_FUZZ_UTF8PROC REQUIRED libutf8proc)
add_executable(fuzz_tokenizer
  ${CMAKE_CURRENT_LIST_DIR}/fuzz_tokenizer.cpp
  ${PROJECT_SOURCE_DIR}/core/text/bpe.cpp
  ${PROJECT_SOURCE_DIR}/core/text/pipeline.cpp
  ${PROJECT_SOURCE_DIR}/core/text/regex_pcre2.cpp
  ${PROJECT_SOURCE_DIR}/core/text/tokenizer.cpp
  ${PROJECT_SOURCE_DIR}/core/text/unicode.cpp
)
target_include_directories(fuzz_tokenizer PRIVATE ${PROJECT_SOURCE_DIR}/include)
target_link_libraries(fuzz_tokenizer PRIVATE nlohmann_json::nlohmann_json fmt::fmt
                      ${OMINIX_FUZZ_PCRE2_LINK_LIBRARIES} ${OMINIX_FUZZ_UTF8PROC_LINK_LIBRARIES})
target_compile_definitions(fuzz_tokenizer PRIVATE
  OMINIX_SHARED_TOKENIZERS="${PROJECT_SOURCE_DIR}/../shared/data/tokenizers")
target_compile_options(fuzz_tokenizer PRIVATE -fsanitize=fuzzer,address,undefined)
target_link_options(fuzz_tokenizer PRIVATE -fsanitize=fuzzer,address,undefined)
ominix_target_options(fuzz_tokenizer)
# end tokenizer
# chat templates
# The engine's sources are compiled into the target so that libFuzzer instruments them.
add_executable(fuzz_template
  ${CMAKE_CURRENT_LIST_DIR}/fuzz_template.cpp
  ${PROJECT_SOURCE_DIR}/core/text/chat_template.cpp
  ${PROJECT_SOURCE_DIR}/core/text/jinja_eval.cpp
  ${PROJECT_SOURCE_DIR}/core/text/jinja_ops.cpp
  ${PROJECT_SOURCE_DIR}/core/text/jinja_parse.cpp
  ${PROJECT_SOURCE_DIR}/core/text/jinja_strings.cpp
  ${PROJECT_SOURCE_DIR}/core/text/jinja_value.cpp
)
target_include_directories(fuzz_template PRIVATE ${PROJECT_SOURCE_DIR}/include)
target_link_libraries(fuzz_template PRIVATE nlohmann_json::nlohmann_json fmt::fmt)
target_compile_options(fuzz_template PRIVATE -fsanitize=fuzzer,address,undefined)
target_link_options(fuzz_template PRIVATE -fsanitize=fuzzer,address,undefined)
ominix_target_options(fuzz_template)
# end chat templates
