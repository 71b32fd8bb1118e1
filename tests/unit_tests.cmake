# C unit tests of the tracker, the /proc/net parser, the input parsers and the lists of DNS answers.
connhist_c_test(test_tracker connhist_recorder)
target_sources(test_tracker PRIVATE hidden_socket.c)
connhist_c_test(test_store connhist_recorder)
connhist_c_test(test_procnet connhist_recorder)
target_compile_definitions(test_procnet PRIVATE DATA_DIR="${CMAKE_CURRENT_SOURCE_DIR}/data/procnet")
connhist_c_test(test_diag_parse connhist_recorder)
connhist_c_test(test_answer_list connhist_recorder)
connhist_c_test(test_parse connhist_common)
