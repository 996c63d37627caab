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

# An install runs and builds on its own and can be moved: with MLX from a wheel (MLX_ROOT),
# `cmake --install` copies that MLX into LIBDIR/ominix/ as the wheel lays it out (mlx/lib/libmlx.so
# beside the libraries its $ORIGIN RUNPATH names: mlx_cpu.libs/, nvidia/*/lib), and the installed
# binaries find it through an $ORIGIN-relative RUNPATH (cmake/OminixInstall.cmake copies it).
# Without it, the installed binaries keep the absolute path of the MLX they were linked with.
if(MLX_ROOT)
  set(_install_mlx_default ON)
else()
  set(_install_mlx_default OFF)
endif()
option(OMINIX_INSTALL_MLX "Install MLX (from MLX_ROOT) with OminiX, found through a relative RUNPATH"
       ${_install_mlx_default})
if(APPLE)
  set(_origin "@loader_path")
else()
  set(_origin "$ORIGIN")
endif()
if(OMINIX_INSTALL_MLX)
  if(NOT MLX_ROOT)
    message(FATAL_ERROR "OMINIX_INSTALL_MLX needs MLX_ROOT (the unpacked mlx/ folder of an MLX wheel)")
  endif()
  get_filename_component(OMINIX_MLX_ROOT "${MLX_ROOT}" ABSOLUTE)
  get_filename_component(_mlx_libdir "${_mlx_lib}" DIRECTORY)
  file(RELATIVE_PATH _mlx_lib_rel "${OMINIX_MLX_ROOT}" "${_mlx_libdir}")
  # Installed: LIBDIR/ominix/mlx is MLX_ROOT, so libmlx.so is in LIBDIR/ominix/mlx/<_mlx_lib_rel>.
  set(OMINIX_MLX_INSTALL_LIBDIR "${CMAKE_INSTALL_LIBDIR}/ominix/mlx/${_mlx_lib_rel}")
  # From bin/ and lib/ to MLX.
  file(RELATIVE_PATH _bin_mlx "/prefix/${CMAKE_INSTALL_BINDIR}" "/prefix/${OMINIX_MLX_INSTALL_LIBDIR}")
  file(RELATIVE_PATH _lib_mlx "/prefix/${CMAKE_INSTALL_LIBDIR}" "/prefix/${OMINIX_MLX_INSTALL_LIBDIR}")
  set(CMAKE_INSTALL_RPATH "${_origin}/${_bin_mlx}" "${_origin}/${_lib_mlx}")
else()
  set(CMAKE_INSTALL_RPATH_USE_LINK_PATH ON)
endif()
if(BUILD_SHARED_LIBS)  # from bin/ to our own libraries
  file(RELATIVE_PATH _bin_lib "/prefix/${CMAKE_INSTALL_BINDIR}" "/prefix/${CMAKE_INSTALL_LIBDIR}")
  list(APPEND CMAKE_INSTALL_RPATH "${_origin}/${_bin_lib}")
endif()

find_package(nlohmann_json 3.10 REQUIRED)
find_package(fmt 9 REQUIRED)
find_package(CLI11 REQUIRED)

# core/vision's image decoders (Debian: libstb-dev, libjpeg-dev, libwebp-dev): stb_image for PNG,
# BMP and GIF; libjpeg-turbo for JPEG, which decodes exactly as Pillow's bundled libjpeg-turbo;
# libwebp for WebP.
find_package(PkgConfig REQUIRED)
pkg_check_modules(OMINIX_STB REQUIRED stb)
pkg_check_modules(OMINIX_JPEG REQUIRED libjpeg)
pkg_check_modules(OMINIX_WEBP REQUIRED libwebp libwebpdemux)
# zlib (Debian: zlib1g-dev, which libpng-dev pulls in): a PNG's compressed data is measured before
# stb_image inflates it (core/vision/image.cpp, check_png_inflated_size).
pkg_check_modules(OMINIX_ZLIB REQUIRED zlib)
# core/vision's video decoding (Debian: libavformat-dev, libavcodec-dev, libswscale-dev,
# libavutil-dev): FFmpeg's demuxers and decoders, and swscale's YUV -> RGB conversion, the same
# libraries torchcodec (qwen-vl-utils' first video reader) decodes with.
pkg_check_modules(OMINIX_FFMPEG REQUIRED libavformat libavcodec libswscale libavutil)
