# chat templates
add_executable(fuzz_template ${CMAKE_CURRENT_LIST_DIR}/fuzz_template.cpp)
target_link_libraries(fuzz_template PRIVATE ominix::core)
target_compile_options(fuzz_template PRIVATE -fsanitize=fuzzer,address,undefined)
target_link_options(fuzz_template PRIVATE -fsanitize=fuzzer,address,undefined)
ominix_target_options(fuzz_template)
# end chat templates
