"""Hostile torch and DLPack inputs (issue 11: A10, A11, A12).

- `out=` a torch tensor whose memory is not its values as a dense array (sparse,
  quantized, conjugate/negative-bit views, meta, MKL-DNN, nested) is a ValueError naming
  `out`, raised before anything is written.
- `out=` a hostile DLPack producer (methods that raise, return garbage or a capsule that
  is used, misnamed or lies about its tensor; half the protocol) is a TypeError or
  ValueError naming `out`: never BufferError, AttributeError or SystemError.
- fastinit.torch on odd tensors (expanded, overlapping, sparse, negated views...) does
  what torch.nn.init does: constant_/ones_/zeros_/eye_/dirac_ give torch's outcome (the
  same values, or the same exception type); the random drop-ins succeed with fastinit's
  bits where they can, and otherwise refuse with an exception that is torch's type and
  names `tensor`, before drawing from the generator.
- Hostile arguments to fastinit.torch (calculate_gain('leaky_relu', 1e200), gain=1e200,
  a=nan, ...) raise what torch raises or a ValueError/TypeError/OverflowError naming the
  argument; no call returns or writes inf or NaN.
"""

from __future__ import annotations

import ctypes
import math
import re
import warnings

import fastinit as fi
import numpy as np
import pytest

torch = pytest.importorskip("torch")
ft = pytest.importorskip("fastinit.torch")
torch_init = torch.nn.init

pytestmark = [
    pytest.mark.filterwarnings("ignore:Sparse (CSR|BSR) tensor support is in beta:UserWarning"),
    pytest.mark.filterwarnings(
        "ignore:The PyTorch API of nested tensors is in prototype:UserWarning"
    ),
    pytest.mark.filterwarnings("ignore:.*quantize_per_tensor.*deprecated:UserWarning"),
]

SEED = 20261128
SHAPE = (4, 3)
REFUSALS = (TypeError, ValueError)


def quantized(shape):
    return torch.quantize_per_tensor(torch.ones(shape), 0.1, 0, torch.qint8)


# ---------------------------------------------------------------------------
# A10: torch tensors that are not dense memory, as out=
# ---------------------------------------------------------------------------

# id -> (make(shape) -> tensor, message after "^out ")
ODD_OUTS = {
    "sparse_coo": (lambda s: torch.ones(s).to_sparse(), r"has layout torch\.sparse_coo"),
    "sparse_csr": (lambda s: torch.ones(s).to_sparse_csr(), r"has layout torch\.sparse_csr"),
    "sparse_csc": (lambda s: torch.ones(s).to_sparse_csc(), r"has layout torch\.sparse_csc"),
    "sparse_bsr": (lambda s: torch.ones(s).to_sparse_bsr((2, 1)), r"has layout torch\.sparse_bsr"),
    "mkldnn": (lambda s: torch.ones(s).to_mkldnn(), r"has layout torch\._mkldnn"),
    "quantized": (quantized, r"is a quantized tensor \(torch\.qint8\)"),
    "negative-bit": (lambda s: torch._neg_view(torch.ones(s)), r"is a view with the negative bit"),
    "conjugate-bit": (
        lambda s: torch.ones(s, dtype=torch.complex64).conj(),
        r"is a view with the conjugate bit",
    ),
    "meta": (lambda s: torch.empty(s, device="meta"), r"is on torch device meta"),
}
OUT_SAMPLERS = {
    "normal": lambda out: fi.normal(SHAPE, SEED, out=out),
    "uniform": lambda out: fi.uniform(SHAPE, SEED, out=out),
    "he_uniform": lambda out: fi.he_uniform(SHAPE, SEED, out=out),
    "constant": lambda out: fi.constant(SHAPE, 2.0, out=out),
    "orthogonal": lambda out: fi.orthogonal(SHAPE, SEED, out=out),
}


def snapshot(t):
    """The values a tensor shows, as a dense CPU tensor (None for meta)."""
    if t.device.type == "meta":
        return None
    if t.is_quantized:
        return t.int_repr().clone()
    if t.layout != torch.strided:
        return t.to_dense().clone()
    return t.resolve_conj().resolve_neg().clone()


def test_sparse_out_reproducer_is_a_value_error_naming_out():
    out = torch.zeros(4, 4).to_sparse()
    with pytest.raises(ValueError, match=r"^out has layout torch\.sparse_coo; .*dense"):
        fi.normal((4, 4), 0, out=out)
    assert out.is_sparse and out._nnz() == 0


@pytest.mark.parametrize("sampler", sorted(OUT_SAMPLERS))
@pytest.mark.parametrize("kind", sorted(ODD_OUTS))
def test_odd_torch_out_is_refused_before_writing(kind, sampler):
    make, message = ODD_OUTS[kind]
    out = make(SHAPE)
    before = snapshot(out)
    with pytest.raises(ValueError, match=rf"^out {message}"):
        OUT_SAMPLERS[sampler](out)
    if before is not None:
        assert torch.equal(snapshot(out), before)


