add_executable(bench_llm ${CMAKE_CURRENT_LIST_DIR}/bench_llm.cpp)
target_link_libraries(bench_llm PRIVATE ominix::qwen3 ominix::glm4 ominix::mixtral ominix::core CLI11::CLI11)
ominix_target_options(bench_llm)
