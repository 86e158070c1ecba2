"""The CUDA backend: the CPU's bits in kernels, through DLPack, and into CUDA tensors.

The first tests run everywhere: cuda_status(), what device= does when CUDA is
absent, misspelled devices, device="cpu". Everything after them needs fastinit
built with CUDA and a GPU with its driver (`needs_cuda`); the torch tests also need a
CUDA build of torch (`needs_cuda_torch`) and the CuPy tests CuPy with a device. Each
device result is compared bit for bit, on the host, against the CPU call with
the same arguments. Keep the GPU part fast: it runs in a short device session.
"""

from __future__ import annotations

import gc
import math
import warnings

import fastinit
import numpy as np
import pytest
from _shared import (
    CUDA_STATUS,
    DTYPES,
    UINT_OF_SIZE,
    import_quietly,
    needs_cuda,
    needs_cuda_torch,
    needs_no_cuda,
    torch_dtypes,
)
from _shared import NUMPY_DTYPES as OUTPUT_NUMPY_DTYPES
from fastinit import _core
from test_kat import STREAM_VECTORS, VECTORS, block_and_stream

pytestmark = pytest.mark.cuda


torch = import_quietly("torch")

# The output dtypes and random_bits' uint32.
NUMPY_DTYPES = {**OUTPUT_NUMPY_DTYPES, "uint32": np.dtype(np.uint32)}
if torch is not None:
    TORCH_DTYPES = {**torch_dtypes(), "uint32": getattr(torch, "uint32", None)}
    NUMPY_OF_TORCH = {t: NUMPY_DTYPES[name] for name, t in TORCH_DTYPES.items() if t is not None}
    SAME_SIZE_INT = {2: torch.int16, 4: torch.int32, 8: torch.int64}


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def bits(a):
    """The array viewed as unsigned integers of its item size: compares NaNs and -0.0 exactly."""
    return np.ascontiguousarray(a).view(UINT_OF_SIZE[a.dtype.itemsize])


def torch_to_numpy(t):
    """A host NumPy copy of a torch tensor, bits unchanged (bfloat16 and uint32 included)."""
    dtype = NUMPY_OF_TORCH[t.dtype]
    raw = t.detach().contiguous().view(SAME_SIZE_INT[dtype.itemsize])  # a view: any dtype
    return raw.cpu().numpy().view(dtype)


def host_copy(x):
    if isinstance(x, fastinit.CudaArray):
        return x.to_numpy()
    if torch is not None and isinstance(x, torch.Tensor):
        return torch_to_numpy(x)
    if type(x).__module__.split(".")[0] == "cupy":
        return x.get()
    return x


def assert_same_bits(device_result, host_result):
    """device_result (CudaArray, tensor or array) holds exactly host_result's bits."""
    got = host_copy(device_result)
    assert isinstance(host_result, np.ndarray), type(host_result)
    assert got.dtype == host_result.dtype
    assert got.shape == host_result.shape
    np.testing.assert_array_equal(bits(got), bits(host_result))


def check_cuda_array(x, shape, dtype):
    assert isinstance(x, fastinit.CudaArray), type(x)
    assert x.shape == tuple(shape)
    assert x.dtype == NUMPY_DTYPES[dtype]
    assert x.device == f"cuda:{x.device_id}"
    assert x.__dlpack_device__() == (2, x.device_id)


def shape_id(shape):
    return "x".join(map(str, shape)) if shape else "scalar"


def _with_fans(f, **fixed):
    """A named initializer; shapes below 2 axes get explicit fans."""

    def call(shape, seed, **kw):
        fans = {} if len(shape) >= 2 else {"fan_in": 7, "fan_out": 5}
        return f(shape, seed, **fans, **fixed, **kw)

    return call


def _plain(f, **fixed):
    def call(shape, seed, **kw):
        return f(shape, seed, **fixed, **kw)

    return call


# Every sampler that draws from the stream: name -> call(shape, seed, **kw).
SAMPLERS = {
    "glorot_normal": _with_fans(fastinit.glorot_normal),
    "glorot_uniform": _with_fans(fastinit.glorot_uniform),
    "he_normal": _with_fans(fastinit.he_normal),
    "he_uniform": _with_fans(fastinit.he_uniform),
    "lecun_normal": _with_fans(fastinit.lecun_normal, gain=1.5),
    "lecun_uniform": _with_fans(fastinit.lecun_uniform),
    "vs_truncated_normal": _with_fans(fastinit.variance_scaling, scale=0.3, mode="fan_out"),
    "vs_normal": _with_fans(
        fastinit.variance_scaling, scale=2.5, mode="fan_avg", distribution="normal"
    ),
    "vs_uniform": _with_fans(fastinit.variance_scaling, scale=0.7, distribution="uniform"),
    "truncated_normal": _plain(fastinit.truncated_normal),
    "truncated_normal_asymmetric": _plain(
        fastinit.truncated_normal, mean=1.0, std=0.5, lower=-1.5, upper=3.0
    ),
    "truncated_normal_upper_inf": _plain(
        fastinit.truncated_normal, mean=-0.25, std=2.0, lower=-0.5, upper=math.inf
    ),
    "truncated_normal_absolute_lower_inf": _plain(fastinit.truncated_normal, a=-math.inf, b=0.3),
    "normal": _plain(fastinit.normal, mean=0.25, std=2.0),
    "uniform": _plain(fastinit.uniform, low=-3.0, high=0.5),
}

