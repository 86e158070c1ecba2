"""torch.nn.init, reproducible: the same names, signatures and distributions, Philox bits.

    import fastinit.torch as init        # instead of: from torch.nn import init

    init.kaiming_uniform_(layer.weight, a=math.sqrt(5), seed=42, stream="fc1.weight")
    init.trunc_normal_(w, std=0.02, a=-0.04, b=0.04)          # seed drawn from torch's RNG
    model = init.init_module(model_built_on_meta, seed=42)   # every parameter and buffer

Each function fills its tensor in place (CPU or CUDA; float32, float64, float16,
bfloat16) with the values fastinit's samplers return for (shape, seed, stream), and
returns the tensor. Distributions and parameter formulas are torch.nn.init's; fans
and gains come from torch's own functions, so errors about them (bad mode or
nonlinearity, fewer than 2 dimensions) are torch's too. Other bad arguments raise
fastinit's ValueError/TypeError naming the argument.

Seeds: pass `seed=` (and optionally `stream=`, default 0) for bits that depend on
nothing else. Without a seed, the seed is one draw from `generator` (default
torch.default_generator): torch.randint(0, 2**63 - 1) on that generator, so
torch.manual_seed makes the sequence of calls reproducible and each call advances
the generator, as torch.nn.init's functions do. constant_, ones_, zeros_, eye_ and
dirac_ accept seed/stream/generator for uniformity and ignore them; they also fill
integer tensors, as torch's do.

sparse_ zeroes ceil(sparsity * rows) elements of each column, as torch's does, at rows
picked from the same seed and stream as its values (docs/stream.md, section 7) rather
than from torch.randperm: reproducible, and the same for a shard as for the whole.
torch.nn.init's deprecated names without the underscore (uniform, normal, constant,
eye, dirac, xavier_*, kaiming_*, orthogonal, sparse) are here too: each warns with
torch's FutureWarning, then calls the drop-in. calculate_gain raises what torch's
raises, type for type, and refuses a NaN or infinite leaky_relu slope (ValueError).

A tensor that is not contiguous is filled through one contiguous temporary (its
logical row-major order defines the element indices). Meta tensors are left as they
are, as torch.nn.init leaves them.

DTensors (torch.distributed: FSDP2, tensor parallelism, HSDP) are filled shard by
shard: every drop-in and init_module take them unchanged. Fans, gains and bounds come
from the GLOBAL shape; each rank writes only the part of the global tensor it holds
(Shard, _StridedShard, Replicate, on any mesh) into its local tensor, in place, with
the bits one device would hold there: the same at any world size, mesh and placement,
with no communication, in time and memory that grow with the shard (orthogonal_ alone
computes the whole matrix on each rank). A Partial placement on a mesh dimension of
size > 1 is refused naming the tensor. Pass seed= with DTensors: a seed drawn from a
generator is the same on every rank only if the ranks' generators are in the same
state (torch.manual_seed with one seed everywhere; torch's DTensor RNG is not used).
Tensor subclasses other than Parameter, Buffer and DTensor are refused (TypeError
naming `tensor`): their memory may not hold their values.

Odd tensors behave as in torch.nn.init. constant_, ones_, zeros_, eye_ and dirac_ fill
whatever torch's do (an expanded view, a sparse CSR tensor: through torch's own fill,
with fastinit's value) and raise what torch's raise. The random drop-ins refuse a
sparse, nested or MKL-DNN tensor with UnsupportedTensorError (a TypeError and a
NotImplementedError) and an expanded view, whose elements share memory, with
OverlappingTensorError (a ValueError and a RuntimeError), before drawing anything.
Numeric arguments are checked under their own names: a refusal names `a`, `gain`,
`val`... even where the value it rejects is derived from them (a bound, a std), and
no call writes inf or NaN.

Layout (each module reads only the ones after it): reproducible.py (unchanged init
code served by the drop-ins) and modules.py (init_module, the per-layer default rules,
meta materialization) -> nn_init.py (the drop-ins) ->
_tensors.py (tensor checks and writes) -> _dtensor.py (a DTensor's shard as boxes of
the global tensor) -> fastinit's samplers.
"""

# N.B. inside this package `import torch` is PyTorch itself (imports are absolute).
from ._tensors import OverlappingTensorError, UnsupportedTensorError
from .modules import Initializer as Initializer  # the types of init_module's rules
from .modules import Rule as Rule
from .modules import init_module
from .nn_init import (
    calculate_gain,
    constant,
    constant_,
    dirac,
    dirac_,
    eye,
    eye_,
    kaiming_normal,
    kaiming_normal_,
    kaiming_uniform,
    kaiming_uniform_,
    normal,
    normal_,
    ones_,
    orthogonal,
    orthogonal_,
    sparse,
    sparse_,
    trunc_normal_,
    uniform,
    uniform_,
    xavier_normal,
    xavier_normal_,
    xavier_uniform,
    xavier_uniform_,
    zeros_,
)
from .reproducible import reproducible

__all__ = [
    "calculate_gain",
    "constant_",
    "dirac_",
    "eye_",
    "init_module",
    "kaiming_normal_",
    "kaiming_uniform_",
    "normal_",
    "ones_",
    "orthogonal_",
    "reproducible",
    "sparse_",
    "trunc_normal_",
    "uniform_",
    "xavier_normal_",
    "xavier_uniform_",
    "zeros_",
    # torch.nn.init's deprecated aliases: each warns (FutureWarning) as torch's does
    "constant",
    "dirac",
    "eye",
    "kaiming_normal",
    "kaiming_uniform",
    "normal",
    "orthogonal",
    "sparse",
    "uniform",
    "xavier_normal",
    "xavier_uniform",
    "OverlappingTensorError",
    "UnsupportedTensorError",
]
