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


# ---------------------------------------------------------------------------------------------
# `ominix generate` / `ominix chat` end to end. The model with tokenizer files is qwen3_untied's
# weights plus tests/fixtures/generate/tiny_chat (assembled here); expected ids are transformers'
# greedy continuations recorded in tiny_chat/expected.json by tools/fixtures/gen_tiny_chat.py.
if(TARGET ominix)
  set(_fx ${CMAKE_CURRENT_SOURCE_DIR}/fixtures)
  set(_qwen ${_fx}/models/qwen3/qwen3_untied)
  set(_cli ${CMAKE_CURRENT_BINARY_DIR}/generate_cli)
  file(GLOB _weights ${_qwen}/*)
  file(GLOB _tok ${_fx}/generate/tiny_chat/*)
  file(COPY ${_weights} ${_tok} DESTINATION ${_cli}/chat_model)
  file(WRITE ${_cli}/bad_type/config.json "{\"model_type\": \"no_such_family\"}")
  file(WRITE ${_cli}/bad_config/config.json "{\"model_type\": \"qwen3\", \"vocab_size\": ")

  file(READ ${_fx}/generate/tiny_chat/expected.json _expected)
  function(_ids_of key out)  # expected.json's "<key>" list as "1,2,3"
    string(JSON _n LENGTH "${_expected}" ${ARGN})
    math(EXPR _last "${_n} - 1")
    set(_ids "")
    foreach(i RANGE ${_last})
      string(JSON _v GET "${_expected}" ${ARGN} ${i})
      list(APPEND _ids ${_v})
    endforeach()
    string(REPLACE ";" "," _ids "${_ids}")
    set(${out} "${_ids}" PARENT_SCOPE)
  endfunction()
  _ids_of(x plain_prompt plain prompt_ids)
  _ids_of(x plain_greedy plain greedy)
  _ids_of(x chat_greedy chat greedy)

  add_test(NAME cli.generate_prompt_ids_json
           COMMAND ominix generate --model ${_qwen} --prompt-ids "${plain_prompt}" --max-tokens 16
                   --format json)
  set_tests_properties(cli.generate_prompt_ids_json PROPERTIES
                       PASS_REGULAR_EXPRESSION "\"ids\":\\[${plain_greedy}\\]")
  add_test(NAME cli.generate_prompt_no_template
           COMMAND ominix generate --model ${_cli}/chat_model --prompt "hello there"
                   --no-chat-template --max-tokens 16 --format json)
  set_tests_properties(cli.generate_prompt_no_template PROPERTIES
                       PASS_REGULAR_EXPRESSION "\"ids\":\\[${plain_greedy}\\].*\"text\":")
  add_test(NAME cli.generate_chat_template
           COMMAND ominix generate --model ${_cli}/chat_model --prompt hi --max-tokens 16
                   --format json)
  set_tests_properties(cli.generate_chat_template PROPERTIES
                       PASS_REGULAR_EXPRESSION "\"ids\":\\[${chat_greedy}\\]")
  add_test(NAME cli.generate_speculative
           COMMAND ominix generate --model ${_qwen} --prompt-ids "${plain_prompt}" --max-tokens 16
                   --draft-model ${_qwen} --num-draft 3 --format json)
  set_tests_properties(cli.generate_speculative PROPERTIES
                       PASS_REGULAR_EXPRESSION "\"ids\":\\[${plain_greedy}\\].*\"acceptance_rate\":1\\.0")
  # On the CPU: MLX 0.32.4's CUDA quantized_matmul has no kernel for this tiny fp32 model's 8-bit
  # KV cache in groups of 32 (it says so, and so do we); real head dims and dtypes have one.
  add_test(NAME cli.generate_text_stream
           COMMAND ominix --device cpu generate --model ${_cli}/chat_model --prompt hi --max-tokens 8 --temp 0.7
                   --top-p 0.9 --top-k 20 --min-p 0.05 --repetition-penalty 1.1 --seed 1
                   --system "be brief" --kv-bits 8 --kv-group-size 32 --ignore-eos)
  set_tests_properties(cli.generate_text_stream PROPERTIES
                       PASS_REGULAR_EXPRESSION "generation: 8 tokens")

  # chat over a pipe: the first answer, a second turn, /reset, the first answer again, /exit.
  string(JSON _chat_text GET "${_expected}" chat greedy_text)
  string(REGEX REPLACE "([][+.*()^$?|\\\\])" "\\\\\\1" _chat_re "${_chat_text}")
  add_test(NAME cli.chat_pipe
           COMMAND sh -c "printf 'hi\\nhow are you\\n/reset\\nhi\\n/exit\\nnot read\\n' | \"$0\" chat --model \"$1\" --max-tokens 16"
                   $<TARGET_FILE:ominix> ${_cli}/chat_model)
  set_tests_properties(cli.chat_pipe PROPERTIES
                       PASS_REGULAR_EXPRESSION "^${_chat_re}\n[^\n]*\n\\[conversation reset\\]\n${_chat_re}\n$")
  add_test(NAME cli.chat_reuses_cache
           COMMAND sh -c "printf 'hi\\nhow are you\\n' | \"$0\" chat --model \"$1\" --max-tokens 4 --stats 2>&1"
                   $<TARGET_FILE:ominix> ${_cli}/chat_model)
  set_tests_properties(cli.chat_reuses_cache PROPERTIES
                       PASS_REGULAR_EXPRESSION "prompt: [0-9]+ tokens \\(22 cached\\)")

  # Ctrl-C during an answer stops that answer only.
  add_test(NAME cli.chat_ctrl_c
           COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/generate/chat_sigint.sh $<TARGET_FILE:ominix> ${_cli}/chat_model)
  set_tests_properties(cli.chat_ctrl_c PROPERTIES PASS_REGULAR_EXPRESSION "ok: the answer stopped")

  # Errors: non-zero exit and a message naming the problem.
  function(_cli_error name regex)
    add_test(NAME cli.error_${name}
             COMMAND sh -c "out=$(\"$0\" \"$@\" 2>&1); rc=$?; echo \"$out\"; [ $rc -ne 0 ] && echo \"$out\" | grep -q -- \"${regex}\""
                     $<TARGET_FILE:ominix> ${ARGN})
  endfunction()
  _cli_error(missing_model "no such model directory" generate --model ${_cli}/nowhere --prompt-ids 1)
  _cli_error(bad_config "config.json" generate --model ${_cli}/bad_config --prompt-ids 1)
  _cli_error(unsupported_type "no_such_family" generate --model ${_cli}/bad_type --prompt-ids 1)
  _cli_error(prompt_ids "'x' is not a token id" generate --model ${_qwen} --prompt-ids 1,x)
  _cli_error(prompt_id_range "outside the vocabulary" generate --model ${_qwen} --prompt-ids 1,128)
  _cli_error(no_tokenizer "no tokenizer.json" generate --model ${_qwen} --prompt hello)
  _cli_error(no_prompt "give --prompt or --prompt-ids" generate --model ${_qwen})
  string(REPEAT "5," 600 _long)
  _cli_error(prompt_too_long "601 tokens, more than the model's context of 512" generate --model ${_qwen}
             --prompt-ids "${_long}5")
  _cli_error(chat_no_tokenizer "chat needs tokenizer.json" chat --model ${_qwen})

  # examples/generate builds against the installed package (ominix::all) and runs.
  string(REPLACE "," " " _chat_ids "${chat_greedy}")
  string(REGEX MATCH "^[0-9]+ [0-9]+ [0-9]+ [0-9]+ [0-9]+ [0-9]+ [0-9]+ [0-9]+" _first8 "${_chat_ids}")
  add_test(NAME package.example_generate
           COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/package/check_example.sh ${CMAKE_BINARY_DIR}
                   ${PROJECT_SOURCE_DIR}/examples/generate ${_cli}/chat_model hi 16)
  set_tests_properties(package.example_generate PROPERTIES LABELS cli TIMEOUT 900
                       PASS_REGULAR_EXPRESSION "ids: ${_first8}\n")

  get_property(_cli_tests DIRECTORY PROPERTY TESTS)
  list(FILTER _cli_tests INCLUDE REGEX "^cli\\.(generate|chat|error)")
  set_tests_properties(${_cli_tests} PROPERTIES LABELS cli)
endif()
