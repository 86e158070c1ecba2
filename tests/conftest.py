"""The suite's pytest hooks. The dtype tables and skip markers the test files share live
in _shared.py, which they import (pytest advises against importing conftest.py); this
file reports, at the top of every run, the facts those markers and skips decide on."""

from __future__ import annotations

import importlib.metadata

import fastinit
import pytest
from _shared import CUDA_STATUS, LINUX

OPTIONAL = (
    "torch",
    "safetensors",
    "transformers",
    "dask",
    "distributed",
    "jax",
    "cupy",
    "scipy",
    "hypothesis",
)


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def pytest_report_header(config: pytest.Config) -> list[str]:
    cuda = (
        f"{CUDA_STATUS.device_count} device(s)"
        if CUDA_STATUS.available
        else f"absent ({CUDA_STATUS.reason})"
    )
    return [
        f"fastinit {fastinit.__version__}: CPU target {fastinit.cpu_target()}, CUDA {cuda}, "
        f"{'Linux' if LINUX else 'not Linux'}",
        "optional: " + ", ".join(f"{name} {_version(name)}" for name in OPTIONAL),
    ]
