# audio: decoding/encoding (libsndfile), resampling (libsoxr), features on MLX ops.
find_package(PkgConfig REQUIRED)
pkg_check_modules(OMINIX_SNDFILE REQUIRED sndfile)
pkg_check_modules(OMINIX_SOXR REQUIRED soxr)
target_sources(ominix_core PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/chunk.cpp
  ${CMAKE_CURRENT_LIST_DIR}/cmvn.cpp
  ${CMAKE_CURRENT_LIST_DIR}/fbank.cpp
  ${CMAKE_CURRENT_LIST_DIR}/frames.cpp
  ${CMAKE_CURRENT_LIST_DIR}/io.cpp
  ${CMAKE_CURRENT_LIST_DIR}/lfr.cpp
  ${CMAKE_CURRENT_LIST_DIR}/log_mel.cpp
  ${CMAKE_CURRENT_LIST_DIR}/resample.cpp
)
target_include_directories(ominix_core SYSTEM PRIVATE ${OMINIX_SNDFILE_INCLUDE_DIRS} ${OMINIX_SOXR_INCLUDE_DIRS})
# Plain library names, so that the installed export links them from the system too.
target_link_libraries(ominix_core PRIVATE ${OMINIX_SNDFILE_LINK_LIBRARIES} ${OMINIX_SOXR_LINK_LIBRARIES})
