# The HTML timeline (connhist-query --html) in headless Chromium; its browser
# classes are skipped, with the reason printed, where Chromium is missing.
connhist_py_test(test_html)