def test_negative_bit_out_would_have_read_back_negated():
    # Why a negated view is refused: its memory holds -x for x, so writing the memory
    # directly shows every value negated. resolve_neg() gives a tensor that can be filled.
    view = torch._neg_view(torch.zeros(SHAPE))
    assert view.is_neg()
    with pytest.raises(ValueError, match=r"resolve_neg\(\)"):
        fi.uniform(SHAPE, SEED, low=0.5, high=1.0, out=view)
    plain = view.resolve_neg()
    fi.uniform(SHAPE, SEED, low=0.5, high=1.0, out=plain)
    assert torch.equal(plain, torch.from_numpy(fi.uniform(SHAPE, SEED, low=0.5, high=1.0)))


def test_nested_out_is_refused():
    out = torch.nested.nested_tensor([torch.ones(3), torch.ones(3)])
    with pytest.raises(ValueError, match=r"^out has layout nested"):
        fi.normal((2, 3), SEED, out=out)


def test_out_that_requires_grad_is_filled_like_torch_nn_init_under_no_grad():
    # torch.nn.init fills a tensor that requires grad (a leaf or not) under no_grad;
    # fastinit fills its storage the same way and leaves the autograd flags alone.
    leaf = torch.zeros(SHAPE, requires_grad=True)
    non_leaf = leaf * 2
    for out in (leaf, non_leaf):
        assert fi.normal(SHAPE, SEED, out=out) is out
        assert torch.equal(out.detach(), torch.from_numpy(fi.normal(SHAPE, SEED)))
        assert out.requires_grad
    assert leaf.is_leaf and not non_leaf.is_leaf


# ---------------------------------------------------------------------------
# A11: hostile DLPack producers as out=
# ---------------------------------------------------------------------------


class Producer:
    """A DLPack producer whose two methods are whatever the test gives it."""

    def __init__(self, device=lambda: (1, 0), export=None):
        self._device = device
        self._export = export

    def __dlpack_device__(self):
        return self._device()

    def __dlpack__(self, **kwargs):
        return self._export(**kwargs)


def raising(error):
    def call(*args, **kwargs):
        raise error

    return call


def returning(value):
    return lambda *args, **kwargs: value


def numpy_export(shape=SHAPE):
    array = np.zeros(shape, dtype=np.float32)
    return lambda **kwargs: array.__dlpack__(**kwargs)


class HalfProducer:
    """Has __dlpack__ only."""

    def __dlpack__(self, **kwargs):
        return np.zeros(SHAPE, dtype=np.float32).__dlpack__(**kwargs)


class DeviceOnly:
    def __dlpack_device__(self):
        return (1, 0)


class BrokenAttribute:
    @property
    def __dlpack_device__(self):
        raise RuntimeError("attribute lookup fails")

    def __dlpack__(self, **kwargs):
        raise AssertionError("must not be reached")


class NotCallable:
    __dlpack_device__ = 5
    __dlpack__ = 6


class NoKeywords:
    """__dlpack__ without the stream keyword the protocol requires."""

    def __dlpack_device__(self):
        return (1, 0)

    def __dlpack__(self):
        return np.zeros(SHAPE, dtype=np.float32).__dlpack__()


# --- capsules built by hand: a DLManagedTensor (dlpack.h) that lies -------------------


class DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class DLTensor(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.c_void_p),
        ("device", DLDevice),
        ("ndim", ctypes.c_int32),
        ("dtype", DLDataType),
        ("shape", ctypes.POINTER(ctypes.c_int64)),
        ("strides", ctypes.POINTER(ctypes.c_int64)),
        ("byte_offset", ctypes.c_uint64),
    ]


class DLManagedTensor(ctypes.Structure):
    _fields_ = [
        ("dl_tensor", DLTensor),
        ("manager_ctx", ctypes.c_void_p),
        ("deleter", ctypes.c_void_p),
    ]


_capsule_new = ctypes.pythonapi.PyCapsule_New
_capsule_new.restype = ctypes.py_object
_capsule_new.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]


class ForgedCapsule:
    """A legacy 'dltensor' capsule over `memory` (a float32 NumPy array) whose fields say
    what the test wants; it keeps everything it points to alive. No deleter: nothing to free."""

    def __init__(self, memory, *, name=b"dltensor", shape=None, device=(1, 0), code=2,
                 bits=32, lanes=1, data=True, ndim=None, null_shape=False,
                 byte_offset=0):  # fmt: skip
        self.memory = memory
        self.name = ctypes.create_string_buffer(name)  # PyCapsule keeps the pointer only
        dims = memory.shape if shape is None else shape
        self.shape = (ctypes.c_int64 * len(dims))(*dims)
        self.managed = DLManagedTensor()
        tensor = self.managed.dl_tensor
        tensor.data = memory.ctypes.data if data else None
        tensor.device = DLDevice(*device)
        tensor.ndim = len(dims) if ndim is None else ndim
        tensor.dtype = DLDataType(code, bits, lanes)
        tensor.shape = None if null_shape else self.shape
        tensor.strides = None
        tensor.byte_offset = byte_offset

    def capsule(self):
        return _capsule_new(ctypes.addressof(self.managed), self.name, None)


