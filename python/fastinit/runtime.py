"""Process-wide settings: how many threads fills use, and which CPU kernel runs.

Threads: `set_num_threads(n)` sets the default for every call; the environment
variable FASTINIT_NUM_THREADS sets it at import; otherwise it is the number of
CPUs this process may run on (its affinity mask, not the machine's core count).
Any sampler's `threads=` overrides it for one call. Output bits never depend on
the thread count.

CPU target: the best SIMD kernel this CPU supports ("avx512", "avx2" or
"scalar"), chosen once; FASTINIT_CPU_TARGET=scalar|avx2 forces a lower one.
Every target produces the same bits.
"""

from __future__ import annotations

import os
from typing import Any

from . import _checks, _core

_MAX_THREADS = 1024


def _from_environment() -> int:
    text = os.environ.get("FASTINIT_NUM_THREADS", "").strip()
    if not text:
        return _core.available_cpus()
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= _MAX_THREADS:
        raise ValueError(
            f"FASTINIT_NUM_THREADS must be an integer in [1, {_MAX_THREADS}], got {text!r}"
        )
    return value


_num_threads = _from_environment()


def set_num_threads(n: int) -> None:
    """Default number of threads for every later fill (at least 1)."""
    global _num_threads
    _num_threads = _checks.check_int("n", n, low=1, high=_MAX_THREADS + 1)


def get_num_threads() -> int:
    return _num_threads


def resolve_threads(threads: Any) -> int:
    """A call's `threads=`: None means the process default."""
    if threads is None:
        return _num_threads
    return _checks.check_int("threads", threads, low=1, high=_MAX_THREADS + 1)


def cpu_target() -> str:
    """The SIMD target fills run on: "avx512", "avx2" or "scalar"."""
    return _core.cpu_target()


def cpu_targets() -> list[str]:
    """The targets this build has and this CPU can run, lowest first."""
    return _core.supported_targets()


try:
    cpu_target()  # an unknown FASTINIT_CPU_TARGET fails here, at import, with its reason
except ValueError as error:
    raise ValueError(f"{error}; unset it or pick one of the listed targets") from None
