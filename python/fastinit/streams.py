"""Streams: which of the 2^64 independent Philox streams a tensor draws from.

A stream is an integer in [0, 2^64) or a name. A name maps to an integer by
    stream_id(name) = first 8 bytes of SHA-256(UTF-8 bytes of name), little-endian,
so every tensor of a checkpoint can have its own stream, fixed by its name alone.
docs/stream.md states the whole stream.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from . import _checks, _core, devices
from .runtime import resolve_threads


def stream_id(name: str) -> int:
    """The stream number of a tensor name: SHA-256 of its UTF-8 bytes, first 8 bytes LE."""
    if not isinstance(name, str):
        raise TypeError(f"stream name must be a str, got {type(name).__name__}")
    try:
        encoded = str.encode(name, "utf-8")  # str.encode: a subclass cannot change the bytes
    except UnicodeEncodeError as error:  # a lone surrogate has no UTF-8 form
        raise ValueError(
            f"stream name {_checks.show(name)} is not valid Unicode text: {error.reason} "
            f"at position {error.start}"
        ) from None
    return int.from_bytes(hashlib.sha256(encoded).digest()[:8], "little")


def check_stream(stream: Any) -> int:
    if isinstance(stream, str):
        return stream_id(stream)
    return _checks.check_u64("stream", stream)


def random_bits(
    n: int,
    seed: int,
    *,
    stream: int | str = 0,
    offset: int = 0,
    threads: int | None = None,
    device: Any = None,
) -> Any:
    """Words offset .. offset + n - 1 of the stream, as uint32.

    Word i is word (i mod 4) of Philox4x32-10 applied to the counter
    (i div 4 mod 2^32, i div 4 >> 32, stream mod 2^32, stream >> 32) under the key
    (seed mod 2^32, seed >> 32). Every sampler draws element i from word i.
    """
    n = _checks.check_int("n", n, high=1 << 61)  # n * 4 bytes < 2^63
    seed = _checks.check_seed(seed)
    stream = check_stream(stream)
    offset = _checks.check_u64("offset", offset)
    threads = resolve_threads(threads)
    if offset + n > _checks.U64_LIMIT:
        raise OverflowError(f"offset + n must be <= 2^64, got {offset} + {n}")
    device = devices.check_device(device)
    if not devices.on_host(device, None):
        target = devices.device_target(None, device, (n,), np.dtype(np.uint32))
        code = int(_core.OutputType.uint32)
        _core.cuda_fill_range(
            target.device, target.stream, target.pointer, code, _UNUSED_PARAMS, seed, stream,
            offset, n,
        )  # fmt: skip
        return target.result
    out = _checks.prepare_out(None, (n,), np.dtype(np.uint32))
    if n:
        _core.fill_range(
            out, _core.OutputType.uint32, _UNUSED_PARAMS, seed, stream, offset, threads
        )
    return out


# Raw words take no transform; the core still wants a Params value.
_UNUSED_PARAMS = _core.uniform_params(-1.0, 1.0)