# Lengths around the 4- and 8-element groups a thread writes, odd 2-D and 4-D shapes,
# a 0-d one, and one large enough that every thread loops.
SIZES = [
    (),
    (0,),
    (1,),
    (3,),
    (5,),
    (7,),
    (8,),
    (9,),
    (17,),
    (1023,),
    (4097,),
    (257, 33),
    (3, 5, 7, 11),
    (2**22 + 3,),
]

# (full shape, region): where the region's first element and its runs fall.
REGIONS = [
    ((4097,), (slice(1001, 3999),)),  # one run from an odd element
    ((4097,), (slice(4090, None),)),  # the tail
    ((257, 33), (slice(2, 250), slice(5, 32))),  # runs of 27 from element 71: mid-block
    ((257, 33), (slice(None), slice(7, 8))),  # one column: runs of length 1
    ((257, 33), (slice(3, 200), slice(32, 33))),  # the last column
    ((257, 33), (slice(100, 101),)),  # one whole row
    ((257, 33), (slice(4, 4),)),  # empty
    ((13, 11, 17), (slice(2, 11), slice(3, 10), slice(5, 16))),  # cut on every axis; from 430
    ((50, 7, 9), (slice(3, 40),)),  # trailing axes whole: one run from element 189
    ((3, 5, 7, 11), (slice(1, 3), slice(0, 5), slice(2, 6))),  # whole last axis: runs of 44
    ((50, 60, 70), (slice(49, 50), slice(59, 60), slice(1, 70))),  # leading axes of one
    ((2**40, 24), (slice(2**40 - 3, None), slice(5, 21))),  # past 2^32 Philox blocks
    ((1000, 4099), (slice(3, 997), slice(1, 4098))),  # 4M elements: every thread loops
]


def region_id(case):
    shape, region = case
    parts = [f"{s.start or 0}:{'' if s.stop is None else s.stop}" for s in region]
    return f"{shape_id(shape)}[{','.join(parts)}]"


# ---------------------------------------------------------------------------
# Everywhere: status, CUDA absent, device spellings, device="cpu"
# ---------------------------------------------------------------------------


def test_cuda_status_is_a_consistent_triple():
    status = fastinit.cuda_status()
    assert isinstance(status, tuple) and len(status) == 3
    available, count, reason = status
    assert type(available) is bool and type(count) is int and type(reason) is str
    assert (status.available, status.device_count, status.reason) == (available, count, reason)
    assert fastinit.cuda_available() is available
    assert fastinit.cuda_status() == status  # asking again changes nothing
    if available:
        assert count >= 1 and reason == ""
    else:
        assert count == 0 and reason.strip() != ""
    if not _core.cuda_compiled:
        assert not available and "without CUDA" in reason


# Each call takes device=; together they cover the samplers, random_bits and structured.
DEVICE_CALLS = {
    "glorot_normal": lambda device: fastinit.glorot_normal((37, 53), 0, device=device),
    "uniform_region": lambda device: fastinit.uniform(
        (37, 53), 0, region=(slice(1, 30), slice(3, 9)), device=device
    ),
    "truncated_normal": lambda device: fastinit.truncated_normal(
        (37, 53), 0, lower=-1.0, upper=math.inf, dtype="bfloat16", device=device
    ),
    "random_bits": lambda device: fastinit.random_bits(1001, 0, offset=3, device=device),
    "zeros": lambda device: fastinit.zeros((37, 53), device=device),
    "constant": lambda device: fastinit.constant((37, 53), 0.3, dtype="float16", device=device),
    "identity": lambda device: fastinit.identity((37, 53), device=device),
    "dirac": lambda device: fastinit.dirac((12, 8, 3, 5), 2, device=device),
    "orthogonal": lambda device: fastinit.orthogonal((37, 53), 0, device=device),
}


@needs_no_cuda
@pytest.mark.parametrize("device", ["cuda", "cuda:0", "cuda:1"])
@pytest.mark.parametrize("name", sorted(DEVICE_CALLS))
def test_device_cuda_without_cuda_raises(name, device):
    with pytest.raises(RuntimeError) as raised:
        DEVICE_CALLS[name](device)
    message = str(raised.value)
    assert "device" in message and CUDA_STATUS.reason in message


class FakeCudaTensor:
    """Says it lives on cuda:0; exporting it fails the test."""

    def __dlpack_device__(self):
        return (2, 0)

    def __dlpack__(self, **kwargs):
        raise AssertionError("a fill without CUDA asked for the tensor")


OUT_CALLS = {
    "he_normal": lambda shape, **kw: fastinit.he_normal(shape, 1, **kw),
    "uniform": lambda shape, **kw: fastinit.uniform(shape, 1, **kw),
    "zeros": lambda shape, **kw: fastinit.zeros(shape, **kw),
    "identity": lambda shape, **kw: fastinit.identity(shape, **kw),
    "orthogonal": lambda shape, **kw: fastinit.orthogonal(shape, 1, **kw),
}


@needs_no_cuda
@pytest.mark.parametrize("name", sorted(OUT_CALLS))
def test_cuda_out_without_cuda_raises(name):
    with pytest.raises(RuntimeError) as raised:
        OUT_CALLS[name]((4, 4), out=FakeCudaTensor())
    message = str(raised.value)
    assert "out" in message and CUDA_STATUS.reason in message


@pytest.mark.parametrize("name", sorted(OUT_CALLS))
def test_cuda_out_with_device_cpu_is_refused(name):
    # Decided from __dlpack_device__ alone, with or without CUDA.
    with pytest.raises(ValueError, match="out is on cuda:0, but device is 'cpu'"):
        OUT_CALLS[name]((4, 4), out=FakeCudaTensor(), device="cpu")


