# Paraformer against funasr's tensors (tools/fixtures/gen_paraformer.py).
add_executable(paraformer_tests
  models/test_paraformer.cpp
  support/cpu_by_default.cpp
)
target_link_libraries(paraformer_tests PRIVATE ominix::paraformer ominix::core GTest::gtest GTest::gtest_main)
target_compile_definitions(paraformer_tests PRIVATE OMINIX_FIXTURES="${CMAKE_CURRENT_SOURCE_DIR}/fixtures")
target_include_directories(paraformer_tests PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
ominix_target_options(paraformer_tests)
gtest_discover_tests(paraformer_tests PROPERTIES LABELS unit DISCOVERY_TIMEOUT 60)

# The CLI end to end on the tiny model (random weights: the text is funasr's for them). The family
# comes from config.yaml through load_asr.
if(TARGET ominix)
  set(_pf_model ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/models/paraformer/tiny)
  set(_pf_wav ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/audio/speech_001.wav)
  set(_pf_wav3 ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/audio/speech_003.wav)
  add_test(NAME cli.transcribe_text COMMAND ominix transcribe --model ${_pf_model} ${_pf_wav})
  set_tests_properties(cli.transcribe_text PROPERTIES PASS_REGULAR_EXPRESSION "speech_001.wav\t在和")
  add_test(NAME cli.transcribe_json COMMAND ominix transcribe --model ${_pf_model} --format json --batch 2 ${_pf_wav} ${_pf_wav})
  # Every entry has these keys in this order (docs/models/paraformer.md, JSON output).
  set_tests_properties(cli.transcribe_json PROPERTIES PASS_REGULAR_EXPRESSION
                       "\"file\": \"[^\"]*speech_001.wav\",\n *\"text\": \"在和tok14tok10tok10和在在在\",\n *\"duration\": 1.095375,\n *\"rtf\": [0-9.e-]+,\n *\"chunks\": 1,\n *\"error\": null\n")
  # A file longer than --chunk-seconds is cut (1.54 s in 1 s pieces) and joined.
  add_test(NAME cli.transcribe_long_chunks COMMAND ominix transcribe --model ${_pf_model} --format json --chunk-seconds 1 ${_pf_wav3})
  set_tests_properties(cli.transcribe_long_chunks PROPERTIES PASS_REGULAR_EXPRESSION "\"chunks\": 2,")
  # Errors name what is wrong and exit non-zero.
  set(_asr_cli ${CMAKE_CURRENT_BINARY_DIR}/asr_cli)
  file(MAKE_DIRECTORY ${_asr_cli}/no_config)
  file(WRITE ${_asr_cli}/unknown/config.yaml "model: NoSuchModel\n")
  file(WRITE ${_asr_cli}/bad_yaml/config.yaml "model: [unclosed\n")
  file(MAKE_DIRECTORY ${_asr_cli}/config_dir/config.yaml)
  # The tiny model with a tokens.json shorter than its output layer (3 of 50 ids).
  file(COPY ${_pf_model}/config.yaml ${_pf_model}/am.mvn ${_pf_model}/model.pt
       DESTINATION ${_asr_cli}/few_tokens)
  file(WRITE ${_asr_cli}/few_tokens/tokens.json "[\"<blank>\", \"<s>\", \"</s>\"]\n")
  function(_asr_cli_error name regex)
    add_test(NAME cli.transcribe_error_${name}
             COMMAND sh -c "out=$(\"$0\" \"$@\" 2>&1); rc=$?; echo \"$out\"; [ $rc -ne 0 ] && echo \"$out\" | grep -q -- \"${regex}\""
                     $<TARGET_FILE:ominix> transcribe ${ARGN})
    set_tests_properties(cli.transcribe_error_${name} PROPERTIES LABELS cli)
  endfunction()
  _asr_cli_error(missing_model "nonexistent: no such model directory" --model /nonexistent ${_pf_wav})
  _asr_cli_error(no_config "no config.yaml" --model ${_asr_cli}/no_config ${_pf_wav})
  _asr_cli_error(bad_yaml "config.yaml: " --model ${_asr_cli}/bad_yaml ${_pf_wav})
  _asr_cli_error(config_dir "config.yaml: not a regular file" --model ${_asr_cli}/config_dir ${_pf_wav})
  _asr_cli_error(model_is_file "speech_001.wav: not a model directory" --model ${_pf_wav} ${_pf_wav})
  _asr_cli_error(few_tokens "tokens.json: 3 tokens, fewer than the 50 ids the model scores"
                 --model ${_asr_cli}/few_tokens ${_pf_wav})
  _asr_cli_error(unknown_family "model 'NoSuchModel' is not a supported speech recognition family (.*Paraformer"
                 --model ${_asr_cli}/unknown ${_pf_wav})
  _asr_cli_error(bad_audio "not_audio.wav: .*not a readable audio file" --model ${_pf_model}
                 ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/audio/not_audio.wav)
  _asr_cli_error(missing_audio "no_such.wav" --model ${_pf_model} ${_asr_cli}/no_such.wav)
  # Bad files among good ones: the others are transcribed, each failure is named, exit status 1;
  # clips too short for a token give an empty transcript (issue 16, defects 3 and 8).
  add_test(NAME cli.transcribe_per_file_errors
           COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/models/check_transcribe_errors.sh $<TARGET_FILE:ominix>
                   ${_pf_model} ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/audio
                   ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/models/paraformer/short)
  set_tests_properties(cli.transcribe_text cli.transcribe_json cli.transcribe_long_chunks
                       cli.transcribe_per_file_errors PROPERTIES LABELS cli)

  # examples/transcribe builds against the installed package (ominix::all, load_asr) and runs.
  add_test(NAME package.example_transcribe
           COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/package/check_example_program.sh ${CMAKE_BINARY_DIR}
                   ${PROJECT_SOURCE_DIR}/examples/transcribe transcribe ${_pf_model} ${_pf_wav})
  set_tests_properties(package.example_transcribe PROPERTIES LABELS cli TIMEOUT 900
                       PASS_REGULAR_EXPRESSION "speech_001.wav\t在和tok14tok10tok10和在在在\n  Paraformer, 1.10 s of audio in 1 chunk")
endif()
