# vision: image decoding (stb_image for PNG/BMP/GIF, libjpeg-turbo, libwebp; found in
# cmake/OminixDeps.cmake) and image processors.
target_sources(ominix_core PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/image.cpp
  ${CMAKE_CURRENT_LIST_DIR}/resize.cpp
  ${CMAKE_CURRENT_LIST_DIR}/qwen2_vl_processor.cpp
)
target_include_directories(ominix_core SYSTEM PRIVATE ${OMINIX_STB_INCLUDE_DIRS}
                           ${OMINIX_JPEG_INCLUDE_DIRS} ${OMINIX_WEBP_INCLUDE_DIRS} ${OMINIX_ZLIB_INCLUDE_DIRS})
# Plain library paths, so that the installed export links them from the system too.
target_link_libraries(ominix_core PRIVATE ${OMINIX_STB_LINK_LIBRARIES} ${OMINIX_JPEG_LINK_LIBRARIES}
                      ${OMINIX_WEBP_LINK_LIBRARIES} ${OMINIX_ZLIB_LINK_LIBRARIES})
