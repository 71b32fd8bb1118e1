# The owner events (issue 13): unit tests of their user side (the fact map,
# start times, decoding, the tracker's use of facts), and the integration
# tests of the event source itself (skipped, with the reason, where BPF
# cannot run: not root, a build without libbpf, no BTF).
connhist_c_test(test_owners connhist_recorder)
connhist_py_test(test_owners_events)
# LossTest runs alone: it bursts connections to overflow the event buffer,
# which every other recorder with owner events would see too. The others
# are among the longest tests: started first (COST, used while ctest has no
# timings of its own, as in a fresh clone), so the rest runs beside them.
set_tests_properties(test_owners_events.LossTest PROPERTIES RUN_SERIAL TRUE)
set_tests_properties(test_owners_events.ShortConnectionsTest PROPERTIES COST 700)
set_tests_properties(test_owners_events.UnavailableTest PROPERTIES COST 300)
# Owners inferred from listeners, owners named late, descriptors of sockets
# freed into TIME_WAIT given back to the attribution cache; the final byte
# counts of every closed connection.
if(NOT WIN32)
  connhist_py_test(test_owners_inferred)
  connhist_py_test(test_final_bytes)
endif()
# A build where CMake finds no libbpf still builds, and says what it left out.
if(NOT WIN32)
  add_test(NAME build_without_libbpf
    COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/build_without_libbpf.sh ${CMAKE_SOURCE_DIR}
            ${CMAKE_BINARY_DIR}/without-libbpf ${CMAKE_C_COMPILER})
  set_tests_properties(build_without_libbpf PROPERTIES TIMEOUT 900 COST 900)
endif()
