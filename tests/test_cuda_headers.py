"""The shared headers compile for the GPU: nvcc builds the device instantiations.

Compile-only (no GPU needed); skipped where nvcc is absent.
"""

import pathlib
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
NVCC = shutil.which("nvcc")


@pytest.mark.cuda
@pytest.mark.skipif(NVCC is None, reason="nvcc not found")
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_shared_headers_compile_for_device(tmp_path, arch):
    result = subprocess.run(
        [
            NVCC,
            "-std=c++17",
            "--fmad=false",
            f"-arch={arch}",
            "-Werror",
            "all-warnings",
            "-I",
            str(ROOT / "csrc" / "include"),
            "-c",
            str(ROOT / "csrc" / "cuda" / "header_check.cu"),
            "-o",
            str(tmp_path / "header_check.o"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "header_check.o").stat().st_size > 0
