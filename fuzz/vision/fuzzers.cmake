# image files
add_executable(fuzz_image ${CMAKE_CURRENT_LIST_DIR}/fuzz_image.cpp)
target_link_libraries(fuzz_image PRIVATE ominix::core)
ominix_fuzz_target(fuzz_image MAX_LEN 65536
  SEEDS "tests/fixtures/vision/*.png" "tests/fixtures/vision/*.jpg" "tests/fixtures/vision/*.gif"
        "tests/fixtures/vision/*.webp" "tests/fixtures/vision/*.bmp")
# end image files