def forged(**fields):
    memory = np.full(SHAPE, 7.0, dtype=np.float32)
    forgery = ForgedCapsule(memory, **fields)
    return Producer(export=lambda **kwargs: forgery.capsule()), memory


def used_capsule():
    capsule = np.zeros(SHAPE, dtype=np.float32).__dlpack__()
    torch.utils.dlpack.from_dlpack(capsule)  # consumes it: renamed "used_dltensor"
    return Producer(export=returning(capsule)), None


def plain(producer):
    return lambda: (producer, None)


# id -> (make() -> (out, its memory or None), exception type, message after "^out")
HOSTILE = {
    "device-raises": (
        plain(Producer(device=raising(ZeroDivisionError("boom")))),
        ValueError,
        r": Producer\.__dlpack_device__\(\) failed: ZeroDivisionError: boom",
    ),
    "device-raises-buffer-error": (
        plain(Producer(device=raising(BufferError("no device")))),
        ValueError,
        r": Producer\.__dlpack_device__\(\) failed: BufferError",
    ),
    "device-returns-none": (
        plain(Producer(device=returning(None))),
        TypeError,
        r": Producer\.__dlpack_device__\(\) must return two integers",
    ),
    "device-returns-str": (
        plain(Producer(device=returning("cpu"))),
        TypeError,
        r": Producer\.__dlpack_device__\(\) must return two integers",
    ),
    "device-returns-three": (
        plain(Producer(device=returning((1, 0, 0)))),
        TypeError,
        r": Producer\.__dlpack_device__\(\) must return two integers",
    ),
    "device-returns-float": (
        plain(Producer(device=returning((1.5, 0)))),
        TypeError,
        r": Producer\.__dlpack_device__\(\) must return two integers",
    ),
    "device-returns-bool": (
        plain(Producer(device=returning((True, 0)))),
        TypeError,
        r": Producer\.__dlpack_device__\(\) must return two integers",
    ),
    "device-negative-id": (
        plain(Producer(device=returning((1, -1)), export=numpy_export())),
        ValueError,
        r": Producer\.__dlpack_device__\(\) returned \(1, -1\), which names no DLPack device",
    ),
    "device-type-zero": (
        plain(Producer(device=returning((0, 0)), export=numpy_export())),
        ValueError,
        r": Producer\.__dlpack_device__\(\) returned \(0, 0\)",
    ),
    "export-raises-buffer-error": (
        plain(Producer(export=raising(BufferError("cannot export")))),
        ValueError,
        r": Producer\.__dlpack__\(\) refused to export it: BufferError: cannot export",
    ),
    "export-raises-runtime-error": (
        plain(Producer(export=raising(RuntimeError("driver")))),
        ValueError,
        r": Producer\.__dlpack__\(\) refused to export it: RuntimeError: driver",
    ),
    "export-raises-attribute-error": (
        plain(Producer(export=raising(AttributeError("x")))),
        ValueError,
        r": Producer\.__dlpack__\(\) refused to export it: AttributeError",
    ),
    "export-raises-type-error": (
        plain(Producer(export=raising(TypeError("bad keywords")))),
        TypeError,
        r": Producer\.__dlpack__\(stream=None\) cannot be called: bad keywords",
    ),
    "export-returns-none": (
        plain(Producer(export=returning(None))),
        TypeError,
        r": Producer\.__dlpack__\(\) returned NoneType, not a DLPack capsule",
    ),
    "export-returns-int": (
        plain(Producer(export=returning(5))),
        TypeError,
        r": Producer\.__dlpack__\(\) returned int, not a DLPack capsule",
    ),
    "export-returns-array": (
        plain(Producer(export=returning(np.zeros(SHAPE, dtype=np.float32)))),
        TypeError,
        r": Producer\.__dlpack__\(\) returned ndarray, not a DLPack capsule",
    ),
    "used-capsule": (
        used_capsule,
        ValueError,
        r": __dlpack__ returned no unused 'dltensor' or 'dltensor_versioned' capsule",
    ),
    "misnamed-capsule": (
        lambda: forged(name=b"not_a_dltensor"),
        ValueError,
        r": __dlpack__ returned no unused 'dltensor' or 'dltensor_versioned' capsule",
    ),
    "capsule-on-another-device": (
        lambda: forged(device=(2, 0)),
        ValueError,
        r": its DLPack capsule is on device \(2, 0\), not where its __dlpack_device__\(\) said",
    ),
    "capsule-without-data": (
        lambda: forged(data=False),
        ValueError,
        r": its DLPack capsule has no data pointer",
    ),
    "capsule-with-lanes": (
        lambda: forged(lanes=4),
        ValueError,
        r" has DLPack type \(code 2, 32 bits, 4 lanes\)",
    ),
    "capsule-negative-shape": (
        lambda: forged(shape=(-4, -3)),
        ValueError,
        r": the DLPack tensor has a negative extent",
    ),
    "capsule-negative-ndim": (
        lambda: forged(ndim=-1),
        ValueError,
        r": the DLPack tensor has ndim outside \[0, 64\]",
    ),
    "capsule-huge-ndim": (
        lambda: forged(ndim=1 << 30),
        ValueError,
        r": the DLPack tensor has ndim outside \[0, 64\]",
    ),
    "capsule-null-data-with-offset": (
        lambda: forged(data=False, byte_offset=64),
        ValueError,
        r": the DLPack tensor has a null data pointer with a byte offset",
    ),
    "capsule-without-shape": (
        lambda: forged(null_shape=True),
        ValueError,
        r": the DLPack tensor has no shape",
    ),
    "capsule-of-another-shape": (
        lambda: forged(shape=(3, 4)),
        ValueError,
        r" has shape \(3, 4\), expected \(4, 3\)",
    ),
    "only-dlpack": (
        plain(HalfProducer()),
        TypeError,
        r" \(HalfProducer\) has __dlpack__ but no __dlpack_device__",
    ),
    "only-dlpack-device": (
        plain(DeviceOnly()),
        TypeError,
        r" \(DeviceOnly\) has __dlpack_device__ but no __dlpack__",
    ),
    "attribute-raises": (
        plain(BrokenAttribute()),
        ValueError,
        r": BrokenAttribute\.__dlpack_device__\(\) failed: RuntimeError",
    ),
    "not-callable": (
        plain(NotCallable()),
        ValueError,
        r": NotCallable\.__dlpack_device__\(\) failed: TypeError",
    ),
    "no-stream-keyword": (
        plain(NoKeywords()),
        TypeError,
        r": NoKeywords\.__dlpack__\(stream=None\) cannot be called",
    ),
}


