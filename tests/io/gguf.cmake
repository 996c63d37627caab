# GGUF reader tests (io wing).
add_executable(gguf_tests
  ${CMAKE_CURRENT_SOURCE_DIR}/core/test_gguf.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/support/cpu_by_default.cpp
)
target_link_libraries(gguf_tests PRIVATE ominix::core GTest::gtest GTest::gtest_main)
target_compile_definitions(gguf_tests PRIVATE OMINIX_FIXTURES="${CMAKE_CURRENT_SOURCE_DIR}/fixtures")
target_include_directories(gguf_tests PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
ominix_target_options(gguf_tests)
gtest_discover_tests(gguf_tests PROPERTIES LABELS unit DISCOVERY_TIMEOUT 60)
