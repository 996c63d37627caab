# GGUF reading (io wing).
target_sources(ominix_core PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/gguf.cpp
  ${CMAKE_CURRENT_LIST_DIR}/gguf_quants.cpp
)
# The block decoders reproduce the reference's float32 rounding; no FMA contraction there.
set_source_files_properties(${CMAKE_CURRENT_LIST_DIR}/gguf_quants.cpp PROPERTIES COMPILE_OPTIONS -ffp-contract=off)