@pytest.mark.parametrize("sampler", sorted(OUT_SAMPLERS))
@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_dlpack_producer_is_refused_naming_out(case, sampler):
    make, exception, message = HOSTILE[case]
    out, memory = make()
    before = None if memory is None else memory.copy()
    with pytest.raises(Exception) as info:
        OUT_SAMPLERS[sampler](out)
    assert type(info.value) is exception, repr(info.value)
    assert re.match(rf"^out{message}", str(info.value)), str(info.value)
    if memory is not None:
        np.testing.assert_array_equal(memory, before)


def test_producer_errors_are_chained():
    # The producer's own exception stays visible as the cause.
    with pytest.raises(ValueError) as info:
        fi.normal(SHAPE, SEED, out=Producer(export=raising(BufferError("mine"))))
    assert isinstance(info.value.__cause__, BufferError)
    assert str(info.value.__cause__) == "mine"


def test_memory_error_of_a_producer_passes_through():
    # Running out of memory is not a bad argument: it stays a MemoryError.
    with pytest.raises(MemoryError):
        fi.normal(SHAPE, SEED, out=Producer(export=raising(MemoryError())))


def test_a_forged_but_honest_capsule_is_filled():
    # The forged capsules above are refused for their lies, not for being forged.
    producer, memory = forged()
    assert fi.normal(SHAPE, SEED, out=producer) is producer
    np.testing.assert_array_equal(memory, fi.normal(SHAPE, SEED))


@pytest.mark.parametrize("claimed", [(1, 0), (3, 0)], ids=["cpu", "pinned"])
def test_pinned_host_memory_is_filled_on_the_host(claimed):
    # DLPack's CUDA host device (3) is host memory, as torch exports pin_memory() tensors.
    producer, memory = forged(device=(3, 0))
    producer._device = returning(claimed)
    assert fi.uniform(SHAPE, SEED, out=producer) is producer
    np.testing.assert_array_equal(memory, fi.uniform(SHAPE, SEED))


@pytest.mark.parametrize(
    ("keywords", "message"),
    [
        ({"max_version": "1.0"}, r"^max_version must be a pair of integers"),
        ({"max_version": (1,)}, r"^max_version must be a pair of integers"),
        ({"max_version": (1.0, 0)}, r"^max_version must be a pair of integers"),
        ({"dl_device": 1}, r"^dl_device must be a pair of integers"),
        ({"dl_device": ("cpu", 0)}, r"^dl_device must be a pair of integers"),
        ({"copy": "no"}, r"^copy must be a bool or None, got str"),
    ],
    ids=["version-str", "version-short", "version-float", "device-int", "device-str", "copy"],
)
def test_as_dlpack_export_arguments_are_checked(keywords, message):
    # The consumer's side of the protocol: a malformed request names its argument.
    exporter = fi.as_dlpack(np.zeros(SHAPE, dtype=np.float32))
    with pytest.raises(TypeError, match=message):
        exporter.__dlpack__(**keywords)


