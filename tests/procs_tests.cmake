connhist_c_test(test_procs connhist_recorder)
target_sources(test_procs PRIVATE hidden_socket.c)
# The socket holder pass (a BPF iterator over the processes' files): what
# it reads, and the same owners and holders as through /proc.
if(NOT WIN32)
  connhist_c_test(test_procs_iter connhist_recorder)
  target_sources(test_procs_iter PRIVATE hidden_socket.c)
endif()
if(NOT WIN32)
  connhist_py_test(test_holders_source)
endif()
