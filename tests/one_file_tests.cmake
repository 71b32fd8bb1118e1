# The one-file build (CONNHIST_STATIC_DEPS, scripts/build.sh): both programs
# need nothing but the C library, and run copied into a bare root.
if(CONNHIST_STATIC_DEPS)
  connhist_py_test(test_one_file)
endif()
