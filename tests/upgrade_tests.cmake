# Schema upgrades (issue 5): every tests/data/connhist-vN.db older than
# schema/schema.sql is upgraded by connhist-record --upgrade, refused by
# connhist-query, and read again; failed upgrades leave the file unchanged.
connhist_py_test(test_upgrade)
