connhist_py_test(test_query)
# Started before the other tests of the same cost: under valgrind
# (scripts/ci-sanitize.sh) its classes are the longest, one program run after
# another, and the waiting integration tests fit beside them.
set_tests_properties(${test_query_TESTS} PROPERTIES COST 100)
