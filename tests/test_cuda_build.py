"""The CUDA kernels compile for the GPU architectures we ship, without spilling.

Compile-only (no GPU needed): nvcc builds cuda/kernels.cu, with the shared
headers, as the extension build does, warnings as errors, and ptxas reports
every fill kernel's resources. A kernel that spills or indexes its group array
at run time would use local memory (a stack frame): slow, and a sign the
16-byte group is not kept in registers. Skipped where nvcc is absent.
"""

import pathlib
import re
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
NVCC = shutil.which("nvcc")


@pytest.mark.cuda
@pytest.mark.skipif(NVCC is None, reason="nvcc not found")
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_kernels_compile_without_local_memory(tmp_path, arch):
    result = subprocess.run(
        [
            NVCC,
            "-std=c++17",
            "--fmad=false",
            f"-arch={arch}",
            "-Werror",
            "all-warnings",
            "-Xptxas",
            "-v",
            "-I",
            str(ROOT / "csrc" / "include"),
            "-I",
            str(ROOT / "csrc"),
            "-c",
            str(ROOT / "csrc" / "cuda" / "kernels.cu"),
            "-o",
            str(tmp_path / "kernels.o"),
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    # ptxas prints, per function: its name, then on the next line its stack frame and spills.
    report = re.findall(
        r"Function properties for (\w+)\n\s*(\d+) bytes stack frame, (\d+) bytes spill "
        r"stores, (\d+) bytes spill loads",
        result.stderr,
    )
    fills = [entry for entry in report if "fill_kernel" in entry[0]]
    # 4 float types x 4 transforms (normal, truncated, and the complex disk and truncated
    # polar pairs) + raw words
    assert len(fills) == 17, result.stderr
    for name, stack, stores, loads in fills:
        assert (stack, stores, loads) == ("0", "0", "0"), name
