"""The thread pool's own C++ test program (csrc/cpu/parallel_test.cpp), built and run.

It checks chunk coverage for many (total, grain, threads), early stop by poll,
exception propagation, concurrent callers and fork safety. Skipped without g++.
"""

import pathlib
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
CXX = shutil.which("g++") or shutil.which("c++")


@pytest.mark.skipif(CXX is None, reason="no C++ compiler")
def test_thread_pool_program_passes(tmp_path):
    program = tmp_path / "parallel_test"
    build = subprocess.run(
        [
            CXX,
            "-std=c++17",
            "-O2",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pthread",
            "-I",
            str(ROOT / "csrc"),
            str(ROOT / "csrc" / "cpu" / "parallel.cpp"),
            str(ROOT / "csrc" / "cpu" / "parallel_test.cpp"),
            "-o",
            str(program),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert build.returncode == 0, build.stderr
    run = subprocess.run([str(program)], capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