BAD_DEVICE_STRINGS = [
    "gpu",
    "cuda:x",
    "cuda:-1",
    "cuda: 0",
    "cuda:0 ",
    "cuda:",
    "CUDA",
    "cuda:1.0",
    "cuda:\u0663",  # ARABIC-INDIC DIGIT THREE: a digit, but not an ASCII one
    "",
]


@pytest.mark.parametrize("device", BAD_DEVICE_STRINGS)
@pytest.mark.parametrize("name", sorted(DEVICE_CALLS))
def test_bad_device_string_is_a_value_error(name, device):
    # Checked before CUDA is asked for: a ValueError here, never the RuntimeError of no CUDA.
    with pytest.raises(ValueError, match="device"):
        DEVICE_CALLS[name](device)


@pytest.mark.parametrize("device", [3, 0, 1.5, b"cuda", True, ("cuda", 0)], ids=repr)
@pytest.mark.parametrize("name", sorted(DEVICE_CALLS))
def test_bad_device_type_is_a_type_error(name, device):
    with pytest.raises(TypeError, match="device"):
        DEVICE_CALLS[name](device)


@pytest.mark.parametrize("spelling", ["cpu", "torch.device"])
@pytest.mark.parametrize("name", sorted(DEVICE_CALLS))
def test_device_cpu_is_the_default(name, spelling):
    if spelling == "torch.device":
        if torch is None:
            pytest.skip("torch is not installed")
        device = torch.device("cpu")
    else:
        device = spelling
    default = DEVICE_CALLS[name](None)
    on_cpu = DEVICE_CALLS[name](device)
    assert isinstance(default, np.ndarray) and isinstance(on_cpu, np.ndarray)
    assert_same_bits(on_cpu, default)


def test_device_cpu_fills_numpy_out():
    out = np.full((37, 53), np.nan, np.float32)
    assert fastinit.he_normal((37, 53), 4, out=out, device="cpu") is out
    assert_same_bits(out, fastinit.he_normal((37, 53), 4))


# ---------------------------------------------------------------------------
# Philox known answers, computed in a kernel
# ---------------------------------------------------------------------------


@needs_cuda
@pytest.mark.parametrize("rounds", sorted(VECTORS))
def test_philox_known_answers_in_a_kernel(rounds):
    vectors = VECTORS[rounds]
    counters = np.array([v.counter for v in vectors], dtype=np.uint32)
    keys = np.array([v.key for v in vectors], dtype=np.uint32)
    expected = np.array([v.expected for v in vectors], dtype=np.uint32)
    copies = 9  # several blocks of 256 threads, each vector at several positions
    got = _core.cuda_philox4x32(
        0, np.tile(counters, (copies, 1)), np.tile(keys, (copies, 1)), rounds
    )
    assert got.dtype == np.uint32 and got.shape == (copies * len(vectors), 4)
    right = (got.reshape(copies, len(vectors), 4) == expected).all(axis=(0, 2))
    wrong = [v.where for v, ok in zip(vectors, right, strict=True) if not ok]
    assert not wrong, f"philox4x32_{rounds} in a kernel differs from Random123 for {wrong}"


@needs_cuda
def test_philox_kernel_rejects_bad_arguments():
    counters, keys = np.zeros((2, 4), np.uint32), np.zeros((2, 2), np.uint32)
    with pytest.raises(ValueError, match="rounds"):
        _core.cuda_philox4x32(0, counters, keys, 8)
    with pytest.raises(ValueError, match="shape"):
        _core.cuda_philox4x32(0, counters, keys[:1], 10)


@needs_cuda
@pytest.mark.parametrize("v", STREAM_VECTORS, ids=lambda v: v.where)
def test_known_answers_through_the_cuda_stream(v):
    seed, stream, block = block_and_stream(v)
    words = fastinit.random_bits(4, seed, stream=stream, offset=4 * block, device="cuda")
    check_cuda_array(words, (4,), "uint32")
    assert tuple(int(w) for w in words.to_numpy()) == v.expected
    lead = min(3, 4 * block)  # the same block, entered mid-way through the one before
    words = fastinit.random_bits(
        lead + 4, seed, stream=stream, offset=4 * block - lead, device="cuda"
    )
    assert tuple(int(w) for w in words.to_numpy()[lead:]) == v.expected


# ---------------------------------------------------------------------------
# The CPU's bits: every sampler, dtype, size and region
# ---------------------------------------------------------------------------


@needs_cuda
@pytest.mark.parametrize("shape", SIZES, ids=shape_id)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_sampler_matches_cpu(name, dtype, shape):
    sample = SAMPLERS[name]
    x = sample(shape, 1234, dtype=dtype, stream=7, device="cuda")
    check_cuda_array(x, shape, dtype)
    assert x.device == f"cuda:{_core.query_current_device()}"  # "cuda": the current device
    assert_same_bits(x, sample(shape, 1234, dtype=dtype, stream=7))


@needs_cuda
@pytest.mark.parametrize("case", REGIONS, ids=region_id)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_region_matches_cpu(name, dtype, case):
    shape, region = case
    sample = SAMPLERS[name]
    x = sample(shape, 99, dtype=dtype, stream="encoder.weight", region=region, device="cuda")
    expected = sample(shape, 99, dtype=dtype, stream="encoder.weight", region=region)
    check_cuda_array(x, expected.shape, dtype)
    assert_same_bits(x, expected)


