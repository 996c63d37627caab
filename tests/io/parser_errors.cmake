# Hostile files for every parser (issue 16, defect 10): each fails with an ominix::Error naming
# the file, never a parser's own exception. Findings of the fuzz targets land here too.
add_executable(parser_errors_tests
  ${CMAKE_CURRENT_SOURCE_DIR}/io/test_parser_errors.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/support/cpu_by_default.cpp
)
target_link_libraries(parser_errors_tests PRIVATE ominix::core ominix::paraformer
                      ominix::funasr_nano GTest::gtest GTest::gtest_main)
target_compile_definitions(parser_errors_tests PRIVATE
  OMINIX_FIXTURES="${CMAKE_CURRENT_SOURCE_DIR}/fixtures")
target_include_directories(parser_errors_tests PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}
                           ${PROJECT_SOURCE_DIR})
ominix_target_options(parser_errors_tests)
gtest_discover_tests(parser_errors_tests PROPERTIES LABELS unit DISCOVERY_TIMEOUT 60)
