# The owner events (issue 13): unit tests of their user side (the fact map,
# start times, decoding, the tracker's use of facts).
connhist_c_test(test_owners connhist_recorder)
