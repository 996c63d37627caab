# GGUF files of the Qwen and GLM-4 families (tools/fixtures/gen_gguf_families.py): models against
# transformers, byte-level BPE tokenizers against tokenizers, the chat template against jinja2.
add_executable(gguf_families_tests
  models/test_gguf_families.cpp
  support/cpu_by_default.cpp
)
target_link_libraries(gguf_families_tests PRIVATE ominix::qwen3 ominix::glm4 ominix::core
                      GTest::gtest GTest::gtest_main)
target_compile_definitions(gguf_families_tests PRIVATE OMINIX_FIXTURES="${CMAKE_CURRENT_SOURCE_DIR}/fixtures")
target_include_directories(gguf_families_tests PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
ominix_target_options(gguf_families_tests)
gtest_discover_tests(gguf_families_tests PROPERTIES LABELS unit DISCOVERY_TIMEOUT 60)

# The CLI on a GGUF of each new architecture kind: its tokenizer, chat template and weights.
if(TARGET ominix)
  set(_gguf ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/models/gguf)
  foreach(_name qwen3_moe-q8_0 glm4_moe-f32 qwen3_moe_k-q4_k)
    add_test(NAME cli.generate_gguf_${_name}
             COMMAND ominix generate --model ${_gguf}/${_name}.gguf --prompt "Hi there"
                     --max-tokens 4 --ignore-eos --format json)
    set_tests_properties(cli.generate_gguf_${_name} PROPERTIES LABELS cli
                         PASS_REGULAR_EXPRESSION "\"ids\":\\[[0-9]+,[0-9]+,[0-9]+,[0-9]+\\]")
  endforeach()
endif()
