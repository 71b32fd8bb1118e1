# Bad input (issue 5): malformed options for both programs, unusable
# databases, hostile text in the tables.
connhist_py_test(test_bad_input)
