# vision video: decoding and qwen-vl-utils frame sampling against fetch_video fixtures
# (tools/fixtures/gen_video.py).
add_executable(video_tests
  ${CMAKE_CURRENT_LIST_DIR}/test_video.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/support/cpu_by_default.cpp
)
target_link_libraries(video_tests PRIVATE ominix::core GTest::gtest GTest::gtest_main)
target_include_directories(video_tests PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_compile_definitions(video_tests PRIVATE OMINIX_FIXTURES="${CMAKE_CURRENT_SOURCE_DIR}/fixtures")
ominix_target_options(video_tests)
gtest_discover_tests(video_tests PROPERTIES LABELS unit DISCOVERY_TIMEOUT 60)
