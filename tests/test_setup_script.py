"""scripts/setup.sh refuses a bad environment with the fix, before pip or CMake get to fail."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_setup(env_path: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(ROOT / "scripts/setup.sh")], capture_output=True, text=True,
                          env={"PATH": env_path, "HOME": os.environ.get("HOME", "/root"), **env}, timeout=60)


def tool_dir(tmp_path: Path, tools: list[str]) -> str:
    """A PATH with only these tools (symlinks to the real ones)."""
    d = tmp_path / "bin"
    d.mkdir()
    for tool in tools:
        (d / tool).symlink_to(shutil.which(tool))
    return str(d)


BASICS = ["bash", "uname", "dirname", "cat", "sha256sum", "cut", "grep", "git", "sort", "xargs", "find"]


def test_wrong_python_version_is_named(tmp_path):
    fake = tmp_path / "python3.12"
    fake.write_text("#!/bin/bash\necho 3.12\n")
    fake.chmod(0o755)
    r = run_setup(tool_dir(tmp_path, BASICS), DNK_PYTHON=str(fake))
    assert r.returncode != 0
    assert "Python 3.12" in r.stderr and "CPython 3.11" in r.stderr and "DNK_PYTHON" in r.stderr


def test_missing_python_is_named(tmp_path):
    r = run_setup(tool_dir(tmp_path, BASICS), DNK_PYTHON="python3-not-here")
    assert r.returncode != 0 and "'python3-not-here' not found" in r.stderr


def test_missing_compiler_is_named(tmp_path):
    path = tool_dir(tmp_path, BASICS)
    Path(path, "python3").symlink_to(sys.executable)
    r = run_setup(path)  # no cc, c++, cmake, make on PATH
    assert r.returncode != 0
    assert "'cc' not found" in r.stderr and "build-essential cmake" in r.stderr
