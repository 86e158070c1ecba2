"""DLPack on the host, both ways.

In: `out=` takes any CPU tensor that speaks DLPack (a torch tensor, a bare object with
only __dlpack__ / __dlpack_device__, fastinit.as_dlpack of a NumPy array) and fills
it in place, without a copy, with exactly the bits the returned-array path gives; the
call returns that very object. Bad targets raise before anything is written.

Out: fastinit.as_dlpack(a) hands a NumPy array (bfloat16 included) to torch or NumPy
without a copy, keeps it alive while a consumer holds it and lets it go afterwards.
"""

from __future__ import annotations

import gc
import weakref

import fastinit as fi
import numpy as np
import pytest
from _shared import DTYPES, NUMPY_DTYPES, torch_dtypes

torch = pytest.importorskip("torch")

SEED = 20240613
TORCH_DTYPES = torch_dtypes()
POISON = 0xA5  # byte pattern of every target before a fill
CONV = (6, 4, 3, 3)
MATRIX = (7, 9)


# ---------------------------------------------------------------------------
# Producers
# ---------------------------------------------------------------------------


class DLPackOnly:
    """A host array seen through the DLPack protocol alone (not an ndarray, no buffer
    protocol, no __array__): the generic producer path."""

    __slots__ = ("_array",)

    def __init__(self, array):
        self._array = array

    def __dlpack__(self, **kwargs):
        return self._array.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self._array.__dlpack_device__()


class LegacyDLPack(DLPackOnly):
    """A producer from before DLPack 1.0: __dlpack__ takes no max_version."""

    __slots__ = ()

    def __dlpack__(self, stream=None):
        return self._array.__dlpack__(stream=stream)


class ForeignDevice:
    """Reports a DLPack device fastinit does not write (14: oneAPI); must not be exported."""

    def __dlpack_device__(self):
        return (14, 0)

    def __dlpack__(self, **kwargs):
        raise AssertionError("a tensor on an unsupported device must not be exported")


def bits(x):
    """A writable NumPy unsigned-integer view of the memory of x (ndarray or CPU tensor)."""
    if isinstance(x, torch.Tensor):
        signed = {2: torch.int16, 4: torch.int32, 8: torch.int64}[x.element_size()]
        x = x.view(signed).numpy()
    return x.view(f"u{x.dtype.itemsize}")


def poison(x):
    view = bits(x)
    view[...] = int.from_bytes(bytes([POISON]) * view.dtype.itemsize, "little")
    return view


def is_poison(view):
    return bool(np.all(view.view(np.uint8) == POISON))


def numpy_array(shape, dtype):
    array = np.empty(shape, dtype=NUMPY_DTYPES[dtype])
    poison(array)
    return array


# target kind -> (shape, dtype) -> (object passed as out, bits view of its memory)
def _torch_target(shape, dtype):
    t = torch.empty(shape, dtype=TORCH_DTYPES[dtype])
    return t, poison(t)


def _wrapped(wrapper):
    def make(shape, dtype):
        array = numpy_array(shape, dtype)
        return wrapper(array), bits(array)

    return make


TARGETS = {
    "torch": _torch_target,
    "dlpack-only": _wrapped(DLPackOnly),
    "legacy-dlpack": _wrapped(LegacyDLPack),
    "as_dlpack": _wrapped(fi.as_dlpack),
}
# NumPy cannot export ml_dtypes.bfloat16 itself: that is what fi.as_dlpack is for.
NUMPY_EXPORTS = ("dlpack-only", "legacy-dlpack")

# sampler name -> (shape, a region of it, fill(shape, dtype, **kw))
SAMPLERS = {
    "glorot_normal": (CONV, lambda s, d, **kw: fi.glorot_normal(s, SEED, dtype=d, **kw)),
    "he_uniform": (CONV, lambda s, d, **kw: fi.he_uniform(s, SEED, dtype=d, stream="w", **kw)),
    "truncated_normal": (
        CONV,
        lambda s, d, **kw: fi.truncated_normal(
            s, SEED, mean=0.1, std=0.5, lower=-1.5, upper=2.0, dtype=d, **kw
        ),
    ),
    "normal": (CONV, lambda s, d, **kw: fi.normal(s, SEED, mean=-0.2, std=0.3, dtype=d, **kw)),
    "uniform": (CONV, lambda s, d, **kw: fi.uniform(s, SEED, low=-0.5, high=2.0, dtype=d, **kw)),
    "constant": (CONV, lambda s, d, **kw: fi.constant(s, 0.37, dtype=d, **kw)),
    "identity": (MATRIX, lambda s, d, **kw: fi.identity(s, 1.5, dtype=d, **kw)),
    "dirac": (CONV, lambda s, d, **kw: fi.dirac(s, 2, gain=0.5, dtype=d, **kw)),
    "orthogonal": (CONV, lambda s, d, **kw: fi.orthogonal(s, SEED, 1.2, dtype=d, **kw)),
}
REGIONS = {
    CONV: (slice(1, 5), slice(1, 3), slice(1, None)),
    MATRIX: (slice(2, 6), slice(1, 8)),
}


