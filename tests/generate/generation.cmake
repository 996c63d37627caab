# The generation loop, speculative decoding and the library API (ominix::all) on the tiny Qwen
# fixtures (tools/fixtures/gen_qwen3.py) and the tiny tokenizer (tools/fixtures/gen_tiny_chat.py).
add_executable(generation_tests
  generate/test_generation.cpp
  generate/test_generate_features.cpp
  support/cpu_by_default.cpp
)
target_link_libraries(generation_tests PRIVATE ominix::all GTest::gtest GTest::gtest_main)
target_compile_definitions(generation_tests PRIVATE
  OMINIX_FIXTURES="${CMAKE_CURRENT_SOURCE_DIR}/fixtures")
target_include_directories(generation_tests PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}
                           ${PROJECT_SOURCE_DIR}/apps/ominix)  # cli_util.h (header only)
target_link_libraries(generation_tests PRIVATE CLI11::CLI11)
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

  # ---------------------------------------------------------------------------------------------
  # Issue 16: chat input and the context, GGUF tokenizer/template without weights, messages, and
  # the llama.cpp / OpenAI surface. Expected values: tests/fixtures/generate/cli/expected.json
  # (tools/fixtures/gen_cli.py: transformers on qwen3_untied and on the default model's GGUF).
  set(_cases ${CMAKE_CURRENT_SOURCE_DIR}/generate/cli_cases.sh)
  set(_clifx ${_fx}/generate/cli)
  file(READ ${_clifx}/expected.json _cli_expected)
  function(_cli_ids key out)  # expected.json's sampling.<key>.tokens as "1,2,3"
    string(JSON _n LENGTH "${_cli_expected}" sampling ${key} tokens)
    math(EXPR _last "${_n} - 1")
    set(_ids "")
    foreach(i RANGE ${_last})
      string(JSON _v GET "${_cli_expected}" sampling ${key} tokens ${i})
      list(APPEND _ids ${_v})
    endforeach()
    string(REPLACE ";" "," _ids "${_ids}")
    set(${out} "${_ids}" PARENT_SCOPE)
  endfunction()
  foreach(_case chat_invalid_utf8 chat_context generate_context chat_multiline quiet)
    add_test(NAME cli.${_case} COMMAND ${_cases} ${_case} $<TARGET_FILE:ominix> ${_cli}/chat_model)
    set_tests_properties(cli.${_case} PROPERTIES PASS_REGULAR_EXPRESSION "ok: ${_case}")
  endforeach()
  add_test(NAME cli.chat_template_file
           COMMAND ${_cases} chat_template_file $<TARGET_FILE:ominix> ${_cli}/chat_model
                   ${_clifx}/turns.jinja)
  set_tests_properties(cli.chat_template_file PROPERTIES PASS_REGULAR_EXPRESSION "ok: chat_template_file")

  # Sampling flags give transformers' tokens (greedy).
  _cli_ids(penalties _penalized)
  add_test(NAME cli.generate_openai_penalties
           COMMAND ominix generate -m ${_qwen} --prompt-ids "${plain_prompt}" -n 24
                   --presence-penalty 0.8 --frequency-penalty 0.6 --format json)
  set_tests_properties(cli.generate_openai_penalties PROPERTIES
                       PASS_REGULAR_EXPRESSION "\"ids\":\\[${_penalized}\\]")
  _cli_ids(logit_bias _biased)
  add_test(NAME cli.generate_logit_bias
           COMMAND ominix generate -m ${_qwen} --prompt-ids "${plain_prompt}" -n 16
                   --logit-bias 42=-100 --logit-bias 79=-3.5 --logit-bias 7=4 --format json)
  set_tests_properties(cli.generate_logit_bias PROPERTIES
                       PASS_REGULAR_EXPRESSION "\"ids\":\\[${_biased}\\]")
  _ids_of(x chat_prompt chat prompt_ids)
  _cli_ids(eos_forbid _forbid)
  _cli_ids(eos_pass _pass)
  add_test(NAME cli.generate_ignore_eos_forbid
           COMMAND ominix generate -m ${_qwen} --prompt-ids "${chat_prompt}" -n 16
                   --logit-bias 2=4 --ignore-eos --format json)
  set_tests_properties(cli.generate_ignore_eos_forbid PROPERTIES
                       PASS_REGULAR_EXPRESSION "\"finish_reason\":\"length\",\"ids\":\\[${_forbid}\\]")
  add_test(NAME cli.generate_ignore_eos_pass
           COMMAND ominix generate -m ${_qwen} --prompt-ids "${chat_prompt}" -n 16
                   --logit-bias 2=4 --ignore-eos=pass --format json)
  set_tests_properties(cli.generate_ignore_eos_pass PROPERTIES
                       PASS_REGULAR_EXPRESSION "\"finish_reason\":\"length\",\"ids\":\\[${_pass}\\]")
  add_test(NAME cli.generate_eos_stops
           COMMAND ominix generate -m ${_qwen} --prompt-ids "${chat_prompt}" -n 16
                   --logit-bias 2=4 --format json)
  set_tests_properties(cli.generate_eos_stops PROPERTIES
                       PASS_REGULAR_EXPRESSION "\"finish_reason\":\"eos\",\"ids\":\\[\\]")
  # logprobs: the first token's, and its top 2 alternatives, as transformers' log_softmax.
  string(JSON _lp0 GET "${_cli_expected}" sampling logprobs logprobs 0 logprob)
  string(JSON _top1 GET "${_cli_expected}" sampling logprobs logprobs 0 top 1 0)
  string(JSON _top1v GET "${_cli_expected}" sampling logprobs logprobs 0 top 1 1)
  string(SUBSTRING "${_lp0}" 0 6 _lp0)
  string(SUBSTRING "${_top1v}" 0 6 _top1v)
  string(REPLACE "." "\\." _lp0 "${_lp0}")
  string(REPLACE "." "\\." _top1v "${_top1v}")
  string(REGEX MATCH "^[0-9]+" _first "${plain_greedy}")
  add_test(NAME cli.generate_logprobs
           COMMAND ominix generate -m ${_cli}/chat_model --prompt-ids "${plain_prompt}" -n 12
                   --logprobs 5 --format json)
  set_tests_properties(cli.generate_logprobs PROPERTIES PASS_REGULAR_EXPRESSION
    "\"logprobs\":\\[{\"id\":${_first},\"logprob\":${_lp0}[0-9]*,\"token\":\"[^\"]*\",\"top_logprobs\":\\[{\"id\":${_first},[^}]*},{\"id\":${_top1},\"logprob\":${_top1v}")
  # --stop: the text before the stop string, finish_reason "stop".
  string(JSON _plain_text GET "${_expected}" plain greedy_text)
  string(SUBSTRING "${_plain_text}" 4 3 _stop)
  string(SUBSTRING "${_plain_text}" 0 4 _before)
  add_test(NAME cli.generate_stop
           COMMAND ominix generate -m ${_cli}/chat_model -p "hello there" --no-chat-template -n 16
                   --stop "${_stop}" --stop "never seen" --format json)
  set_tests_properties(cli.generate_stop PROPERTIES PASS_REGULAR_EXPRESSION
                       "\"finish_reason\":\"stop\".*\"text\":\"${_before}\"}")
  # The prompt from a file, from stdin; --device after the subcommand; short flags.
  file(WRITE ${_cli}/prompt.txt "hi")
  add_test(NAME cli.generate_prompt_file
           COMMAND ominix generate -m ${_cli}/chat_model --prompt-file ${_cli}/prompt.txt -n 16
                   --format json --device cpu)
  add_test(NAME cli.generate_prompt_stdin
           COMMAND sh -c "printf hi | \"$0\" generate -m \"$1\" -p - -n 16 --format json"
                   $<TARGET_FILE:ominix> ${_cli}/chat_model)
  set_tests_properties(cli.generate_prompt_file cli.generate_prompt_stdin PROPERTIES
                       PASS_REGULAR_EXPRESSION "\"ids\":\\[${chat_greedy}\\]")
  add_test(NAME cli.generate_device_after_subcommand
           COMMAND ominix generate --model ${_qwen} --prompt-ids "${plain_prompt}" --max-tokens 16
                   --format json --device cpu)
  set_tests_properties(cli.generate_device_after_subcommand PROPERTIES
                       PASS_REGULAR_EXPRESSION "\"ids\":\\[${plain_greedy}\\]")
  add_test(NAME cli.help_shows_defaults COMMAND ominix generate --help)
  set_tests_properties(cli.help_shows_defaults PROPERTIES PASS_REGULAR_EXPRESSION
                       "-n,--max-tokens INT:[^=]*=256.*--temp FLOAT:[^=]*=0 .*--top-p FLOAT:[^=]*=1 ")
  add_test(NAME cli.list COMMAND ominix list --format json)
  set_tests_properties(cli.list PROPERTIES PASS_REGULAR_EXPRESSION
                       "\"asr_families\".*Paraformer.*\"gguf_architectures\".*gemma3.*\"model_types\".*qwen3")

  # GGUF tokenizer and chat template, no weights read: transformers' ids and rendering.
  if(EXISTS "${OMINIX_DEFAULT_MODEL}")
    string(JSON _text GET "${_cli_expected}" gguf tokenize 1 text)
    string(JSON _n LENGTH "${_cli_expected}" gguf tokenize 1 ids)
    math(EXPR _last "${_n} - 1")
    set(_gids "")
    foreach(i RANGE ${_last})
      string(JSON _v GET "${_cli_expected}" gguf tokenize 1 ids ${i})
      list(APPEND _gids ${_v})
    endforeach()
    string(REPLACE ";" "," _gids "${_gids}")
    add_test(NAME cli.tokenize_gguf COMMAND ominix tokenize --model ${OMINIX_DEFAULT_MODEL} --text "${_text}")
    set_tests_properties(cli.tokenize_gguf PROPERTIES PASS_REGULAR_EXPRESSION "^${_gids}\n$")
    string(JSON _rendered GET "${_cli_expected}" gguf rendered)
    string(JSON _rendered_nt GET "${_cli_expected}" gguf rendered_no_thinking)
    file(WRITE ${_cli}/gguf_rendered.txt "${_rendered}")
    file(WRITE ${_cli}/gguf_rendered_no_thinking.txt "${_rendered_nt}")
    foreach(_v "" no_thinking)
      set(_flag "")
      set(_want ${_cli}/gguf_rendered.txt)
      if(_v)
        set(_flag --no-thinking)
        set(_want ${_cli}/gguf_rendered_no_thinking.txt)
      endif()
      add_test(NAME cli.template_gguf${_v}
               COMMAND sh -c "\"$0\" template --model \"$1\" --messages \"$2\" --chat-template \"$3\" --add-generation-prompt $5 | cmp - \"$4\" && echo same"
                       $<TARGET_FILE:ominix> ${OMINIX_DEFAULT_MODEL} ${_clifx}/messages.json
                       ${_clifx}/turns.jinja ${_want} "${_flag}")
      set_tests_properties(cli.template_gguf${_v} PROPERTIES PASS_REGULAR_EXPRESSION "^same\n$")
    endforeach()
    _cli_error(template_gguf_without_template "has no chat template (give --chat-template FILE)"
               template --model ${OMINIX_DEFAULT_MODEL} --messages ${_clifx}/messages.json)
  endif()

  # Messages that say what is wrong.
  _cli_error(range "--temp: must be ≥ 0, got -1" generate --model ${_qwen} --prompt-ids 1 --temp -1)
  _cli_error(seed "--seed: must be ≥ 0, got -1" generate --model ${_qwen} --prompt-ids 1 --seed -1)
  _cli_error(unknown_command "unknown command 'frobnicate'; the commands are: info, list, tokenize"
             frobnicate --model x)
  _cli_error(model_is_a_file "config.json: a file, not a model: --model takes a model directory"
             generate --model ${_qwen}/config.json --prompt-ids 1)
  _cli_error(tokenize_directory "--file ${_cli}: is a directory" tokenize --model ${_cli}/chat_model
             --file ${_cli})
  _cli_error(decode_range "--decode: token id 99999999 is outside the vocabulary (size 128"
             tokenize --model ${_cli}/chat_model --decode 1,99999999)
  _cli_error(logit_bias "--logit-bias: '7' is not ID=BIAS" generate --model ${_qwen} --prompt-ids 1
             --logit-bias 7)
  _cli_error(logprobs_text "--logprobs needs --format json" generate --model ${_qwen} --prompt-ids 1
             --logprobs 2)
  add_test(NAME cli.error_prompt_ids_empty
           COMMAND sh -c "out=$(\"$0\" generate --model \"$1\" --prompt-ids '' 2>&1); rc=$?; echo \"$out\"; [ $rc -ne 0 ]"
                   $<TARGET_FILE:ominix> ${_qwen})
  set_tests_properties(cli.error_prompt_ids_empty PROPERTIES
                       PASS_REGULAR_EXPRESSION "--prompt-ids: no token ids in ''")
  add_test(NAME cli.error_ominix_model_env
           COMMAND sh -c "OMINIX_MODEL=/nonexistent \"$0\" generate --prompt hi 2>&1; echo rc=$?"
                   $<TARGET_FILE:ominix>)
  set_tests_properties(cli.error_ominix_model_env PROPERTIES PASS_REGULAR_EXPRESSION
                       "\\$OMINIX_MODEL is '/nonexistent', which does not exist.*rc=1")
  # Invalid UTF-8: the byte offset within what the user gave (not within the rendered template).
  add_test(NAME cli.error_prompt_utf8_offset
           COMMAND sh -c "\"$0\" generate --model \"$1\" --prompt \"$(printf 'ab\\377c')\" 2>&1; echo rc=$?"
                   $<TARGET_FILE:ominix> ${_cli}/chat_model)
  set_tests_properties(cli.error_prompt_utf8_offset PROPERTIES PASS_REGULAR_EXPRESSION
                       "--prompt is not valid UTF-8 \\(byte offset 2\\)\nrc=1")
  add_test(NAME cli.error_tokenize_utf8_offset
           COMMAND sh -c "\"$0\" tokenize --model \"$1\" --text \"$(printf 'h\\303\\251\\342\\202')\" 2>&1; echo rc=$?"
                   $<TARGET_FILE:ominix> ${_cli}/chat_model)
  set_tests_properties(cli.error_tokenize_utf8_offset PROPERTIES PASS_REGULAR_EXPRESSION
                       "--text is not valid UTF-8 \\(byte offset 3\\)\nrc=1")

  # examples/generate builds against the installed package (ominix::all) and runs.
  string(REPLACE "," " " _chat_ids "${chat_greedy}")
  string(REGEX MATCH "^[0-9]+ [0-9]+ [0-9]+ [0-9]+ [0-9]+ [0-9]+ [0-9]+ [0-9]+" _first8 "${_chat_ids}")
  add_test(NAME package.example_generate
           COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/package/check_example.sh ${CMAKE_BINARY_DIR}
                   ${PROJECT_SOURCE_DIR}/examples/generate ${_cli}/chat_model hi 16)
  set_tests_properties(package.example_generate PROPERTIES LABELS cli TIMEOUT 900
                       PASS_REGULAR_EXPRESSION "ids: ${_first8}\n")

  get_property(_cli_tests DIRECTORY PROPERTY TESTS)
  list(FILTER _cli_tests INCLUDE REGEX "^cli\\.(generate|chat|error|tokenize|template|quiet|help|list)")
  set_tests_properties(${_cli_tests} PROPERTIES LABELS cli)
endif()