@needs_cuda
@pytest.mark.parametrize("stream", [0, 3, 2**32 + 3, 2**64 - 1, "decoder.layers.3.mlp.weight", ""])
@pytest.mark.parametrize("seed", [0, 1, 2**32 + 5, 2**64 - 1])
@pytest.mark.parametrize("name", ["he_normal", "uniform", "truncated_normal_asymmetric"])
def test_seeds_and_streams_match_cpu(name, seed, stream):
    sample = SAMPLERS[name]
    for dtype in ("float32", "bfloat16"):
        for region in (None, (slice(5, 250), slice(3, 31))):
            x = sample((257, 33), seed, dtype=dtype, stream=stream, region=region, device="cuda")
            assert_same_bits(x, sample((257, 33), seed, dtype=dtype, stream=stream, region=region))


# Wide ranges: float16 subnormals and overflow-free extremes, ties, deep tails.
WIDE_RANGES = {
    "normal_tiny": lambda **kw: fastinit.normal((200_003,), 3, std=2e-5, **kw),
    "normal_huge": lambda **kw: fastinit.normal((200_003,), 3, std=9000.0, **kw),
    "uniform_wide": lambda **kw: fastinit.uniform((200_003,), 3, low=-6e4, high=6e4, **kw),
    "uniform_ulp": lambda **kw: fastinit.uniform((200_003,), 3, low=1.0, high=1.01, **kw),
    "truncated_tail": lambda **kw: fastinit.truncated_normal(
        (200_003,), 3, mean=-1e-3, std=1e-4, lower=1.0, upper=math.inf, **kw
    ),
}


@needs_cuda
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(WIDE_RANGES))
def test_rounding_over_wide_ranges_matches_cpu(name, dtype):
    call = WIDE_RANGES[name]
    assert_same_bits(call(dtype=dtype, device="cuda"), call(dtype=dtype))


RANDOM_BITS_CASES = [(n, 0) for n in (0, 1, 3, 5, 7, 8, 9, 17, 1023, 4097)] + [
    (1000, 1),
    (1001, 3),
    (4097, 5),
    (21, 2**34 - 7),  # the block counter's high word changes at element 2^34
    (99, 2**64 - 100),  # odd n ending just before the last element of the stream
    (101, 2**64 - 101),  # ending at element 2^64 - 1
    (1, 2**64 - 1),
]


@needs_cuda
@pytest.mark.parametrize(("n", "offset"), RANDOM_BITS_CASES)
def test_random_bits_match_cpu(n, offset):
    for seed, stream in ((5, 0), (2**64 - 1, 2**64 - 1), (2**32, "embeddings.weight")):
        x = fastinit.random_bits(n, seed, stream=stream, offset=offset, device="cuda")
        check_cuda_array(x, (n,), "uint32")
        assert_same_bits(x, fastinit.random_bits(n, seed, stream=stream, offset=offset))


def _constant(shape, **kw):
    return fastinit.constant(shape, 0.3, **kw)


def _negative_constant(shape, **kw):
    return fastinit.constant(shape, -2.5, **kw)


def _identity(shape, **kw):
    return fastinit.identity(shape, 0.75, **kw)


def _dirac_2_groups(shape, **kw):
    return fastinit.dirac(shape, 2, gain=1.25, **kw)


def _dirac_3_groups(shape, **kw):
    return fastinit.dirac(shape, 3, **kw)


def _orthogonal(shape, **kw):
    return fastinit.orthogonal(shape, 9, 1.5, stream="layer.0.weight", **kw)


def _structured_cases():
    cases = []
    for call in (_constant, _negative_constant, fastinit.zeros, fastinit.ones):
        for shape in [(0,), (1,), (7,), (9,), (4097,), (257, 33), (3, 5, 7, 11)]:
            cases.append((call, shape, None))
        cases.append((call, (257, 33), (slice(2, 250), slice(5, 32))))
    cases += [
        (_identity, (37, 53), None),
        (_identity, (53, 37), None),
        (_identity, (1, 1), None),
        (_identity, (0, 5), None),
        (_identity, (300, 500), (slice(250, 300), slice(240, 310))),
        (_identity, (37, 53), (slice(3, 30), slice(-20, -1))),
        (_identity, (37, 53), (slice(0, 5), slice(40, 50))),  # misses the diagonal
        (_dirac_2_groups, (12, 8, 3, 5), None),
        (_dirac_2_groups, (12, 8, 3, 5), (slice(2, 9), slice(1, 7), slice(1, 2), slice(2, 3))),
        (_dirac_2_groups, (6, 6, 5), None),
        (_dirac_2_groups, (6, 6, 5), (slice(None), slice(None), slice(0, 1))),  # no centre
        (_dirac_2_groups, (8, 4, 3, 3, 3), None),
        (_dirac_3_groups, (12, 4, 3, 3), (slice(3, 10), slice(1, None), slice(1, 2))),
        (_orthogonal, (37, 53), None),
        (_orthogonal, (53, 37), None),
        (_orthogonal, (1, 1), None),
        (_orthogonal, (0, 4), None),
        (_orthogonal, (257, 33), None),
        (_orthogonal, (64, 3, 3, 3), None),
        (_orthogonal, (40, 8, 3), (slice(2, 9), slice(-5, None))),
    ]
    params = []
    for call, shape, region in cases:
        ident = f"{call.__name__.strip('_')}-{shape_id(shape)}" + ("-region" if region else "")
        params.append(pytest.param(call, shape, region, id=ident))
    return params


STRUCTURED_CASES = _structured_cases()


@needs_cuda
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("call", "shape", "region"), STRUCTURED_CASES)
def test_structured_matches_cpu(call, shape, region, dtype):
    # orthogonal: the host computes the matrix and uploads it, so the bits are the host's.
    expected = call(shape, dtype=dtype, region=region)
    x = call(shape, dtype=dtype, region=region, device="cuda")
    check_cuda_array(x, expected.shape, dtype)
    assert_same_bits(x, expected)


