# tokenizer
find_package(PkgConfig REQUIRED)
pkg_check_modules(OMINIX_PCRE2 REQUIRED libpcre2-8)
pkg_check_modules(OMINIX_UTF8PROC REQUIRED libutf8proc)
target_sources(ominix_core PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/bpe.cpp
  ${CMAKE_CURRENT_LIST_DIR}/pipeline.cpp
  ${CMAKE_CURRENT_LIST_DIR}/regex_pcre2.cpp
  ${CMAKE_CURRENT_LIST_DIR}/tokenizer.cpp
  ${CMAKE_CURRENT_LIST_DIR}/unicode.cpp
)
target_include_directories(ominix_core SYSTEM PRIVATE ${OMINIX_PCRE2_INCLUDE_DIRS} ${OMINIX_UTF8PROC_INCLUDE_DIRS})
# Plain library names, so that the installed export links them from the system too.
target_link_libraries(ominix_core PRIVATE ${OMINIX_PCRE2_LINK_LIBRARIES} ${OMINIX_UTF8PROC_LINK_LIBRARIES})
# end tokenizer
# chat templates
target_sources(ominix_core PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/chat_template.cpp
  ${CMAKE_CURRENT_LIST_DIR}/jinja_eval.cpp
  ${CMAKE_CURRENT_LIST_DIR}/jinja_ops.cpp
  ${CMAKE_CURRENT_LIST_DIR}/jinja_parse.cpp
  ${CMAKE_CURRENT_LIST_DIR}/jinja_strings.cpp
  ${CMAKE_CURRENT_LIST_DIR}/jinja_value.cpp
)
# end chat templates
# gguf tokenizer
target_sources(ominix_core PRIVATE ${CMAKE_CURRENT_LIST_DIR}/gguf_tokenizer.cpp)
# end gguf tokenizer
