# ominix convert / ominix::convert_checkpoint against mlx-lm 0.32.2's conversions of the tiny
# fixtures (tools/fixtures/gen_convert.py and the *_q4 fixtures), and end to end (convert/cli.sh).
add_executable(convert_tests
  convert/test_convert.cpp
  support/cpu_by_default.cpp
)
target_link_libraries(convert_tests PRIVATE ominix::all GTest::gtest GTest::gtest_main)
target_compile_definitions(convert_tests PRIVATE OMINIX_FIXTURES="${CMAKE_CURRENT_SOURCE_DIR}/fixtures")
target_include_directories(convert_tests PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
ominix_target_options(convert_tests)
gtest_discover_tests(convert_tests PROPERTIES LABELS unit DISCOVERY_TIMEOUT 60)

if(TARGET ominix)
  set(_cv ${CMAKE_CURRENT_SOURCE_DIR}/convert/cli.sh)
  set(_cv_work ${CMAKE_CURRENT_BINARY_DIR}/convert_cli)
  foreach(_case
          "qwen3_moe models/qwen3/qwen3_moe models/qwen3/qwen3_moe_q4"
          "glm4_moe models/glm4/glm4_moe models/glm4/glm4_moe_q4"
          "mixtral models/mixtral/mixtral models/mixtral/mixtral_q4")
    separate_arguments(_args UNIX_COMMAND "${_case}")
    list(GET _args 0 _name)
    list(SUBLIST _args 1 2 _dirs)
    add_test(NAME cli.convert_moe_${_name}
             COMMAND ${_cv} moe $<TARGET_FILE:ominix> ${CMAKE_CURRENT_SOURCE_DIR}/fixtures
                     ${_cv_work}/moe_${_name} ${_dirs})
    list(APPEND _cv_tests cli.convert_moe_${_name})
  endforeach()
  foreach(_name funasr bad_config out_is_file unwritable)
    add_test(NAME cli.convert_${_name}
             COMMAND ${_cv} ${_name} $<TARGET_FILE:ominix> ${CMAKE_CURRENT_SOURCE_DIR}/fixtures
                     ${_cv_work}/${_name})
    list(APPEND _cv_tests cli.convert_${_name})
  endforeach()
  set_tests_properties(${_cv_tests} PROPERTIES LABELS cli PASS_REGULAR_EXPRESSION "PASS"
                       FAIL_REGULAR_EXPRESSION "FAIL:")
  # --help names the accepted widths and group sizes and the default group size.
  add_test(NAME cli.convert_help COMMAND ominix convert --help)
  set_tests_properties(cli.convert_help PROPERTIES LABELS cli PASS_REGULAR_EXPRESSION
                       "--quantize INT:\\{2,3,4,5,6,8\\}.*--group-size INT:\\{32,64,128\\}=64")
endif()