def extent(shape, region):
    if region is None:
        return shape
    return tuple(
        len(range(*(region[i] if i < len(region) else slice(None)).indices(dim)))
        for i, dim in enumerate(shape)
    )


FILL_CASES = [
    pytest.param(name, dtype, kind, id=f"{name}-{dtype}-{kind}")
    for name in SAMPLERS
    for dtype in DTYPES
    for kind in TARGETS
    if not (dtype == "bfloat16" and kind in NUMPY_EXPORTS)
]


# ---------------------------------------------------------------------------
# In-place fills through DLPack
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("with_region", [False, True], ids=["whole", "region"])
@pytest.mark.parametrize(("name", "dtype", "kind"), FILL_CASES)
def test_dlpack_fill_equals_returned_array(name, dtype, kind, with_region):
    shape, fill = SAMPLERS[name]
    region = REGIONS[shape] if with_region else None
    options = {} if region is None else {"region": region}
    expected = fill(shape, dtype, **options)
    assert expected.shape == extent(shape, region)
    assert expected.dtype == NUMPY_DTYPES[dtype]

    out, memory = TARGETS[kind](expected.shape, dtype)
    result = fill(shape, dtype, out=out, **options)
    assert result is out
    np.testing.assert_array_equal(memory, bits(expected))


def test_fills_torch_bfloat16_tensor_with_bfloat16_bits():
    # The torch tensor is read back through torch itself, not through our bits() view.
    t = torch.empty(CONV, dtype=torch.bfloat16)
    fi.normal(CONV, SEED, std=0.3, dtype="bfloat16", out=t)
    expected = fi.normal(CONV, SEED, std=0.3, dtype="bfloat16")
    assert torch.equal(t.float(), torch.from_numpy(expected.astype(np.float32)))


def test_dlpack_fill_of_a_tensor_that_requires_grad():
    # torch refuses to export a tensor that needs grad; the fill still reaches its storage.
    p = torch.nn.Parameter(torch.zeros(CONV))
    assert fi.normal(CONV, SEED, out=p) is p
    np.testing.assert_array_equal(p.detach().numpy(), fi.normal(CONV, SEED))
    assert p.requires_grad and p.grad_fn is None


# ---------------------------------------------------------------------------
# Zero copy
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["normal", "constant", "orthogonal"])
def test_torch_fill_writes_the_slice_in_place(name, dtype):
    shape, fill = SAMPLERS[name]
    size = int(np.prod(shape))
    buf = torch.empty(5 + size + 7, dtype=TORCH_DTYPES[dtype])
    memory = poison(buf)
    storage = buf.untyped_storage().data_ptr()
    view = buf[5 : 5 + size].view(shape)
    pointer = view.data_ptr()

    assert fill(shape, dtype, out=view) is view
    assert view.data_ptr() == pointer
    assert view.untyped_storage().data_ptr() == storage == buf.untyped_storage().data_ptr()
    assert view._base is buf
    expected = bits(fill(shape, dtype)).ravel()
    np.testing.assert_array_equal(memory[5 : 5 + size], expected)
    assert is_poison(memory[:5]) and is_poison(memory[5 + size :])


@pytest.mark.parametrize("dtype", DTYPES)
def test_as_dlpack_fill_writes_the_numpy_slice_in_place(dtype):
    shape, fill = SAMPLERS["he_uniform"]
    size = int(np.prod(shape))
    buf = numpy_array(5 + size + 7, dtype)
    view = buf[5 : 5 + size].reshape(shape)
    assert np.shares_memory(view, buf)
    out = fi.as_dlpack(view)
    assert fill(shape, dtype, out=out) is out
    np.testing.assert_array_equal(bits(buf)[5 : 5 + size], bits(fill(shape, dtype)).ravel())
    assert is_poison(bits(buf)[:5]) and is_poison(bits(buf)[5 + size :])


