# Fault campaigns (issue 5): kills, disk full, locks, netlink trouble, clock
# jumps, attribution races and a soak, against the real recorder.
connhist_py_test(test_faults)

# Preload shims that inject netlink receive faults, move the wall clock, and
# kill the recorder at one exact write.
foreach(shim fault_netlink fault_clock fault_kill)
  add_library(${shim} MODULE ${shim}.c)
  target_link_libraries(${shim} PRIVATE ${CMAKE_DL_LIBS})
endforeach()
# The campaigns (kills, soak) are the longest tests; CONNHIST_FAULT_KILLS and
# CONNHIST_SOAK_SECONDS scale them (scripts/test.sh).
set_tests_properties(${test_faults_TESTS} PROPERTIES TIMEOUT 900)
# Started first (COST), so that the rest runs beside them.
set_tests_properties(test_faults.KillTest test_faults.SoakTest PROPERTIES LABELS slow COST 1000)
set_property(TEST ${test_faults_TESTS} APPEND PROPERTY ENVIRONMENT
  "CONNHIST_FAULT_NETLINK_SHIM=$<TARGET_FILE:fault_netlink>"
  "CONNHIST_FAULT_CLOCK_SHIM=$<TARGET_FILE:fault_clock>"
  "CONNHIST_FAULT_KILL_SHIM=$<TARGET_FILE:fault_kill>"
  "CONNHIST_REFUSE_NETLINK=$<TARGET_FILE:refuse_netlink>")
