# Warnings are errors on our own code only (third-party headers come in as SYSTEM).
function(ominix_target_options target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Werror -Wno-missing-field-initializers)
  if(OMINIX_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=${OMINIX_SANITIZE} -fno-omit-frame-pointer
                                             -fno-sanitize-recover=all)
    target_link_options(${target} PRIVATE -fsanitize=${OMINIX_SANITIZE})
  endif()
endfunction()