# ---------------------------------------------------------------------------
# A12: fastinit.torch on odd tensors, against torch.nn.init on the same input
# ---------------------------------------------------------------------------


def overlapping():
    # Elements overlap without a zero stride: torch cannot tell, and writes them.
    return torch.full((10,), math.nan).as_strided(SHAPE, (1, 1))


# id -> make() -> a fresh odd tensor (2-D: eye_ and the rest; see ODD_CONV for dirac_)
ODD_TENSORS = {
    "expanded": lambda: torch.full((3,), math.nan).expand(4, 3),
    "expanded-rows": lambda: torch.full((4, 1), math.nan).expand(4, 3),
    "broadcast-scalar": lambda: torch.full((1,), math.nan).expand(4, 3),
    "expanded-float16": lambda: torch.full((3,), math.nan, dtype=torch.float16).expand(4, 3),
    "expanded-bfloat16": lambda: torch.full((3,), math.nan, dtype=torch.bfloat16).expand(4, 3),
    "expanded-int64": lambda: torch.zeros(3, dtype=torch.int64).expand(4, 3),
    "overlapping": overlapping,
    "sparse_coo": lambda: torch.full(SHAPE, math.nan).to_sparse(),
    "sparse_csr": lambda: torch.full(SHAPE, math.nan).to_sparse_csr(),
    "mkldnn": lambda: torch.full(SHAPE, math.nan).to_mkldnn(),
    "negative-bit": lambda: torch._neg_view(torch.full(SHAPE, math.nan)),
    "transposed": lambda: torch.full(SHAPE[::-1], math.nan).T,
    "conjugate-complex": lambda: torch.zeros(SHAPE, dtype=torch.complex64).conj(),
    "quantized": lambda: quantized(SHAPE),
}
ODD_CONV = {
    "expanded": lambda: torch.full((1, 2, 3, 1), math.nan).expand(4, 2, 3, 3),
    "sparse_coo": lambda: torch.full((4, 2, 3, 3), math.nan).to_sparse(),
    "negative-bit": lambda: torch._neg_view(torch.full((4, 2, 3, 3), math.nan)),
}
STRUCTURED = {
    "zeros_": (torch_init.zeros_, ft.zeros_),
    "ones_": (torch_init.ones_, ft.ones_),
    "constant_": (lambda t: torch_init.constant_(t, 0.25), lambda t: ft.constant_(t, 0.25)),
    "eye_": (torch_init.eye_, ft.eye_),
    "dirac_": (lambda t: torch_init.dirac_(t, 2), lambda t: ft.dirac_(t, 2)),
}


def outcome(fill, make):
    """(tensor, None) after fill(make()), or (None, the exception)."""
    tensor = make()
    try:
        fill(tensor)
    except Exception as error:  # compared with torch's below
        return None, error
    return tensor, None


def dense(t):
    if t.is_quantized:
        return t.int_repr()
    if t.layout != torch.strided:
        t = t.to_dense()
    return t.resolve_conj().resolve_neg()


def assert_same_outcome(theirs, ours):
    (their_tensor, their_error), (our_tensor, our_error) = theirs, ours
    if their_error is not None:
        assert our_error is not None, f"torch raised {their_error!r}, fastinit filled"
        assert isinstance(our_error, type(their_error)), (our_error, their_error)
        return
    assert our_error is None, f"torch filled, fastinit raised {our_error!r}"
    assert our_tensor.dtype == their_tensor.dtype and our_tensor.layout == their_tensor.layout
    assert torch.equal(dense(our_tensor), dense(their_tensor))


STRUCTURED_CASES = [
    pytest.param(name, kind, id=f"{name}-{kind}")
    for name in STRUCTURED
    for kind in (ODD_CONV if name == "dirac_" else ODD_TENSORS)
]


@pytest.mark.parametrize(("name", "kind"), STRUCTURED_CASES)
def test_structured_dropins_do_what_torch_does_on_odd_tensors(name, kind):
    make = (ODD_CONV if name == "dirac_" else ODD_TENSORS)[kind]
    theirs, ours = STRUCTURED[name]
    assert_same_outcome(outcome(theirs, make), outcome(ours, make))


def test_expanded_reproducers_succeed_as_in_torch():
    for fill in (ft.zeros_, ft.ones_, lambda t: ft.constant_(t, 3.0), ft.eye_):
        t = torch.zeros(3).expand(4, 3)
        assert fill(t) is t
    t = torch.zeros(3).expand(4, 3)
    ft.ones_(t)
    assert torch.equal(t, torch.ones(4, 3))
    t = torch.zeros(3).expand(4, 3).to_sparse()
    assert ft.zeros_(t) is t and t._nnz() == 0


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_constant_on_an_expanded_tensor_has_fastinits_rounding(dtype):
    # Through torch's fill, but with the value fastinit rounds once into the dtype.
    name = str(dtype).removeprefix("torch.")
    t = torch.zeros(3, dtype=dtype).expand(4, 3)
    ft.constant_(t, 0.1 + 1e-9)
    expected = fi.constant((4, 3), 0.1 + 1e-9, dtype=name)
    assert torch.equal(t.float(), torch.from_numpy(expected.astype(np.float32)))


