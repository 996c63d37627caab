# audio: decoding, resampling and features against soundfile/soxr/kaldi-native-fbank/librosa
# fixtures (tools/fixtures/gen_audio.py).
add_executable(audio_tests
  ${CMAKE_CURRENT_LIST_DIR}/test_audio.cpp
  ${CMAKE_CURRENT_LIST_DIR}/test_chunk.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/support/cpu_by_default.cpp
)
target_link_libraries(audio_tests PRIVATE ominix::core GTest::gtest GTest::gtest_main)
target_include_directories(audio_tests PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_compile_definitions(audio_tests PRIVATE OMINIX_FIXTURES="${CMAKE_CURRENT_SOURCE_DIR}/fixtures")
ominix_target_options(audio_tests)
gtest_discover_tests(audio_tests PROPERTIES LABELS unit DISCOVERY_TIMEOUT 60)
