"""Prints the unittest classes of test files, one "FILE CLASS" line each
(FILE without its directory and .py): CMake registers each as a ctest test
of its own (tests/CMakeLists.txt), so the classes of a long file run in
parallel. Classes come from unittest's own loader, so a new class is
registered without anyone listing it. CMake lists every file in one run:
an interpreter and the shared imports once, not once a file.

    python3 tests/cases.py tests/test_faults.py tests/test_query.py
"""

import importlib.util
import os
import sys
import unittest


def test_classes(path):
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    name = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    found = []

    def walk(suite):
        for test in suite:
            if isinstance(test, unittest.TestSuite):
                walk(test)
            elif type(test).__name__ not in found:
                found.append(type(test).__name__)

    walk(unittest.defaultTestLoader.loadTestsFromModule(module))
    return found


if __name__ == "__main__":
    for path in sys.argv[1:]:
        name = os.path.splitext(os.path.basename(path))[0]
        for cls in test_classes(path):
            print(name, cls)
