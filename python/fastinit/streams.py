"""Streams: which of the 2^64 independent Philox streams a tensor draws from.

A stream is an integer in [0, 2^64) or a name. A name maps to an integer by
    stream_id(name) = first 8 bytes of SHA-256(UTF-8 bytes of name), little-endian,
so every tensor of a checkpoint can have its own stream, fixed by its name alone.
docs/stream.md states the whole stream.
"""

from __future__ import annotations

import hashlib
from typing import Any

from . import _checks


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
