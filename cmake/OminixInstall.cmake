include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(DIRECTORY include/ominix DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT ominixTargets NAMESPACE ominix:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/ominix)

# MLX with the package (OMINIX_INSTALL_MLX, cmake/OminixDeps.cmake): MLX_ROOT as it is (headers,
# libmlx.so, its CMake package) into LIBDIR/ominix/mlx, and every folder that a library there
# names in its RUNPATH as $ORIGIN/... inside the wheel's site folder (MLX_ROOT/..), followed from
# library to library (mlx_cpu.libs/ for the CPU wheel's BLAS; nvidia/<lib>/lib for the CUDA
# wheel's CUDA libraries, whose own RUNPATHs name their siblings), each copied whole (cuDNN and
# NVRTC open parts of themselves with dlopen) to the same place relative to LIBDIR/ominix/mlx.
function(ominix_install_mlx)
  get_filename_component(site "${OMINIX_MLX_ROOT}" DIRECTORY)
  install(DIRECTORY "${OMINIX_MLX_ROOT}/" DESTINATION "${CMAKE_INSTALL_LIBDIR}/ominix/mlx"
          USE_SOURCE_PERMISSIONS PATTERN "__pycache__" EXCLUDE)
  if(NOT CMAKE_EXECUTABLE_FORMAT STREQUAL "ELF")
    return()  # macOS: the Metal wheel's lib/ holds all it loads
  endif()
  file(GLOB_RECURSE queue LIST_DIRECTORIES false "${OMINIX_MLX_ROOT}/*.so" "${OMINIX_MLX_ROOT}/*.so.*")
  set(seen "")
  while(queue)
    list(POP_FRONT queue lib)
    file(READ_ELF "${lib}" RUNPATH runpath RPATH rpath ERROR not_elf)
    if(not_elf)
      continue()
    endif()
    get_filename_component(origin "${lib}" DIRECTORY)
    string(REPLACE ":" ";" entries "${runpath}:${rpath}")
    foreach(entry IN LISTS entries)
      if(NOT entry MATCHES "^\\$(ORIGIN|{ORIGIN})(/.*)?$")
        continue()
      endif()
      get_filename_component(dir "${origin}${CMAKE_MATCH_2}" ABSOLUTE)
      file(RELATIVE_PATH rel "${site}" "${dir}")
      file(RELATIVE_PATH in_mlx "${OMINIX_MLX_ROOT}" "${dir}")
      # Folders outside the site folder (none in the wheels) are left to the system.
      if(dir IN_LIST seen OR NOT IS_DIRECTORY "${dir}" OR rel MATCHES "^\\.\\.(/|$)" OR rel STREQUAL ""
         OR NOT in_mlx MATCHES "^\\.\\.(/|$)")
        continue()
      endif()
      list(APPEND seen "${dir}")
      message(STATUS "MLX install: ${rel}/ (RUNPATH of ${lib})")
      install(DIRECTORY "${dir}/" DESTINATION "${CMAKE_INSTALL_LIBDIR}/ominix/${rel}"
              USE_SOURCE_PERMISSIONS)
      file(GLOB more LIST_DIRECTORIES false "${dir}/*.so" "${dir}/*.so.*")
      list(APPEND queue ${more})
    endforeach()
  endwhile()
endfunction()

if(OMINIX_INSTALL_MLX)
  ominix_install_mlx()
  # The installed package finds MLX relative to itself.
  set(OMINIX_MLX_CMAKE_DIR "${CMAKE_INSTALL_LIBDIR}/ominix/mlx/share/cmake/MLX")
else()
  set(OMINIX_MLX_CMAKE_DIR "${MLX_DIR}")
endif()

# The default model is not installed by default (~250 MB): `cmake --install build --prefix PREFIX
# --component default_model` copies it to PREFIX/share/ominix/models/, where an installed
# bin/ominix looks for it (gemma3::default_model()).
if(OMINIX_DEFAULT_MODEL)
  install(FILES "${OMINIX_DEFAULT_MODEL}" DESTINATION "${CMAKE_INSTALL_DATADIR}/ominix/models"
          COMPONENT default_model EXCLUDE_FROM_ALL)
endif()

configure_package_config_file(cmake/ominixConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/ominixConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/ominix
  PATH_VARS OMINIX_MLX_CMAKE_DIR)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/ominixConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/ominixConfig.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/ominixConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/ominix)
