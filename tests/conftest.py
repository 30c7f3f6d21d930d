"""Configuration of the project's own tests.

The tests exercise the package in python/ whether or not it is installed in the running Python
(the native module may still be unbuilt), and use pytest's `pytester` to run inner sessions.
"""

import sys
from pathlib import Path

PYTHON_SOURCE = str(Path(__file__).resolve().parent.parent / "python")
if PYTHON_SOURCE not in sys.path:
    sys.path.insert(0, PYTHON_SOURCE)

pytest_plugins = ["pytester"]
