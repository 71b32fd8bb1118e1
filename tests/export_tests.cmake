# export --format ecs: the Community ID against the specification's test
# vectors (C), and the ECS documents, the cursor and --follow (Python).
connhist_c_test(test_community_id connhist_query)
connhist_py_test(test_export)
# The ECS field definitions (npm pack @elastic/ecs) are fetched once into
# the build tree, where every run of the test finds them.
set_property(TEST ${test_export_TESTS} APPEND PROPERTY ENVIRONMENT "CONNHIST_NPM_CACHE=${CMAKE_BINARY_DIR}/npm-cache")
connhist_py_test(test_packaging)
