# The BPF socket iterator sampler (issue 17, the steady tick): the rows it
# gives against a sock_diag dump's, and its fall back to dumps. Linux only.
if(NOT WIN32)
  connhist_py_test(test_socks_iter)
  add_library(fault_bpf MODULE fault_bpf.c)
  target_link_libraries(fault_bpf PRIVATE ${CMAKE_DL_LIBS})
  set_property(TEST ${test_socks_iter_TESTS} APPEND PROPERTY ENVIRONMENT
    "CONNHIST_FAULT_BPF_SHIM=$<TARGET_FILE:fault_bpf>")
endif()
