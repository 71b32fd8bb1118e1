# Sub-interval capture (issue 4): destroy announcements, exact close times,
# byte counters, overruns. Linux only: Windows announces nothing.
if(NOT WIN32)
  connhist_py_test(test_events)
  # Alone: it counts the connections of a burst, and bursts thousands itself.
  set_tests_properties(test_events PROPERTIES RUN_SERIAL TRUE)
endif()
