# DNS names (issue 14): the capture, the answer store and the join, with a
# dnsmasq in a network namespace of each test's own (skipped, with the
# reason, where that or the capture is not permitted).
if(NOT WIN32)
  connhist_py_test(test_names)
  set_property(TEST ${test_names_TESTS} APPEND PROPERTY ENVIRONMENT
    "CONNHIST_FAULT_CLOCK_SHIM=$<TARGET_FILE:fault_clock>")
endif()
# Unit tests of the decoding and the answer store (built where the capture is).
if(CONNHIST_NAMES_BUILT)
  connhist_c_test(test_dns connhist_recorder)
  target_include_directories(test_dns PRIVATE ${CMAKE_SOURCE_DIR}/recorder/linux)
endif()
