# Bad input (issue 5): malformed options for both programs, unusable
# databases, hostile text in the tables.
connhist_py_test(test_bad_input)
# The longest classes (one program run after another, slowest under the
# sanitizers) start first.
set_tests_properties(test_bad_input.QueryOptionTest PROPERTIES COST 800)
set_tests_properties(test_bad_input.RecordOptionTest test_bad_input.HostileDataTest
  test_bad_input.DurationSyntaxTest PROPERTIES COST 400)
