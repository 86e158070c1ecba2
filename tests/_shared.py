"""What the test files share: the output dtype tables and the skip markers.

    from _shared import DTYPES, NUMPY_DTYPES, needs_cuda

(tests/ is on sys.path while pytest runs, as for `from test_kat import ...`; pytest
advises against importing conftest.py itself, which only reports these facts.)

The dtype rows come from fastinit.dtypes, the package's one table, so a new output
dtype reaches every dtype-parametrized test at once; test_shared_tables.py pins the
rows against literal known answers, so a wrong row there cannot make a wrong output
pass. The markers skip a test, with the reason, where what it needs is missing:
CUDA for fastinit (built with it, a driver and a device), a CUDA build of torch, Linux.
"""

from __future__ import annotations

import importlib
import sys
import warnings
from types import ModuleType
from typing import Any

import fastinit
import numpy as np
import pytest
from fastinit import dtypes

# ---------------------------------------------------------------------------
# Dtypes

DTYPES = dtypes.NAMES  # ("float32", "float64", "float16", "bfloat16")
NUMPY_DTYPES = {row.name: row.numpy for row in dtypes.OUTPUT_DTYPES}  # bfloat16: ml_dtypes'
# The unsigned integer of each item size: a bit-exact view of any output (x.view(...)).
UINT_OF_SIZE = {2: np.uint16, 4: np.uint32, 8: np.uint64}


def torch_dtypes() -> dict[str, Any]:
    """{name: torch dtype} for every output dtype (imports torch: call it after a skip)."""
    return {row.name: dtypes.torch_dtype(row) for row in dtypes.OUTPUT_DTYPES}


# ---------------------------------------------------------------------------
# Skip markers


def import_quietly(name: str) -> ModuleType | None:
    """The module, or None when it is absent or cannot load (its warnings silenced)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return importlib.import_module(name)
        except Exception:  # absent, or present without the libraries it needs
            return None


def _torch_has_cuda() -> bool:
    torch = import_quietly("torch")
    if torch is None:
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a CUDA torch without a driver warns here
        return bool(torch.cuda.is_available())


CUDA_STATUS = fastinit.cuda_status()
LINUX = sys.platform.startswith("linux")

needs_cuda = pytest.mark.skipif(
    not CUDA_STATUS.available, reason=f"no CUDA for fastinit: {CUDA_STATUS.reason}"
)
needs_no_cuda = pytest.mark.skipif(CUDA_STATUS.available, reason="CUDA is available here")
# N.B. torch is imported only where fastinit has CUDA: the CPU-only files stay torch-free.
needs_cuda_torch = pytest.mark.skipif(
    not (CUDA_STATUS.available and _torch_has_cuda()),
    reason=f"no CUDA for fastinit: {CUDA_STATUS.reason}"
    if not CUDA_STATUS.available
    else "no CUDA torch",
)


def needs_linux(reason: str) -> pytest.MarkDecorator:
    """Skips the test off Linux; `reason` says what of Linux's it needs."""
    return pytest.mark.skipif(not LINUX, reason=reason)
