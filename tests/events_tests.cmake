# Sub-interval capture (issue 4): destroy announcements, exact close times,
# byte counters, overruns. Linux only: Windows announces nothing.
if(NOT WIN32)
  connhist_py_test(test_events)
endif()
# Samples without the TCP tables while kernel events say they did not move
# (issue 17, the idle cost): in a network namespace of its own.
if(NOT WIN32)
  connhist_py_test(test_unmoved)
endif()
