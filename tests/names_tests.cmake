# DNS names (issue 14): the capture, the answer store and the join, with a
# dnsmasq in a network namespace of each test's own (skipped, with the
# reason, where that or the capture is not permitted).
if(NOT WIN32)
  connhist_py_test(test_names)
endif()