# ---------------------------------------------------------------------------
# CudaArray, device spellings, several devices, out of memory
# ---------------------------------------------------------------------------


@needs_cuda
def test_cuda_array_attributes_and_dlpack_arguments():
    x = fastinit.normal((37, 53), 0, dtype="bfloat16", device="cuda")
    check_cuda_array(x, (37, 53), "bfloat16")
    assert (x.ndim, x.size, x.nbytes, len(x)) == (2, 37 * 53, 37 * 53 * 2, 37)
    assert x.ptr != 0 and x.ptr % 256 == 0  # cudaMalloc's alignment
    assert "CudaArray" in repr(x) and "bfloat16" in repr(x)
    scalar = fastinit.normal((), 0, device="cuda")
    assert (scalar.ndim, scalar.size, scalar.nbytes) == (0, 1, 4)
    with pytest.raises(TypeError):
        len(scalar)
    with pytest.raises(BufferError):
        x.__dlpack__(dl_device=(1, 0))
    with pytest.raises(BufferError):
        x.__dlpack__(copy=True)
    with pytest.raises(TypeError, match="stream"):
        x.__dlpack__(stream="1")
    for stream in (0, -2):  # DLPack: 0 is no CUDA stream (1 is the legacy default one)
        with pytest.raises(BufferError, match="stream"):
            x.__dlpack__(stream=stream)
    x.__dlpack__(dl_device=x.__dlpack_device__(), copy=False)  # its own device: fine
    assert not hasattr(x, "__cuda_array_interface__")  # the protocol has no bfloat16
    y = fastinit.normal((37, 53), 0, device="cuda")
    interface = y.__cuda_array_interface__
    assert interface["shape"] == (37, 53) and interface["typestr"] == "<f4"
    assert interface["data"] == (y.ptr, False) and interface["strides"] is None
    assert interface["version"] == 3 and interface["stream"] == 1


@needs_cuda
def test_device_spellings_agree():
    expected = fastinit.glorot_normal((37, 53), 3)
    devices = ["cuda", "cuda:0"]
    if torch is not None:
        devices += [torch.device("cuda:0"), torch.device("cuda")]
    for device in devices:
        x = fastinit.glorot_normal((37, 53), 3, device=device)
        assert x.device == "cuda:0", device
        assert_same_bits(x, expected)


@needs_cuda
def test_missing_device_ordinal_is_a_value_error():
    for device in (f"cuda:{CUDA_STATUS.device_count}", "cuda:99", f"cuda:{2**70}"):
        if int(device[5:]) < CUDA_STATUS.device_count:
            continue
        for name in ("glorot_normal", "random_bits", "zeros", "orthogonal"):
            with pytest.raises(ValueError, match="device"):
                DEVICE_CALLS[name](device)


@needs_cuda
@pytest.mark.skipif(CUDA_STATUS.device_count < 2, reason="needs two CUDA devices")
def test_second_device():
    before = _core.query_current_device()
    x = fastinit.he_normal((37, 53), 2, device="cuda:1")
    check_cuda_array(x, (37, 53), "float32")
    assert x.device == "cuda:1"
    assert_same_bits(x, fastinit.he_normal((37, 53), 2))
    assert _core.query_current_device() == before  # the caller's device is left as it was


@needs_cuda
def test_out_of_device_memory_is_memory_error():
    for call in (
        lambda: fastinit.zeros((2**45,), dtype="float32", device="cuda"),  # 128 TiB
        lambda: fastinit.uniform((2**45,), 0, device="cuda"),
        lambda: fastinit.random_bits(2**45, 0, device="cuda"),
    ):
        with pytest.raises(MemoryError, match="allocate"):
            call()
    # The failed allocation left the context usable.
    assert_same_bits(
        fastinit.he_normal((64, 33), 1, device="cuda"), fastinit.he_normal((64, 33), 1)
    )


# ---------------------------------------------------------------------------
# DLPack and __cuda_array_interface__ out of a CudaArray
# ---------------------------------------------------------------------------


def _make(dtype, seed=5):
    if dtype == "uint32":
        return fastinit.random_bits(1961, seed, stream="bits", offset=3, device="cuda")
    return fastinit.normal((37, 53), seed, dtype=dtype, device="cuda")


@needs_cuda_torch
@pytest.mark.parametrize("dtype", [*DTYPES, "uint32"])
def test_torch_from_dlpack_is_zero_copy_and_keeps_the_memory(dtype):
    if TORCH_DTYPES[dtype] is None:
        pytest.skip(f"this torch has no {dtype}")
    x = _make(dtype)
    expected = x.to_numpy()
    t = torch.from_dlpack(x)
    assert tuple(t.shape) == x.shape and t.dtype == TORCH_DTYPES[dtype] and t.is_contiguous()
    assert t.device == torch.device("cuda", x.device_id)
    assert t.data_ptr() == x.ptr  # zero copy
    assert_same_bits(t, expected)
    ptr = x.ptr
    del x
    gc.collect()
    # The tensor's capsule owns the memory now: a new array cannot take its place.
    other = fastinit.zeros(
        expected.shape, dtype=dtype if dtype != "uint32" else "float32", device="cuda"
    )
    assert other.ptr != ptr
    assert_same_bits(t, expected)


