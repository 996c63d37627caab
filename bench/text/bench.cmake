# tokenizer
add_executable(tokenizer_bench ${CMAKE_CURRENT_LIST_DIR}/tokenizer_bench.cpp)
target_link_libraries(tokenizer_bench PRIVATE ominix::core)
ominix_target_options(tokenizer_bench)
# end tokenizer
