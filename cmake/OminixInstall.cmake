include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(DIRECTORY include/ominix DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT ominixTargets NAMESPACE ominix:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/ominix)

set(OMINIX_MLX_DIR "${MLX_DIR}")
configure_package_config_file(cmake/ominixConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/ominixConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/ominix)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/ominixConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/ominixConfig.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/ominixConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/ominix)