def test_non_contiguous_base_of_a_contiguous_row_is_fine():
    # A row of a matrix is contiguous even though the matrix is bigger: filled in place.
    base = torch.empty(4, 9)
    memory = poison(base)
    fi.uniform((9,), SEED, out=base[2])
    np.testing.assert_array_equal(memory[2], bits(fi.uniform((9,), SEED)))
    assert is_poison(memory[[0, 1, 3]])


EMPTY_SHAPES = [(0,), (0, 4), (4, 0), (2, 0, 3)]
EMPTY_PRODUCERS = {
    "torch": lambda shape: torch.empty(shape),
    "as_dlpack": lambda shape: fi.as_dlpack(np.empty(shape, dtype=np.float32)),
    "dlpack-only": lambda shape: DLPackOnly(np.empty(shape, dtype=np.float32)),
}
# Any strides describe an empty tensor; these producers export ones that are not the
# compact row-major strides (torch: (4, 0) -> (1, 1); NumPy: all zeros).
EMPTY_CASES = [
    pytest.param(kind, shape, id=f"{kind}-{shape}")
    for kind in EMPTY_PRODUCERS
    for shape in EMPTY_SHAPES
]


@pytest.mark.parametrize(("kind", "shape"), EMPTY_CASES)
def test_empty_tensor_is_a_valid_out(kind, shape):
    out = EMPTY_PRODUCERS[kind](shape)
    assert fi.normal(shape, SEED, out=out) is out
    assert fi.constant(shape, 1.0, out=out) is out
    if len(shape) >= 2:
        assert fi.orthogonal(shape, SEED, out=out) is out


# ---------------------------------------------------------------------------
# Bad targets: the exception, a message naming `out`, and nothing written
# ---------------------------------------------------------------------------


def _torch_bad(make_base, view):
    def factory():
        base = make_base()
        return view(base), poison(base)

    return factory


def _numpy_bad(make_array, wrapper):
    def factory():
        array = make_array()
        if array.flags.writeable:
            poison(array)
        return wrapper(array), array.view(f"u{array.dtype.itemsize}")

    return factory


def _read_only(dtype=np.float32):
    def make():
        array = np.empty(MATRIX, dtype=dtype)
        poison(array)
        array.flags.writeable = False
        return array

    return make


def _ones(dtype):
    return lambda: np.ones(MATRIX, dtype=dtype)


# id -> (factory () -> (out, bits of its memory or None), exception, message)
BAD_OUTS = {
    "torch-transposed": (
        _torch_bad(lambda: torch.empty(MATRIX[::-1]), lambda t: t.T),
        ValueError,
        r"^out must be C-contiguous",
    ),
    "torch-strided": (
        _torch_bad(lambda: torch.empty(MATRIX[0], 2 * MATRIX[1]), lambda t: t[:, ::2]),
        ValueError,
        r"^out must be C-contiguous",
    ),
    "torch-float64": (
        _torch_bad(lambda: torch.empty(MATRIX, dtype=torch.float64), lambda t: t),
        ValueError,
        r"^out has dtype float64, but dtype is float32",
    ),
    "torch-bfloat16": (
        _torch_bad(lambda: torch.empty(MATRIX, dtype=torch.bfloat16), lambda t: t),
        ValueError,
        r"^out has dtype bfloat16, but dtype is float32",
    ),
    "torch-shape": (
        _torch_bad(lambda: torch.empty(MATRIX[::-1]), lambda t: t),
        ValueError,
        r"^out has shape \(9, 7\), expected \(7, 9\)",
    ),
    "torch-flat": (
        _torch_bad(lambda: torch.empty(63), lambda t: t),
        ValueError,
        r"^out has shape \(63,\), expected \(7, 9\)",
    ),
    "torch-int64": (
        _torch_bad(lambda: torch.empty(MATRIX, dtype=torch.int64), lambda t: t),
        ValueError,
        r"^out has DLPack type \(code 0, 64 bits, 1 lanes\)",
    ),
    "torch-int32": (
        _torch_bad(lambda: torch.empty(MATRIX, dtype=torch.int32), lambda t: t),
        ValueError,
        r"^out has DLPack type \(code 0, 32 bits",
    ),
    "dlpack-only-int32": (
        _numpy_bad(_ones(np.int32), DLPackOnly),
        ValueError,
        r"^out has DLPack type \(code 0, 32 bits",
    ),
    "dlpack-only-float64": (
        _numpy_bad(_ones(np.float64), DLPackOnly),
        ValueError,
        r"^out has dtype float64",
    ),
    "dlpack-only-read-only": (
        _numpy_bad(_read_only(), DLPackOnly),
        ValueError,
        r"^out is read-only",
    ),
    "as_dlpack-read-only": (
        _numpy_bad(_read_only(), fi.as_dlpack),
        ValueError,
        r"^out is read-only",
    ),
    # A producer without max_version cannot flag read-only memory: NumPy refuses the export
    # (BufferError), which fastinit reports as a bad `out`.
    "legacy-dlpack-read-only": (
        _numpy_bad(_read_only(), LegacyDLPack),
        ValueError,
        r"^out: LegacyDLPack.__dlpack__\(\) refused to export it: BufferError: .*(?i:read-?only)",
    ),
    "foreign-device": (
        lambda: (ForeignDevice(), None),
        ValueError,
        r"^out is on DLPack device type 14",
    ),
    "object": (lambda: (object(), None), TypeError, r"^out must be a NumPy array"),
    "list": (lambda: ([[0.0] * 9] * 7, None), TypeError, r"^out must be a NumPy array"),
}
BAD_SAMPLERS = {
    "normal": lambda **kw: fi.normal(MATRIX, SEED, **kw),
    "glorot_uniform": lambda **kw: fi.glorot_uniform(MATRIX, SEED, **kw),
    "constant": lambda **kw: fi.constant(MATRIX, 2.0, **kw),
    "identity": lambda **kw: fi.identity(MATRIX, **kw),
    "orthogonal": lambda **kw: fi.orthogonal(MATRIX, SEED, **kw),
}


