connhist_c_test(test_procs connhist_recorder)
target_sources(test_procs PRIVATE hidden_socket.c)
