"""Per-call cost of 256-element tensors and the speed of 10^7-element fills, for
comparing two builds of fastinit in one run (best of 7 timeit repeats):

    python bench/bench_micro.py after
    PYTHONPATH=/other/tree/python:$SITE python -S bench/bench_micro.py before

(-S keeps an editable install's import hook out, so the other tree is imported.)
"""

import sys
import timeit

import fastinit
import ml_dtypes
import numpy as np

label = sys.argv[1] if len(sys.argv) > 1 else "fastinit"


def best(stmt, number, repeat=7):
    return min(timeit.repeat(stmt, number=number, repeat=repeat)) / number


small = {
    "glorot_normal(16,16)": lambda: fastinit.glorot_normal((16, 16), 1),
    "glorot_uniform(16,16)": lambda: fastinit.glorot_uniform((16, 16), 1),
    "normal(256,)": lambda: fastinit.normal((256,), 1, std=0.02),
}
out32 = np.empty((2500, 4000), np.float32)
outbf = np.empty((2500, 4000), ml_dtypes.bfloat16)
big = {
    "glorot_normal 1e7 f32 out=": lambda: fastinit.glorot_normal((2500, 4000), 1, out=out32),
    "glorot_normal 1e7 bf16 out=": lambda: fastinit.glorot_normal(
        (2500, 4000), 1, dtype="bfloat16", out=outbf
    ),
    "glorot_uniform 1e7 f32 out=": lambda: fastinit.glorot_uniform((2500, 4000), 1, out=out32),
}
for name, f in small.items():
    f()
    print(f"{label} {name:32s} {best(f, 20000) * 1e6:8.2f} us/call")
for name, f in big.items():
    f()
    print(f"{label} {name:32s} {best(f, 3) * 1e3:8.2f} ms")