@pytest.mark.parametrize("sampler", sorted(BAD_SAMPLERS))
@pytest.mark.parametrize("case", sorted(BAD_OUTS))
def test_bad_out_raises_and_writes_nothing(case, sampler):
    factory, exception, message = BAD_OUTS[case]
    out, memory = factory()
    before = None if memory is None else memory.copy()
    with pytest.raises(exception, match=message):
        BAD_SAMPLERS[sampler](out=out)
    if memory is not None:
        np.testing.assert_array_equal(memory, before)
        assert is_poison(memory)


def test_numpy_itself_refuses_legacy_export_of_read_only_arrays():
    # Why fastinit asks for max_version=(1, 0) first: only a versioned capsule can carry
    # the read-only flag, and NumPy refuses the unversioned export of such an array.
    array = _read_only()()
    with pytest.raises(BufferError, match=r"(?i)read-?only"):
        array.__dlpack__()
    assert "dltensor_versioned" in repr(array.__dlpack__(max_version=(1, 0)))


def test_region_with_an_out_of_the_full_shape_is_rejected():
    shape, fill = SAMPLERS["normal"]
    out = torch.empty(shape)
    memory = poison(out)
    with pytest.raises(ValueError, match=r"^out has shape"):
        fill(shape, "float32", out=out, region=REGIONS[shape])
    assert is_poison(memory)


def test_cpu_out_with_device_cpu_is_filled():
    out = torch.empty(MATRIX)
    assert fi.normal(MATRIX, SEED, out=out, device="cpu") is out
    np.testing.assert_array_equal(out.numpy(), fi.normal(MATRIX, SEED))


# ---------------------------------------------------------------------------
# Export: fastinit.as_dlpack
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_as_dlpack_to_torch_shares_memory(dtype):
    a = fi.normal(CONV, SEED, dtype=dtype)
    expected = a.copy()
    t = torch.from_dlpack(fi.as_dlpack(a))
    assert t.dtype == TORCH_DTYPES[dtype]
    assert tuple(t.shape) == a.shape and t.is_contiguous() and t.device.type == "cpu"
    assert t.data_ptr() == a.ctypes.data
    np.testing.assert_array_equal(bits(t), bits(expected))
    # Writes go both ways.
    t[0, 0, 0, 0] = 7.0
    assert float(a[0, 0, 0, 0]) == 7.0
    a[-1, -1, -1, -1] = -3.0
    assert float(t[-1, -1, -1, -1]) == -3.0