RANDOM = {
    "uniform_": (lambda m, t, **k: m.uniform_(t, 0.5, 1.0, **k)),
    "normal_": (lambda m, t, **k: m.normal_(t, 1.0, 0.5, **k)),
    "trunc_normal_": (lambda m, t, **k: m.trunc_normal_(t, 0.0, 1.0, -1.0, 1.0, **k)),
    "xavier_uniform_": (lambda m, t, **k: m.xavier_uniform_(t, **k)),
    "xavier_normal_": (lambda m, t, **k: m.xavier_normal_(t, **k)),
    "kaiming_uniform_": (lambda m, t, **k: m.kaiming_uniform_(t, **k)),
    "kaiming_normal_": (lambda m, t, **k: m.kaiming_normal_(t, **k)),
    "orthogonal_": (lambda m, t, **k: m.orthogonal_(t, **k)),
}
RANDOM_CASES = [
    pytest.param(name, kind, id=f"{name}-{kind}")
    for name in RANDOM
    for kind in ODD_TENSORS
    if kind not in ("expanded-int64", "conjugate-complex", "quantized")  # dtype errors
]


@pytest.mark.parametrize(("name", "kind"), RANDOM_CASES)
def test_random_dropins_on_odd_tensors(name, kind):
    make, fill = ODD_TENSORS[kind], RANDOM[name]
    torch.manual_seed(SEED)
    theirs = outcome(lambda t: fill(torch_init, t), make)
    state = torch.get_rng_state()
    tensor = make()
    before = dense(tensor).clone()
    try:
        fill(ft, tensor)
    except Exception as error:
        # A refusal names `tensor`, is one of fastinit's, and is torch's type where
        # torch refuses too; nothing was written or drawn.
        assert isinstance(error, REFUSALS) and str(error).startswith("tensor "), repr(error)
        # (torch's orthogonal_ has no float16/bfloat16 QR at all: another refusal)
        if theirs[1] is not None and "not implemented for" not in str(theirs[1]):
            assert isinstance(error, type(theirs[1])), (error, theirs[1])
        torch.testing.assert_close(dense(tensor), before, rtol=0, atol=0, equal_nan=True)
        assert torch.equal(torch.get_rng_state(), state)
        return
    assert torch.isfinite(dense(tensor)).all()
    if kind != "overlapping":  # (where overlapping elements are written last is torch's)
        # Filled in its logical row-major order: equal to the same call on a plain tensor.
        reference = torch.empty(SHAPE, dtype=tensor.dtype)
        torch.set_rng_state(state)
        fill(ft, reference)
        assert torch.equal(dense(tensor), reference)


@pytest.mark.parametrize("kind", ["expanded", "sparse_coo", "sparse_csr", "mkldnn"])
def test_random_refusals_are_torchs_exception_types(kind):
    t = ODD_TENSORS[kind]()
    expected = ft.OverlappingTensorError if kind == "expanded" else ft.UnsupportedTensorError
    with pytest.raises(expected, match=r"^tensor ") as info:
        ft.normal_(t, seed=1)
    base = RuntimeError if kind == "expanded" else NotImplementedError
    assert isinstance(info.value, base)
    assert isinstance(info.value, ValueError if kind == "expanded" else TypeError)


def test_negative_bit_view_is_filled_with_the_values_it_shows():
    # Bug: the drop-in wrote the memory of a negated view directly, so U(0.5, 1) read
    # back in (-1, -0.5).
    base = torch.zeros(SHAPE)
    view = torch._neg_view(base)
    assert ft.uniform_(view, 0.5, 1.0, seed=SEED) is view
    expected = torch.from_numpy(fi.uniform(SHAPE, SEED, low=0.5, high=1.0))
    assert torch.equal(view.resolve_neg(), expected)
    assert torch.equal(base, -expected)


# ---------------------------------------------------------------------------
# A11: hostile arguments to fastinit.torch
# ---------------------------------------------------------------------------


def test_calculate_gain_reproducer_raises_torchs_overflow_naming_param():
    with pytest.raises(OverflowError) as theirs:
        torch_init.calculate_gain("leaky_relu", 1e200)
    with pytest.raises(OverflowError, match=r"^param \(negative_slope\) must be within") as ours:
        ft.calculate_gain("leaky_relu", 1e200)
    assert type(ours.value) is type(theirs.value)


HOSTILE_NUMBERS = [
    math.nan, math.inf, -math.inf, 1e200, -1e200, 2**1024, 1e154, 3.5e38, True, "1", None,
    1 + 2j, -1.0, 0.0, 5e-324,
]  # fmt: skip


