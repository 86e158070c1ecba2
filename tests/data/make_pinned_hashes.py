"""Writes pinned_hashes.json: SHA-256 of output bytes over a grid of calls.

The hashes pin the stream: tests/test_pinned.py recomputes them, so any change
to the bits fastinit produces (Philox, counter layout, conversion, transforms,
rounding, parameter setup) fails loudly. Regenerate only for a deliberate,
documented change of stream, and say so in the changelog:

    python tests/data/make_pinned_hashes.py
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import pathlib

import fastinit
import numpy as np

HERE = pathlib.Path(__file__).parent
OUTPUT = HERE / "pinned_hashes.json"

SAMPLERS = {
    "glorot_normal": lambda shape, **kw: fastinit.glorot_normal(shape, **kw),
    "glorot_uniform": lambda shape, **kw: fastinit.glorot_uniform(shape, **kw),
    "he_normal": lambda shape, **kw: fastinit.he_normal(shape, **kw),
    "he_uniform": lambda shape, **kw: fastinit.he_uniform(shape, **kw),
    "uniform_disk": lambda shape, **kw: fastinit.uniform(shape, low=-2.5, high=2.5, **kw),
    "lecun_normal": lambda shape, **kw: fastinit.lecun_normal(shape, **kw),
    "lecun_uniform": lambda shape, **kw: fastinit.lecun_uniform(shape, **kw),
    "xavier_normal_untruncated": lambda shape, **kw: fastinit.glorot_normal(
        shape, distribution="normal", **kw
    ),
    "normal": lambda shape, **kw: fastinit.normal(shape, mean=0.25, std=3.0, **kw),
    "uniform": lambda shape, **kw: fastinit.uniform(shape, low=-3.0, high=5.0, **kw),
    "truncated_normal": lambda shape, **kw: fastinit.truncated_normal(
        shape, mean=1.0, std=0.5, lower=-1.0, upper=3.0, **kw
    ),
    # Issue 16: JAX's fan_geo_avg and Keras's input_axes / output_axes (new outputs).
    "variance_scaling_fan_geo_avg": lambda shape, **kw: fastinit.variance_scaling(
        shape, scale=2.0, mode="fan_geo_avg", layout="jax", **kw
    ),
    "he_normal_keras_axes": lambda shape, **kw: fastinit.he_normal(
        shape, input_axes=(0,), output_axes=(-1,), **kw
    ),
    # Issue 15: the formulas of fastinit.computed (docs/stream.md 8; new outputs).
    "inverse_softplus_log_uniform": lambda shape, **kw: fastinit.inverse_softplus_log_uniform(
        shape, low=1e-3, high=0.1, floor=2e-3, **kw
    ),
    "log_of_uniform": lambda shape, **kw: fastinit.log_of_uniform(shape, low=0.01, high=16.0, **kw),
}
# Complex outputs (docs/stream.md, "Complex outputs"): the normal (a real view), the
# truncated disk (truncated_normal, variance_scaling "truncated_normal") and the disk.
COMPLEX_SAMPLERS = {
    "normal": lambda shape, **kw: fastinit.normal(shape, std=3.0, **kw),
    "truncated_normal": lambda shape, **kw: fastinit.truncated_normal(
        shape, std=0.5, lower=-1.5, upper=1.5, **kw
    ),
    "he_normal": lambda shape, **kw: fastinit.he_normal(shape, **kw),
    "he_uniform": lambda shape, **kw: fastinit.he_uniform(shape, **kw),
    "xavier_normal_untruncated": lambda shape, **kw: fastinit.glorot_normal(
        shape, distribution="normal", **kw
    ),
}
COMPLEX_DTYPES = ("complex64", "complex128")
DTYPES = ("float32", "float64", "float16", "bfloat16")
SHAPES = ((33, 17), (4, 3, 5, 5))
SEEDS = (0, 2**64 - 1)
STREAMS = (0, "decoder.layers.0.weight")


def cases():
    """(key, thunk) for every pinned call."""
    for name, sampler in SAMPLERS.items():
        for dtype, shape, seed, stream in itertools.product(DTYPES, SHAPES, SEEDS, STREAMS):
            key = f"{name}|{dtype}|{'x'.join(map(str, shape))}|{seed}|{stream}"
            yield key, functools.partial(sampler, shape, seed=seed, dtype=dtype, stream=stream)
    for name, sampler in COMPLEX_SAMPLERS.items():
        for dtype, shape, seed, stream in itertools.product(COMPLEX_DTYPES, SHAPES, SEEDS, STREAMS):
            key = f"{name}|{dtype}|{'x'.join(map(str, shape))}|{seed}|{stream}"
            yield key, functools.partial(sampler, shape, seed=seed, dtype=dtype, stream=stream)
    for seed, offset in itertools.product(SEEDS, (0, 3, 4 * 2**32 - 5)):
        key = f"random_bits|{seed}|{offset}"
        yield key, functools.partial(fastinit.random_bits, 1001, seed, offset=offset)


def digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def main() -> None:
    hashes = {key: digest(make()) for key, make in cases()}
    OUTPUT.write_text(json.dumps(hashes, indent=1, sort_keys=True) + "\n")
    print(f"wrote {len(hashes)} hashes to {OUTPUT}")


if __name__ == "__main__":
    main()
