# Third-party packages: MLX from a backend wheel (MLX_ROOT), the rest from Debian's -dev packages.
if(MLX_ROOT)
  list(PREPEND CMAKE_PREFIX_PATH "${MLX_ROOT}")
endif()
find_package(MLX 0.32 CONFIG REQUIRED HINTS "${MLX_ROOT}/share/cmake/MLX")
# The CUDA build of libmlx.so lists CUDA::cuda_driver as a link-dependent library.
if(NOT TARGET CUDA::cuda_driver)
  find_package(CUDAToolkit QUIET)
  if(NOT TARGET CUDA::cuda_driver)
    add_library(CUDA::cuda_driver INTERFACE IMPORTED)
  endif()
endif()
get_target_property(_mlx_lib mlx IMPORTED_LOCATION_RELEASE)
message(STATUS "MLX ${MLX_VERSION}: ${_mlx_lib}")

find_package(nlohmann_json 3.10 REQUIRED)
find_package(fmt 9 REQUIRED)
find_package(CLI11 REQUIRED)
