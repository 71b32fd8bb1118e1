# C unit tests of the tracker, the /proc/net parser and the input parsers.
connhist_c_test(test_tracker connhist_recorder)
target_sources(test_tracker PRIVATE hidden_socket.c)
connhist_c_test(test_store connhist_recorder)
connhist_c_test(test_procnet connhist_recorder)
target_compile_definitions(test_procnet PRIVATE DATA_DIR="${CMAKE_CURRENT_SOURCE_DIR}/data/procnet")
connhist_c_test(test_diag_parse connhist_recorder)
connhist_c_test(test_parse connhist_common)
