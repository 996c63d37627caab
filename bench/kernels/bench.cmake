add_executable(bench_kernels ${CMAKE_CURRENT_LIST_DIR}/bench_kernels.cpp)
target_link_libraries(bench_kernels PRIVATE ominix::core CLI11::CLI11)
ominix_target_options(bench_kernels)
