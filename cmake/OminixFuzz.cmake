# The fuzz build (-DOMINIX_BUILD_FUZZERS=ON, clang only): every library of ours is compiled with
# libFuzzer's coverage instrumentation (-fsanitize=fuzzer-no-link) and ASan + UBSan, so that a
# target linking ominix::core or a model library sees the branches of the code it feeds. Included
# before the libraries are defined; the fuzz targets themselves add -fsanitize=fuzzer (the main).
if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "OMINIX_BUILD_FUZZERS needs clang (libFuzzer): -DCMAKE_CXX_COMPILER=clang++")
endif()
add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
                    -fno-sanitize-recover=all)
add_link_options(-fsanitize=address,undefined)
# The targets are ctest tests of this build (label `fuzz`, see fuzz/CMakeLists.txt).
enable_testing()
