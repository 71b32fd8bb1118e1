# C unit test of the query tool's JSON writer: every value byte for byte as
# cJSON prints it, hostile text included.
connhist_c_test(test_jsonw connhist_query)
