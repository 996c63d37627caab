# vision: video decoding through FFmpeg's libraries (found in cmake/OminixDeps.cmake).
target_sources(ominix_core PRIVATE ${CMAKE_CURRENT_LIST_DIR}/video.cpp)
target_include_directories(ominix_core SYSTEM PRIVATE ${OMINIX_FFMPEG_INCLUDE_DIRS})
# Plain library paths, so that the installed export links them from the system too.
target_link_libraries(ominix_core PRIVATE ${OMINIX_FFMPEG_LINK_LIBRARIES})
