"""Rewrite build-container include paths in the ROS 2 wheels' exported CMake files.

The PyPI wheels' `*_rosidl_generator_pyExport.cmake` files name the include directories of
the container they were built in (/opt/python/cp311-cp311/...). CMake refuses to configure an
interface package against them ("includes non-existent path") until they point at this
venv's Python headers and numpy's headers. Idempotent; rerun after reinstalling the wheels.
"""
from __future__ import annotations

import re
import sys
import sysconfig
from pathlib import Path

import numpy

PY_INCLUDE = re.compile(r"/opt/python/cp3\d+-cp3\d+/include/python3\.\d+")
NP_INCLUDE = re.compile(r"/opt/python/cp3\d+-cp3\d+/lib/python3\.\d+/site-packages/numpy/_core/include")


def patch(prefix: Path) -> int:
    """Patch every export file under prefix/share; returns how many files changed."""
    py_inc = sysconfig.get_paths()["include"]
    np_inc = numpy.get_include()
    changed = 0
    for path in (prefix / "share").glob("*/cmake/*rosidl_generator_pyExport.cmake"):
        text = path.read_text()
        new = NP_INCLUDE.sub(np_inc, PY_INCLUDE.sub(py_inc, text))
        if new != text:
            path.write_text(new)
            changed += 1
    return changed


if __name__ == "__main__":
    root = Path(sys.argv[1] if len(sys.argv) > 1 else sys.prefix)
    print(f"dnk setup: patched {patch(root)} ROS CMake export file(s) under {root}/share")
