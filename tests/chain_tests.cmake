# The tamper-evident chain (issue 16): changes made after recording are
# found by connhist-query verify; pruning, kills mid-commit, an upgrade from
# version 3 and a snapshot taken while recording verify clean; a keyed chain,
# anchors through syslog(3) and a recording with the chain off (benchmarks).
connhist_py_test(test_chain)
set_property(TEST ${test_chain_TESTS} APPEND PROPERTY ENVIRONMENT
  "CONNHIST_FAULT_CLOCK_SHIM=$<TARGET_FILE:fault_clock>"
  "CONNHIST_FAULT_KILL_SHIM=$<TARGET_FILE:fault_kill>")
