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

# The CLI end to end on the tiny model (random weights: the text is funasr's for them).
if(TARGET ominix)
  set(_pf_model ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/models/paraformer/tiny)
  set(_pf_wav ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/audio/speech_001.wav)
  add_test(NAME cli.transcribe_text COMMAND ominix transcribe --model ${_pf_model} ${_pf_wav})
  set_tests_properties(cli.transcribe_text PROPERTIES PASS_REGULAR_EXPRESSION "speech_001.wav\t在和")
  add_test(NAME cli.transcribe_json COMMAND ominix transcribe --model ${_pf_model} --format json --batch 2 ${_pf_wav} ${_pf_wav})
  set_tests_properties(cli.transcribe_json PROPERTIES PASS_REGULAR_EXPRESSION "\"rtf\"")
  add_test(NAME cli.transcribe_missing_model COMMAND ominix transcribe --model /nonexistent ${_pf_wav})
  add_test(NAME cli.transcribe_bad_audio COMMAND ominix transcribe --model ${_pf_model}
           ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/audio/not_audio.wav)
  set_tests_properties(cli.transcribe_missing_model cli.transcribe_bad_audio PROPERTIES WILL_FAIL TRUE)
  set_tests_properties(cli.transcribe_text cli.transcribe_json cli.transcribe_missing_model
                       cli.transcribe_bad_audio PROPERTIES LABELS cli)
endif()