@needs_cuda_torch
@pytest.mark.parametrize("max_version", [None, (1, 0), (1, 3), (0, 8)], ids=str)
def test_capsules_legacy_and_versioned(max_version):
    x = fastinit.he_uniform((64, 33), 3, dtype="bfloat16", device="cuda")
    expected = x.to_numpy()
    if max_version is None:
        capsule = x.__dlpack__()
    else:
        capsule = x.__dlpack__(max_version=max_version)
    versioned = max_version is not None and max_version[0] >= 1
    name = "dltensor_versioned" if versioned else "dltensor"
    assert repr(capsule).startswith(f'<capsule object "{name}"')
    t = torch.utils.dlpack.from_dlpack(capsule)
    assert repr(capsule).startswith(f'<capsule object "used_{name}"')  # the consumer took it
    assert t.data_ptr() == x.ptr and t.dtype == torch.bfloat16 and tuple(t.shape) == x.shape
    assert_same_bits(t, expected)
    # A capsule outlives its array (and every tensor) and still hands over valid memory.
    capsule = x.__dlpack__(max_version=max_version)
    ptr = x.ptr
    del t, x
    gc.collect()
    other = fastinit.zeros((64, 33), dtype="bfloat16", device="cuda")
    assert other.ptr != ptr  # the capsule holds the memory
    t = torch.utils.dlpack.from_dlpack(capsule)
    assert t.data_ptr() == ptr
    assert_same_bits(t, expected)


@needs_cuda_torch
def test_unconsumed_capsules_are_freed():
    gc.collect()  # earlier garbage must not be freed while this test measures
    torch.cuda.synchronize()
    free_before = torch.cuda.mem_get_info()[0]
    x = fastinit.zeros((64 * 2**20,), device="cuda")  # 256 MiB
    for max_version in (None, (1, 0)):
        capsule = x.__dlpack__(max_version=max_version)
        del capsule  # never consumed: dropped without error, the array stays valid
    gc.collect()
    assert not x.to_numpy()[:: 2**16].any()
    capsules = [x.__dlpack__(), x.__dlpack__(max_version=(1, 0))]
    del x
    gc.collect()
    assert torch.cuda.mem_get_info()[0] <= free_before - 192 * 2**20  # the capsules hold it
    del capsules
    gc.collect()
    assert torch.cuda.mem_get_info()[0] >= free_before - 64 * 2**20  # and gave it back


