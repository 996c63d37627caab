# PyTorch zip checkpoint reader tests (io wing), fixtures from tools/fixtures/gen_torch_zip.py.
add_executable(torch_zip_tests
  ${CMAKE_CURRENT_SOURCE_DIR}/io/test_torch_zip.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/support/cpu_by_default.cpp
)
target_link_libraries(torch_zip_tests PRIVATE ominix::core GTest::gtest GTest::gtest_main)
target_compile_definitions(torch_zip_tests PRIVATE OMINIX_FIXTURES="${CMAKE_CURRENT_SOURCE_DIR}/fixtures")
target_include_directories(torch_zip_tests PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
ominix_target_options(torch_zip_tests)
gtest_discover_tests(torch_zip_tests PROPERTIES LABELS unit DISCOVERY_TIMEOUT 60)
