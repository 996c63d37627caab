# image files
add_executable(fuzz_image ${CMAKE_CURRENT_LIST_DIR}/fuzz_image.cpp)
target_link_libraries(fuzz_image PRIVATE ominix::core)
ominix_fuzz_target(fuzz_image MAX_LEN 65536
  SEEDS "tests/fixtures/vision/*.png" "tests/fixtures/vision/*.jpg" "tests/fixtures/vision/*.gif"
        "tests/fixtures/vision/*.webp" "tests/fixtures/vision/*.bmp")
# end image files
# video files
add_executable(fuzz_video ${CMAKE_CURRENT_LIST_DIR}/fuzz_video.cpp)
target_link_libraries(fuzz_video PRIVATE ominix::core)
ominix_fuzz_target(fuzz_video MAX_LEN 65536
  SEEDS "tests/fixtures/video/*.mp4" "tests/fixtures/video/*.avi" "tests/fixtures/video/*.mkv")
# end video files