def _import_cupy():
    """CuPy with a device, or skip."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cupy = pytest.importorskip("cupy", exc_type=ImportError)
        try:
            count = cupy.cuda.runtime.getDeviceCount()
        except Exception as error:  # CuPy present, its CUDA not usable
            pytest.skip(f"CuPy has no device: {error}")
    if count < 1:
        pytest.skip("CuPy has no device")
    return cupy


@needs_cuda
@pytest.mark.parametrize("dtype", ["float32", "float16", "float64"])
def test_cupy_from_dlpack_and_cuda_array_interface(dtype):
    cupy = _import_cupy()
    x = fastinit.lecun_normal((37, 53), 11, dtype=dtype, device="cuda")
    expected = fastinit.lecun_normal((37, 53), 11, dtype=dtype)
    for view in (cupy.from_dlpack(x), cupy.asarray(x)):
        assert view.data.ptr == x.ptr and view.shape == x.shape and view.dtype == expected.dtype
        assert_same_bits(view, expected)


@needs_cuda
def test_bfloat16_has_no_cuda_array_interface():
    x = fastinit.normal((4, 4), 0, dtype="bfloat16", device="cuda")
    assert hasattr(x, "__dlpack__")
    assert not hasattr(x, "__cuda_array_interface__")
    with pytest.raises(AttributeError, match="bfloat16"):
        x.__cuda_array_interface__  # noqa: B018


@needs_cuda_torch
def test_torch_reads_a_cuda_array_on_its_own_stream():
    # The fill queues behind a busy legacy default stream; torch then reads on a
    # non-blocking stream, which nothing orders after the fill but the wait that
    # __dlpack__(stream=side) enqueues.
    shape = (2048, 1024)
    expected = fastinit.glorot_normal(shape, 2121, stream="stream.test")
    torch.cuda.synchronize()
    torch.cuda._sleep(50_000_000)  # on torch's default stream: the legacy default stream
    x = fastinit.glorot_normal(shape, 2121, stream="stream.test", device="cuda")
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        t = torch.from_dlpack(x)
        copy = t.clone()
        got = copy.cpu()
    assert_same_bits(got, expected)


# ---------------------------------------------------------------------------
# out=: filling torch and CuPy tensors in place
# ---------------------------------------------------------------------------


@needs_cuda_torch
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "name", ["glorot_uniform", "he_normal", "truncated_normal_asymmetric", "normal"]
)
def test_fill_torch_tensor_in_place(name, dtype):
    sample = SAMPLERS[name]
    shape = (257, 33)
    t = torch.full(shape, float("nan"), dtype=TORCH_DTYPES[dtype], device="cuda")
    ptr = t.data_ptr()
    assert sample(shape, 5, dtype=dtype, stream="w", out=t) is t
    assert t.data_ptr() == ptr
    assert_same_bits(t, sample(shape, 5, dtype=dtype, stream="w"))
    region = (slice(2, 250), slice(5, 32))
    part = torch.full((248, 27), float("nan"), dtype=TORCH_DTYPES[dtype], device="cuda")
    assert sample(shape, 5, dtype=dtype, stream="w", region=region, out=part) is part
    assert_same_bits(part, sample(shape, 5, dtype=dtype, stream="w", region=region))
    empty = torch.empty((0, 33), dtype=TORCH_DTYPES[dtype], device="cuda")
    assert sample((0, 33), 5, dtype=dtype, out=empty) is empty


@needs_cuda_torch
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("call", "shape", "region"), STRUCTURED_CASES)
def test_fill_torch_tensor_in_place_structured(call, shape, region, dtype):
    expected = call(shape, dtype=dtype, region=region)
    t = torch.full(expected.shape, float("nan"), dtype=TORCH_DTYPES[dtype], device="cuda")
    assert call(shape, dtype=dtype, region=region, out=t) is t
    assert_same_bits(t, expected)


MISALIGNED = {
    "range": ((1000,), None),
    "region": ((257, 33), (slice(2, 250), slice(5, 32))),
    "column": ((257, 33), (slice(None), slice(7, 8))),
    "box": ((13, 11, 17), (slice(2, 11), slice(3, 10), slice(5, 16))),
}


@needs_cuda_torch
@pytest.mark.parametrize("lead", [1, 3, 5])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", sorted(MISALIGNED))
def test_fill_misaligned_slice_of_a_torch_buffer(case, dtype, lead):
    # out starts `lead` elements into a buffer: contiguous, but not 16-byte aligned, so
    # the kernel's 16-byte stores must give way to element stores there.
    shape, region = MISALIGNED[case]
    expected = fastinit.he_uniform(shape, 31, dtype=dtype, region=region)
    n = expected.size
    buffer = torch.full((lead + n + 5,), 7.0, dtype=TORCH_DTYPES[dtype], device="cuda")
    out = buffer[lead : lead + n].view(expected.shape)
    assert out.is_contiguous() and out.data_ptr() % 16 != 0
    assert fastinit.he_uniform(shape, 31, dtype=dtype, region=region, out=out) is out
    assert_same_bits(out, expected)
    assert bool((buffer[:lead] == 7).all()) and bool((buffer[lead + n :] == 7).all())


@needs_cuda_torch
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_fill_row_pieces_like_the_whole(dtype):
    # Each piece is a row view of one tensor (starting at elements 33, 165, ...: unaligned).
    shape = (257, 33)
    whole = torch.full(shape, float("nan"), dtype=TORCH_DTYPES[dtype], device="cuda")
    cuts = [0, 1, 5, 6, 100, 255, 257]
    for lo, hi in zip(cuts, cuts[1:], strict=False):
        piece = whole[lo:hi]
        assert (
            fastinit.he_normal(shape, 12, dtype=dtype, region=(slice(lo, hi),), out=piece) is piece
        )
    assert_same_bits(whole, fastinit.he_normal(shape, 12, dtype=dtype))


@needs_cuda_torch
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_fill_parameter_that_requires_grad(dtype):
    shape = (64, 33)
    calls = {
        "glorot_normal": lambda **kw: fastinit.glorot_normal(shape, 4, dtype=dtype, **kw),
        "orthogonal": lambda **kw: fastinit.orthogonal(shape, 4, dtype=dtype, **kw),
        "ones": lambda **kw: fastinit.ones(shape, dtype=dtype, **kw),
    }
    for name, call in calls.items():
        p = torch.nn.Parameter(torch.zeros(shape, dtype=TORCH_DTYPES[dtype], device="cuda"))
        assert call(out=p) is p, name
        assert p.requires_grad and p.grad is None
        assert_same_bits(p, call())


@needs_cuda_torch
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_fill_on_torch_current_stream(dtype):
    # The side stream is busy, then poisons the tensor: a fill on any other stream
    # would land first and be overwritten.
    shape = (512, 1024)
    expected = fastinit.he_normal(shape, 8, dtype=dtype)
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        t = torch.empty(shape, dtype=TORCH_DTYPES[dtype], device="cuda")
        torch.cuda._sleep(50_000_000)
        t.fill_(float("nan"))
        assert fastinit.he_normal(shape, 8, dtype=dtype, out=t) is t
        got = t.cpu()  # on the side stream, after the fill
        assert torch.cuda.current_stream() == side
    assert_same_bits(got, expected)
    # Structured fills and orthogonal's upload run on that stream as well.
    with torch.cuda.stream(side):
        torch.cuda._sleep(50_000_000)
        t.fill_(float("nan"))
        fastinit.orthogonal(shape, 8, dtype=dtype, out=t)
        got = t.cpu()
    assert_same_bits(got, fastinit.orthogonal(shape, 8, dtype=dtype))
    with torch.cuda.stream(side):
        torch.cuda._sleep(50_000_000)
        t.fill_(float("nan"))
        fastinit.identity(shape, 0.5, dtype=dtype, out=t)
        got = t.cpu()
    assert_same_bits(got, fastinit.identity(shape, 0.5, dtype=dtype))


@needs_cuda
@pytest.mark.parametrize("dtype", ["float32", "float16", "float64"])
def test_fill_cupy_array_in_place(dtype):
    cupy = _import_cupy()
    shape = (257, 33)
    out = cupy.asarray(np.full(shape, np.nan, dtype=dtype))
    assert fastinit.he_uniform(shape, 6, dtype=dtype, out=out) is out
    assert_same_bits(out, fastinit.he_uniform(shape, 6, dtype=dtype))
    with cupy.cuda.Stream(non_blocking=True):
        out = cupy.asarray(np.full(shape, np.nan, dtype=dtype))
        assert fastinit.normal(shape, 6, dtype=dtype, out=out) is out
        got = cupy.asnumpy(out)
    assert_same_bits(got, fastinit.normal(shape, 6, dtype=dtype))


@needs_cuda
@pytest.mark.parametrize("dtype", DTYPES)
def test_fill_cuda_array_in_place(dtype):
    # A producer whose stream fastinit does not know (its own CudaArray here): filled
    # on the legacy default stream and waited for before the call returns.
    shape = (257, 33)
    x = fastinit.zeros(shape, dtype=dtype, device="cuda")
    ptr = x.ptr
    assert fastinit.he_normal(shape, 3, dtype=dtype, out=x) is x
    assert x.ptr == ptr
    assert_same_bits(x, fastinit.he_normal(shape, 3, dtype=dtype))
    region = (slice(2, 250), slice(5, 32))
    part = fastinit.ones((248, 27), dtype=dtype, device="cuda")
    assert fastinit.uniform(shape, 3, dtype=dtype, region=region, out=part) is part
    assert_same_bits(part, fastinit.uniform(shape, 3, dtype=dtype, region=region))
    assert fastinit.identity(shape, 0.5, dtype=dtype, out=x) is x
    assert_same_bits(x, fastinit.identity(shape, 0.5, dtype=dtype))
    assert fastinit.orthogonal(shape, 3, dtype=dtype, out=x) is x
    assert_same_bits(x, fastinit.orthogonal(shape, 3, dtype=dtype))
    words = fastinit.random_bits(37 * 53, 0, device="cuda")
    before = words.to_numpy()
    with pytest.raises(ValueError, match="out has dtype uint32"):
        fastinit.he_normal((37 * 53,), 3, dtype=dtype, fan_in=5, fan_out=5, out=words)
    assert_same_bits(words, before)


# out= that must be refused: (the tensor's shape and dtype, how out is taken from it,
# the shape and options of the call, what the message says besides "out").
OUT_ERRORS = {
    "wrong_dtype": ((37, 53), "float32", None, (37, 53), {"dtype": "bfloat16"}, "dtype"),
    "wrong_shape": ((37, 53), "float32", None, (53, 37), {}, "shape"),
    "transposed": ((37, 53), "float32", "T", (53, 37), {}, "C-contiguous"),
    "strided": ((37, 53), "float32", "every_other_column", (37, 27), {}, "C-contiguous"),
    "device_cpu": ((37, 53), "float32", None, (37, 53), {"device": "cpu"}, "'cpu'"),
    "int64": ((37, 53), "int64", None, (37, 53), {}, "DLPack type"),
    "int32": ((37, 53), "int32", None, (37, 53), {}, "DLPack type"),
}


@needs_cuda_torch
@pytest.mark.parametrize("case", sorted(OUT_ERRORS))
@pytest.mark.parametrize("name", sorted(OUT_CALLS))
def test_bad_cuda_out_is_refused_and_left_alone(name, case):
    base_shape, base_dtype, view, shape, options, words = OUT_ERRORS[case]
    base = torch.full(base_shape, 7, dtype=getattr(torch, base_dtype), device="cuda")
    out = {None: base, "T": base.T, "every_other_column": base[:, ::2]}[view]
    before = base.clone()
    with pytest.raises(ValueError, match="out") as raised:
        OUT_CALLS[name](shape, out=out, **options)
    assert words in str(raised.value)
    torch.cuda.synchronize()
    assert torch.equal(base, before)


@needs_cuda
@pytest.mark.parametrize("name", sorted(OUT_CALLS))
def test_host_out_with_device_cuda_is_refused(name):
    out = np.full((37, 53), 7.0, np.float32)
    with pytest.raises(ValueError, match="out is a NumPy array"):
        OUT_CALLS[name]((37, 53), out=out, device="cuda")
    assert (out == 7).all()
    with pytest.raises(TypeError, match="out must be"):
        OUT_CALLS[name]((2, 2), out=[[0.0, 0.0], [0.0, 0.0]], device="cuda")


@needs_cuda_torch
def test_status_agrees_with_torch():
    assert CUDA_STATUS.device_count == torch.cuda.device_count()


# ---------------------------------------------------------------------------
# More than 2^32 elements in one fill
# ---------------------------------------------------------------------------

BIG = 2**32 + 5


def _skip_without_free_memory(gib):
    gc.collect()
    torch.cuda.empty_cache()
    free = torch.cuda.mem_get_info()[0]
    if free < gib * 2**30:
        pytest.skip(f"needs {gib} GiB of free device memory, {free / 2**30:.1f} GiB free")


@needs_cuda_torch
def test_more_than_2_32_elements_bfloat16():
    _skip_without_free_memory(20)
    options = {"low": -2.0, "high": 2.0, "dtype": "bfloat16", "stream": "big"}
    x = fastinit.uniform((BIG,), 77, **options, device="cuda")  # 8 GiB
    check_cuda_array(x, (BIG,), "bfloat16")
    t = torch.from_dlpack(x)
    for lo, hi in ((0, 16), (2**31 - 3, 2**31 + 5), (2**32 - 3, 2**32 + 5), (BIG - 16, BIG)):
        expected = fastinit.uniform((BIG,), 77, **options, region=(slice(lo, hi),))
        assert_same_bits(t[lo:hi], expected)  # only the window leaves the device
    del t, x
    gc.collect()


@needs_cuda_torch
def test_more_than_2_32_random_bits_across_the_high_block_word():
    _skip_without_free_memory(20)
    offset = 2**34 - 2**31 + 1  # element 2^34 (block 2^32) lies at index 2^31 - 1
    x = fastinit.random_bits(BIG, 9, stream=2**64 - 1, offset=offset, device="cuda")  # 16 GiB
    check_cuda_array(x, (BIG,), "uint32")
    t = torch.from_dlpack(x)
    for lo, hi in ((0, 16), (2**31 - 6, 2**31 + 5), (2**32 - 3, 2**32 + 5), (BIG - 16, BIG)):
        expected = fastinit.random_bits(hi - lo, 9, stream=2**64 - 1, offset=offset + lo)
        assert_same_bits(t[lo:hi], expected)
    del t, x
    gc.collect()
