"""Every compiled CPU target and every thread count give the scalar reference's bits.

The scalar reference (`_core.fill_region_reference`, one thread, no dispatch) is the
oracle. Sizes are chosen to not be multiples of any vector width (8 or 16 lanes,
groups of 32 or 64 elements), and regions and offsets start in the middle of a
Philox block.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import fastinit
import numpy as np
import pytest
from _shared import DTYPES
from fastinit import _checks, _core, _fill

TARGETS = fastinit.cpu_targets()
PARAMS = {
    "uniform": _core.uniform_params(-0.75, 1.5),
    "normal": _core.normal_params(0.25, 2.0),
    "truncated": _core.truncated_normal_params(-1.0, 0.5, -1.5, 2.5),
    "glorot_truncated": _core.truncated_normal_params(0.0, 0.05, -2.0, 2.0),
}
# (full shape, region start, region extent): odd sizes, mid-block starts, partial rows.
REGIONS = [
    ((1,), (0,), (1,)),
    ((3,), (1,), (2,)),
    ((67,), (0,), (67,)),
    ((1001,), (5,), (990,)),
    ((37, 129), (0, 0), (37, 129)),
    ((37, 129), (3, 7), (11, 101)),
    ((5, 6, 70), (1, 2, 3), (3, 3, 61)),
    ((4097, 33), (1, 0), (4095, 33)),
]


def reference(dtype, params, seed, stream, shape, start, extent):
    out = np.empty(extent, dtype=_checks.check_dtype(dtype))
    code = _fill.output_type(out.dtype)
    _core.fill_region_reference(out, code, params, seed, stream, list(shape), list(start))
    return out


def fill(dtype, params, seed, stream, shape, start, extent, *, threads, target):
    out = np.empty(extent, dtype=_checks.check_dtype(dtype))
    out.view(np.uint8)[...] = 0xA5  # poison: bytes a kernel never wrote would show
    code = _fill.output_type(out.dtype)
    _core.fill(out, code, params, seed, stream, list(shape), list(start), threads, target)
    return out


def same_bits(a, b):
    return a.shape == b.shape and np.array_equal(a.view(np.uint8), b.view(np.uint8))


def test_targets_are_listed_lowest_first():
    compiled = _core.compiled_targets()
    assert compiled[0] == "scalar" and TARGETS[0] == "scalar"
    assert set(TARGETS) <= set(compiled)
    assert fastinit.cpu_target() in TARGETS
    if os.environ.get("FASTINIT_CPU_TARGET") is None:
        assert fastinit.cpu_target() == TARGETS[-1]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", sorted(PARAMS))
@pytest.mark.parametrize("region", REGIONS, ids=lambda r: f"{r[0]}@{r[1]}")
def test_target_equals_scalar_reference(target, dtype, kind, region):
    shape, start, extent = region
    args = (dtype, PARAMS[kind], 12345, 2**64 - 3, shape, start, extent)
    assert same_bits(fill(*args, threads=1, target=target), reference(*args))


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("offset", [0, 1, 2, 3, 5, 4 * 2**32 - 7, 2**64 - 200])
@pytest.mark.parametrize("n", [1, 7, 63, 200])
def test_raw_words_equal_scalar(target, offset, n):
    words = np.empty(n, dtype=np.uint32)
    expected = np.empty(n, dtype=np.uint32)
    params = PARAMS["uniform"]
    _core.fill_range(words, _core.OutputType.uint32, params, 7, 9, offset, 1, target)
    _core.fill_range(expected, _core.OutputType.uint32, params, 7, 9, offset, 1, "scalar")
    assert np.array_equal(words, expected)
    assert np.array_equal(words, fastinit.random_bits(n, 7, stream=9, offset=offset))


@pytest.mark.parametrize("target", TARGETS)
def test_long_stretch_equals_word_by_word_samples(target):
    """2^20 consecutive elements through each target equal sample_words on their words."""
    n = 1 << 20
    for kind, params in PARAMS.items():
        ours = np.empty(n, dtype=np.float32)
        _core.fill_range(ours, 0, params, 99, 1, 3, 2, target)
        words = fastinit.random_bits(n, 99, stream=1, offset=3)
        assert np.array_equal(
            ours.view(np.uint32), _core.sample_words(words, params).view(np.uint32)
        ), kind


@pytest.mark.parametrize("threads", [1, 2, 3, 7])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_thread_count_never_changes_bits(threads, dtype):
    shape, start, extent = (1500, 1001), (3, 1), (1493, 999)  # ~1.5M elements: many chunks
    args = (dtype, PARAMS["glorot_truncated"], 2024, 77, shape, start, extent)
    one = fill(*args, threads=1, target="")
    assert same_bits(fill(*args, threads=threads, target=""), one)
    assert same_bits(one, reference(*args))


def test_public_threads_argument_and_default():
    x1 = fastinit.he_normal((700, 1100), 3, threads=1)
    x7 = fastinit.he_normal((700, 1100), 3, threads=7)
    assert same_bits(x1, x7)
    before = fastinit.get_num_threads()
    try:
        fastinit.set_num_threads(3)
        assert fastinit.get_num_threads() == 3
        assert same_bits(fastinit.he_normal((700, 1100), 3), x1)
    finally:
        fastinit.set_num_threads(before)
    with pytest.raises(ValueError, match="threads"):
        fastinit.he_normal((4, 4), 3, threads=0)
    with pytest.raises(TypeError, match="threads"):
        fastinit.he_normal((4, 4), 3, threads=1.5)
    with pytest.raises(ValueError, match="^n must"):
        fastinit.set_num_threads(0)


def test_concurrent_calls_from_python_threads_match_serial():
    calls = [
        (fastinit.glorot_normal, (900, 1300), seed, dtype)
        for seed in range(3)
        for dtype in ("float32", "bfloat16", "float16")
    ]
    serial = [f(shape, seed, dtype=dtype, threads=2) for f, shape, seed, dtype in calls]
    results = [None] * (4 * len(calls))
    errors = []

    def worker(k):
        try:
            for j in range(k, len(results), 4):
                f, shape, seed, dtype = calls[j % len(calls)]
                results[j] = f(shape, seed, dtype=dtype, threads=2)
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    pool = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert not errors
    for j, got in enumerate(results):
        assert same_bits(got, serial[j % len(calls)]), j


def last_line(text):
    """The last printed line (an editable install may print rebuild notes first)."""
    lines = text.strip().splitlines()
    return lines[-1] if lines else ""


def run_python(code, env=None, **kwargs):
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        **kwargs,
    )


def test_environment_forces_a_lower_target():
    result = run_python(
        "import fastinit; print(fastinit.cpu_target())", env={"FASTINIT_CPU_TARGET": "scalar"}
    )
    assert result.returncode == 0, result.stderr
    assert last_line(result.stdout) == "scalar"


def test_unknown_target_in_environment_is_a_clear_error():
    result = run_python("import fastinit", env={"FASTINIT_CPU_TARGET": "avx9000"})
    assert result.returncode != 0
    assert "FASTINIT_CPU_TARGET=avx9000" in result.stderr and "scalar" in result.stderr


def test_num_threads_from_environment_and_affinity():
    result = run_python(
        "import fastinit; print(fastinit.get_num_threads())", env={"FASTINIT_NUM_THREADS": "5"}
    )
    assert last_line(result.stdout) == "5", result.stderr
    bad = run_python("import fastinit", env={"FASTINIT_NUM_THREADS": "many"})
    assert bad.returncode != 0 and "FASTINIT_NUM_THREADS" in bad.stderr
    pinned = run_python(
        """
        import os
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
        import fastinit
        print(fastinit.get_num_threads())
        """,
        env={"FASTINIT_NUM_THREADS": ""},
    )
    assert last_line(pinned.stdout) == "1", pinned.stderr


def test_ctrl_c_interrupts_a_long_fill_within_a_second():
    # The scalar target on one thread makes a fill that would take tens of seconds.
    with subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(LONG_FILL)],
        env={**os.environ, "FASTINIT_CPU_TARGET": "scalar"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as child:
        try:
            while (line := child.stdout.readline()) and line.strip() != "ready":
                pass  # an editable install may print rebuild notes first
            assert line.strip() == "ready"
            time.sleep(1.0)  # well inside the fill
            sent = time.monotonic()
            child.send_signal(signal.SIGINT)
            child.wait(timeout=30)
            elapsed = time.monotonic() - sent
        finally:
            child.kill()
        out, err = child.communicate()
    assert child.returncode == 3, (out, err)
    assert "interrupted" in out
    assert elapsed < 1.5


LONG_FILL = """
    import signal
    import sys
    import fastinit
    # A runner started in the background may hand its children SIGINT ignored;
    # Ctrl-C at a terminal reaches Python's default handler, which is what is tested.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    print("ready", flush=True)
    try:
        fastinit.normal((400_000_000,), 0, dtype="float16", threads=1)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        sys.exit(3)
    print("finished", flush=True)
"""
