# Qwen2.5-VL against transformers' Qwen2_5_VLForConditionalGeneration (tools/fixtures/gen_qwen_vl.py).
add_executable(qwen_vl_tests
  models/test_qwen_vl.cpp
  support/cpu_by_default.cpp
)
target_link_libraries(qwen_vl_tests PRIVATE ominix::qwen_vl ominix::qwen3 ominix::core GTest::gtest
                                            GTest::gtest_main)
target_compile_definitions(qwen_vl_tests PRIVATE OMINIX_FIXTURES="${CMAKE_CURRENT_SOURCE_DIR}/fixtures")
target_include_directories(qwen_vl_tests PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
ominix_target_options(qwen_vl_tests)
gtest_discover_tests(qwen_vl_tests PROPERTIES LABELS unit DISCOVERY_TIMEOUT 60)

# `ominix generate --image` gives transformers' greedy ids (tools/fixtures/gen_qwen_vl_cli.py:
# the model directories with preprocessor_config.json, chat_template.jinja and img.png, and the
# reference's ids generated with the EOS ids suppressed, as --ignore-eos (=forbid) does).
if(TARGET ominix)
  foreach(_vl qwen2_5_vl qwen3_vl)
    set(_vldir ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/models/qwen_vl_cli/${_vl})
    file(READ ${_vldir}/expected.json _vl_expected)
    string(JSON _vl_n LENGTH "${_vl_expected}" ids)
    math(EXPR _vl_last "${_vl_n} - 1")
    set(_vl_ids "")
    foreach(_i RANGE ${_vl_last})
      string(JSON _id GET "${_vl_expected}" ids ${_i})
      list(APPEND _vl_ids ${_id})
    endforeach()
    list(JOIN _vl_ids "," _vl_ids)
    add_test(NAME cli.generate_image_${_vl}
             COMMAND ominix generate --model ${_vldir} --image ${_vldir}/img.png
                     --prompt "Describe this image." --max-tokens 12 --temp 0 --ignore-eos
                     --format json)
    set_tests_properties(cli.generate_image_${_vl} PROPERTIES LABELS cli
                         PASS_REGULAR_EXPRESSION "\"ids\":\\[${_vl_ids}\\]")
  endforeach()
  # chat: "/image PATH" then a message is the same prompt as generate --image, so the first answer
  # is generate's (checked against transformers above).
  set(_vldir ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/models/qwen_vl_cli/qwen2_5_vl)
  add_test(NAME cli.chat_image
           COMMAND sh -c "want=$(\"$0\" generate --model \"$1\" --image \"$1/img.png\" --prompt 'Describe this image.' --max-tokens 12 --temp 0 --ignore-eos -q) && got=$(printf '/image %s\\nDescribe this image.\\n' \"$1/img.png\" | \"$0\" chat --model \"$1\" --max-tokens 12 --temp 0 --ignore-eos -q) && echo \"want [$want] got [$got]\" && [ -n \"$want\" ] && [ \"$want\" = \"$got\" ] && echo 'ok: same answer'"
                   $<TARGET_FILE:ominix> ${_vldir})
  set_tests_properties(cli.chat_image PROPERTIES LABELS cli PASS_REGULAR_EXPRESSION "ok: same answer")
  # --image on a text-only model (the chat model assembled by generate/generation.cmake).
  add_test(NAME cli.error_image_text_model
           COMMAND sh -c "out=$(\"$0\" generate --model \"$1\" --image \"$2\" --prompt hi 2>&1); rc=$?; echo \"$out\"; [ $rc -ne 0 ] && echo \"$out\" | grep -q -- 'is a text-only model (qwen3); it reads no images'"
                   $<TARGET_FILE:ominix> ${CMAKE_CURRENT_BINARY_DIR}/generate_cli/chat_model
                   ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/models/qwen_vl_cli/qwen2_5_vl/img.png)
  set_tests_properties(cli.error_image_text_model PROPERTIES LABELS cli)
endif()
