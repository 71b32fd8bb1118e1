# Sub-interval capture (issue 4): destroy announcements, exact close times,
# byte counters, overruns. Linux only: Windows announces nothing.
if(NOT WIN32)
  connhist_py_test(test_events)
endif()
