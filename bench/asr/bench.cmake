add_executable(bench_asr ${CMAKE_CURRENT_LIST_DIR}/bench_asr.cpp)
target_link_libraries(bench_asr PRIVATE ominix::paraformer ominix::core CLI11::CLI11)
ominix_target_options(bench_asr)