def test_as_dlpack_keeps_the_array_alive_while_the_tensor_lives():
    tensors, expected, alive = {}, {}, {}
    for dtype in DTYPES:
        a = fi.uniform(CONV, SEED, dtype=dtype)
        expected[dtype] = bits(a).copy()
        alive[dtype] = weakref.ref(a)
        tensors[dtype] = torch.from_dlpack(fi.as_dlpack(a))
        del a
    gc.collect()
    # Fresh allocations of the same size do not land on the exported memory.
    scratch = [np.full(CONV, -1.0, dtype=NUMPY_DTYPES[dtype]) for dtype in DTYPES * 4]
    for dtype in DTYPES:
        assert alive[dtype]() is not None
        np.testing.assert_array_equal(bits(tensors[dtype]), expected[dtype])
    del tensors, scratch
    gc.collect()
    for dtype in DTYPES:
        assert alive[dtype]() is None, dtype  # freed once the consumer lets go


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("versioned", [True, False], ids=["versioned", "legacy"])
def test_as_dlpack_capsules_are_consumable(dtype, versioned):
    a = fi.normal(MATRIX, SEED, dtype=dtype)
    options = {"max_version": (1, 0)} if versioned else {}
    capsule = fi.as_dlpack(a).__dlpack__(**options)
    name = "dltensor_versioned" if versioned else "dltensor"
    assert f'"{name}"' in repr(capsule)
    t = torch.utils.dlpack.from_dlpack(capsule)
    assert t.dtype == TORCH_DTYPES[dtype] and t.data_ptr() == a.ctypes.data
    np.testing.assert_array_equal(bits(t), bits(a))


def test_unconsumed_capsules_free_their_arrays():
    # An error in a capsule destructor would surface as an unraisable-exception
    # warning, which this suite turns into a failure.
    capsules, alive = [], []
    for options in ({"max_version": (1, 0)}, {}):
        for dtype in DTYPES:
            a = fi.normal(MATRIX, SEED, dtype=dtype)
            alive.append(weakref.ref(a))
            capsules.append(fi.as_dlpack(a).__dlpack__(**options))
            del a
    gc.collect()
    assert all(ref() is not None for ref in alive)
    del capsules
    gc.collect()
    assert all(ref() is None for ref in alive)


def test_as_dlpack_of_read_only_array():
    a = fi.normal(MATRIX, SEED)
    a.flags.writeable = False
    exporter = fi.as_dlpack(a)
    with pytest.raises(BufferError, match="read-only"):
        exporter.__dlpack__()
    alive = weakref.ref(a)
    capsule = exporter.__dlpack__(max_version=(1, 0))
    assert "dltensor_versioned" in repr(capsule)
    del a, exporter
    assert alive() is not None
    del capsule
    assert alive() is None


def test_as_dlpack_export_options():
    exporter = fi.as_dlpack(fi.normal(MATRIX, SEED))
    assert exporter.__dlpack_device__() == (1, 0)
    for stream in (None, -1):
        torch.utils.dlpack.from_dlpack(exporter.__dlpack__(stream=stream))
    with pytest.raises(BufferError, match="stream"):
        exporter.__dlpack__(stream=1)
    with pytest.raises(BufferError, match="device"):
        exporter.__dlpack__(dl_device=(2, 0))
    with pytest.raises(BufferError, match="copy"):
        exporter.__dlpack__(copy=True)
    exporter.__dlpack__(dl_device=(1, 0), copy=False)


@pytest.mark.parametrize(
    ("array", "exception", "message"),
    [
        (np.zeros((6, 8), dtype=np.float32)[:, ::2], ValueError, "C-contiguous"),
        (np.asfortranarray(np.zeros((6, 8), dtype=np.float32)), ValueError, "C-contiguous"),
        (np.zeros((6, 8), dtype=np.int64), ValueError, "dtype int64"),
        (np.zeros((6, 8), dtype=np.bool_), ValueError, "dtype bool"),
        ([1.0, 2.0], TypeError, "NumPy array"),
        (torch.zeros(3), TypeError, "NumPy array"),
    ],
    ids=["strided", "fortran", "int64", "bool", "list", "tensor"],
)
def test_as_dlpack_rejects(array, exception, message):
    with pytest.raises(exception, match=message):
        fi.as_dlpack(array)


def test_numpy_consumes_as_dlpack():
    a = fi.normal(MATRIX, SEED)
    b = np.from_dlpack(fi.as_dlpack(a))
    assert b.dtype == np.float32 and b.shape == MATRIX
    assert np.shares_memory(a, b)
    np.testing.assert_array_equal(b, a)


def test_round_trip_torch_fill_of_an_exported_bfloat16_array():
    # A NumPy bfloat16 array exported to torch and filled through the torch tensor.
    a = numpy_array(CONV, "bfloat16")
    t = torch.from_dlpack(fi.as_dlpack(a))
    assert fi.he_uniform(CONV, SEED, dtype="bfloat16", out=t) is t
    np.testing.assert_array_equal(bits(a), bits(fi.he_uniform(CONV, SEED, dtype="bfloat16")))
