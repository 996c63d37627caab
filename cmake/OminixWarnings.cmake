# Warnings are errors on our own code only (third-party headers come in as SYSTEM).
function(ominix_target_options target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Werror -Wno-missing-field-initializers)
  # GCC 13's -Wdangling-reference flags references bound to what a function returns from an
  # argument that is a temporary, even when the result lives elsewhere (a static, a member):
  # false positives on correct code (GCC bug 107532).
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_GREATER_EQUAL 13)
    target_compile_options(${target} PRIVATE -Wno-dangling-reference)
  endif()
  if(OMINIX_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=${OMINIX_SANITIZE} -fno-omit-frame-pointer
                                             -fno-sanitize-recover=all)
    target_link_options(${target} PRIVATE -fsanitize=${OMINIX_SANITIZE})
  endif()
endfunction()
