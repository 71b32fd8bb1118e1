# Integration tests: the real binaries, real sockets, a real SQLite file.
connhist_py_test(test_record)
connhist_py_test(test_restart)

# A preload shim that refuses netlink, to test the /proc/net fallback.
add_library(refuse_netlink MODULE refuse_netlink.c)
target_link_libraries(refuse_netlink PRIVATE ${CMAKE_DL_LIBS})
set_property(TEST ${test_restart_TESTS} APPEND PROPERTY ENVIRONMENT "CONNHIST_REFUSE_NETLINK=$<TARGET_FILE:refuse_netlink>")
connhist_py_test(test_retention)
connhist_py_test(test_ports)
