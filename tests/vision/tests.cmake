# vision: image decoding, resize and the Qwen2-VL image processor against Pillow/torchvision/
# transformers fixtures (tools/fixtures/gen_vision.py).
add_executable(vision_tests
  ${CMAKE_CURRENT_LIST_DIR}/test_vision.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/support/cpu_by_default.cpp
)
target_link_libraries(vision_tests PRIVATE ominix::core GTest::gtest GTest::gtest_main
                      ${OMINIX_ZLIB_LINK_LIBRARIES})
target_include_directories(vision_tests PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_compile_definitions(vision_tests PRIVATE OMINIX_FIXTURES="${CMAKE_CURRENT_SOURCE_DIR}/fixtures")
ominix_target_options(vision_tests)
gtest_discover_tests(vision_tests PROPERTIES LABELS unit DISCOVERY_TIMEOUT 60)
