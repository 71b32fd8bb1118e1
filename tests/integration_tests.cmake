# Integration tests: the real binaries, real sockets, a real SQLite file.
connhist_py_test(test_record)
connhist_py_test(test_restart)