@pytest.mark.parametrize("value", HOSTILE_NUMBERS, ids=repr)
@pytest.mark.parametrize("nonlinearity", ["leaky_relu", "relu", "tanh", "selu", "bogus"])
def test_calculate_gain_is_torchs_or_names_param(nonlinearity, value):
    try:
        expected = torch_init.calculate_gain(nonlinearity, value)
    except Exception as error:
        expected = error
    try:
        got = ft.calculate_gain(nonlinearity, value)
    except Exception as error:
        got = error
    if isinstance(got, Exception):
        named = re.search(r"\b(param|nonlinearity)\b", str(got)) is not None
        assert named or (type(got) is type(expected) and str(got) == str(expected)), repr(got)
        assert isinstance(got, (*REFUSALS, OverflowError)), repr(got)
        return
    assert math.isfinite(got)
    assert got == expected


# (drop-in, argument, call(module, tensor, value)); each with every hostile value.
ARGUMENTS = {
    "uniform_-a": ("a", lambda m, t, v: m.uniform_(t, a=v)),
    "uniform_-b": ("b", lambda m, t, v: m.uniform_(t, b=v)),
    "normal_-mean": ("mean", lambda m, t, v: m.normal_(t, mean=v)),
    "normal_-std": ("std", lambda m, t, v: m.normal_(t, std=v)),
    "trunc_normal_-mean": ("mean", lambda m, t, v: m.trunc_normal_(t, mean=v)),
    "trunc_normal_-std": ("std", lambda m, t, v: m.trunc_normal_(t, std=v)),
    "trunc_normal_-a": ("a", lambda m, t, v: m.trunc_normal_(t, a=v)),
    "trunc_normal_-b": ("b", lambda m, t, v: m.trunc_normal_(t, b=v)),
    "xavier_uniform_-gain": ("gain", lambda m, t, v: m.xavier_uniform_(t, gain=v)),
    "xavier_normal_-gain": ("gain", lambda m, t, v: m.xavier_normal_(t, gain=v)),
    "kaiming_uniform_-a": ("a", lambda m, t, v: m.kaiming_uniform_(t, a=v)),
    "kaiming_normal_-a": ("a", lambda m, t, v: m.kaiming_normal_(t, a=v)),
    "kaiming_uniform_-mode": ("mode", lambda m, t, v: m.kaiming_uniform_(t, mode=v)),
    "kaiming_normal_-nonlinearity": (
        "nonlinearity",
        lambda m, t, v: m.kaiming_normal_(t, nonlinearity=v),
    ),
    "orthogonal_-gain": ("gain", lambda m, t, v: m.orthogonal_(t, gain=v)),
    "constant_-val": ("val", lambda m, t, v: m.constant_(t, v)),
    "dirac_-groups": ("groups", lambda m, t, v: m.dirac_(t.view(2, 2, 3), groups=v)),
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("value", HOSTILE_NUMBERS, ids=repr)
@pytest.mark.parametrize("case", sorted(ARGUMENTS))
def test_hostile_argument_is_torchs_error_or_names_the_argument(case, value, dtype):
    argument, call = ARGUMENTS[case]
    torch.manual_seed(SEED)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            call(torch_init, torch.zeros(SHAPE, dtype=dtype), value)
        expected = None
    except Exception as error:
        expected = error
    t = torch.full(SHAPE, math.nan, dtype=dtype)
    state = torch.get_rng_state()
    try:
        call(ft, t, value)
    except Exception as error:
        same = expected is not None and type(error) is type(expected)
        named = re.search(rf"(^|\W){argument}\W", str(error)) is not None
        assert (same and str(error) == str(expected)) or (
            named and isinstance(error, (*REFUSALS, OverflowError))
        ), repr(error)
        assert torch.isnan(t).all()  # nothing written
        if named:
            assert torch.equal(torch.get_rng_state(), state)  # nothing drawn
        return
    assert torch.isfinite(t).all(), f"{case}={value!r} wrote inf or NaN"


NOT_TENSORS = [np.zeros(SHAPE, dtype=np.float32), [[0.0] * 3] * 4, None, 3.0]
DROPINS = [
    "uniform_", "normal_", "trunc_normal_", "xavier_uniform_", "xavier_normal_",
    "kaiming_uniform_", "kaiming_normal_", "orthogonal_", "zeros_", "ones_", "eye_", "dirac_",
]  # fmt: skip


@pytest.mark.parametrize("value", NOT_TENSORS, ids=lambda v: type(v).__name__)
@pytest.mark.parametrize("name", DROPINS)
def test_a_non_tensor_is_a_type_error_naming_tensor(name, value):
    with pytest.raises(TypeError, match=r"^tensor must be a torch\.Tensor"):
        getattr(ft, name)(value)
    with pytest.raises(TypeError, match=r"^tensor must be a torch\.Tensor"):
        ft.constant_(value, 1.0)


@pytest.mark.parametrize(
    ("keywords", "exception", "message"),
    [
        ({"module": "model"}, TypeError, r"^module must be a torch\.nn\.Module, got str"),
        ({"device": "bogus"}, ValueError, r"^device 'bogus' is not a torch device"),
        ({"device": 2.5}, TypeError, r"^device must be a str or torch\.device, got float"),
        ({"device": True}, TypeError, r"^device must be a str or torch\.device, got bool"),
    ],
    ids=["module", "device-str", "device-float", "device-bool"],
)
def test_init_module_arguments_are_named(keywords, exception, message):
    arguments = {"module": torch.nn.Linear(3, 2, device="meta"), "seed": 1, **keywords}
    module = arguments.pop("module")
    with pytest.raises(exception, match=message):
        ft.init_module(module, **arguments)
    if isinstance(module, torch.nn.Module):
        assert module.weight.device.type == "meta"  # refused before materializing


# ---------------------------------------------------------------------------
# Issue 13: tensors whose export is not their values (null data, unknown subclasses)
# ---------------------------------------------------------------------------


class Wrapped(torch.Tensor):
    """A trivial tensor subclass with __torch_function__, as libraries' wrappers are:
    fastinit cannot know whether its memory holds its values (a DTensor's does not)."""

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        return super().__torch_function__(func, types, args, kwargs or {})


def wrapped(shape=SHAPE):
    return torch.full(shape, math.nan).as_subclass(Wrapped)


OUT_WRITERS = {
    **OUT_SAMPLERS,
    "normal-region": lambda out: fi.normal((9, 3), SEED, out=out, region=(slice(2, 6),)),
    "constant-region": lambda out: fi.constant(
        (4, 8), 2.0, out=out, region=(slice(None), slice(5, 8))
    ),
    "identity": lambda out: fi.identity(SHAPE, out=out),
    "eye-region": lambda out: fi.eye((6, 6), out=out, region=(slice(1, 5), slice(0, 3))),
}


@pytest.mark.parametrize("writer", sorted(OUT_WRITERS))
def test_an_unknown_tensor_subclass_as_out_is_refused_before_writing(writer):
    out = wrapped()
    with pytest.raises(
        TypeError, match=r"^out is a Wrapped, a torch\.Tensor subclass fastinit does not know"
    ):
        OUT_WRITERS[writer](out)
    assert torch.isnan(out.as_subclass(torch.Tensor)).all()


@pytest.mark.parametrize("writer", sorted(OUT_WRITERS))
def test_a_null_data_pointer_is_refused_on_every_host_path(writer):
    # Whole tensors, regions (whose extent is the capsule's shape) and the structured
    # writers' strided and computed paths all check the borrowed pointer.
    out, memory = forged(data=False)
    with pytest.raises(ValueError, match=r"^out: its DLPack capsule has no data pointer$"):
        OUT_WRITERS[writer](out)
    assert (memory == 7.0).all()


def test_a_null_data_pointer_without_elements_is_filled_as_empty():
    # DLPack allows a null pointer when there is nothing to point at.
    out, _ = forged(shape=(0, 3), data=False)
    assert fi.normal((0, 3), SEED, out=out) is out
    assert fi.constant((0, 3), 1.0, out=out) is out


def unknown_subclass_calls():
    """id -> call(tensor, generator): every drop-in on a Wrapped tensor."""
    calls = {name: (lambda t, g, name=name: getattr(ft, name)(t, generator=g)) for name in DROPINS}
    calls["constant_"] = lambda t, g: ft.constant_(t, 0.5, generator=g)
    return calls


UNKNOWN_SUBCLASS_CALLS = unknown_subclass_calls()


@pytest.mark.parametrize("name", sorted(UNKNOWN_SUBCLASS_CALLS))
def test_an_unknown_tensor_subclass_is_refused_by_the_drop_ins(name):
    tensor = wrapped((4, 2, 3) if name == "dirac_" else SHAPE)
    generator = torch.Generator().manual_seed(SEED)
    state = generator.get_state()
    with pytest.raises(
        TypeError,
        match=r"^tensor is a Wrapped, a torch\.Tensor subclass fastinit\.torch does not know",
    ):
        UNKNOWN_SUBCLASS_CALLS[name](tensor, generator)
    assert torch.isnan(tensor.as_subclass(torch.Tensor)).all()
    assert torch.equal(generator.get_state(), state)


def test_parameters_and_buffers_are_known_tensor_types():
    # The refusal is of unknown subclasses only: Parameter and Buffer are written.
    parameter = torch.nn.Parameter(torch.zeros(SHAPE))
    assert fi.normal(SHAPE, SEED, out=parameter) is parameter
    assert torch.equal(parameter.detach(), torch.from_numpy(fi.normal(SHAPE, SEED)))
    buffer = torch.nn.Buffer(torch.zeros(SHAPE))
    assert ft.normal_(buffer, seed=SEED) is buffer
    assert torch.equal(buffer, torch.from_numpy(fi.normal(SHAPE, SEED)))
