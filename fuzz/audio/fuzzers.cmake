# audio files (WAV, FLAC, Ogg/Vorbis)
add_executable(fuzz_audio ${CMAKE_CURRENT_LIST_DIR}/fuzz_audio.cpp)
target_link_libraries(fuzz_audio PRIVATE ominix::core)
ominix_fuzz_target(fuzz_audio MAX_LEN 16384
  SEEDS "tests/fixtures/audio/*.wav" "tests/fixtures/audio/*.flac" "tests/fixtures/audio/*.ogg")
# end audio files
