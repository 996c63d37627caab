# GGUF reader
add_executable(fuzz_gguf ${CMAKE_CURRENT_LIST_DIR}/fuzz_gguf.cpp)
target_link_libraries(fuzz_gguf PRIVATE ominix::core)
target_compile_options(fuzz_gguf PRIVATE -fsanitize=fuzzer,address,undefined)
target_link_options(fuzz_gguf PRIVATE -fsanitize=fuzzer,address,undefined)
ominix_target_options(fuzz_gguf)
# end GGUF reader
