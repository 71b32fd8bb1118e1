# export --format ecs: the Community ID against the specification's test
# vectors (C), and the ECS documents, the cursor and --follow (Python).
connhist_c_test(test_community_id connhist_query)
connhist_py_test(test_export)
# The ECS field definitions (npm pack @elastic/ecs, a pinned release) are
# fetched once into the user's cache (tests/test_export.py: ecs_definitions).
connhist_py_test(test_packaging)
