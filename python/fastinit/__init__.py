"""fastinit: fast, bit-reproducible neural-network weight initializers.

Every element of every sampled tensor is a pure function of (seed, stream, flat
index, parameters), computed from the Philox4x32-10 counter-based generator:
the same bits whatever the thread count, chunking, slicing or device.
docs/stream.md specifies the stream; docs/conventions.md compares with Keras,
JAX and PyTorch.
"""

import importlib.metadata

from ._core import philox4x32
from .computed import inverse_softplus_log_uniform, log_of_uniform
from .cuda import CudaArray, cuda_available, cuda_status
from .dlpack import as_dlpack
from .fans import calculate_gain, compute_fans
from .initializers import (
    TRUNCATED_NORMAL_STD,
    glorot_normal,
    glorot_uniform,
    he_normal,
    he_uniform,
    kaiming_normal,
    kaiming_uniform,
    lecun_normal,
    lecun_uniform,
    normal,
    random_bits,
    truncated_normal,
    uniform,
    variance_scaling,
    xavier_normal,
    xavier_uniform,
)
from .runtime import cpu_target, cpu_targets, get_num_threads, set_num_threads
from .streams import stream_id
from .structured import (
    constant,
    delta_orthogonal,
    dirac,
    eye,
    identity,
    ones,
    orthogonal,
    zeros,
)

# One source: pyproject.toml, read back from the installed package's metadata.
__version__ = importlib.metadata.version("fastinit")

__all__ = [
    "TRUNCATED_NORMAL_STD",
    "as_dlpack",
    "calculate_gain",
    "compute_fans",
    "constant",
    "CudaArray",
    "cuda_available",
    "cuda_status",
    "cpu_target",
    "cpu_targets",
    "delta_orthogonal",
    "dirac",
    "eye",
    "get_num_threads",
    "glorot_normal",
    "glorot_uniform",
    "he_normal",
    "he_uniform",
    "identity",
    "inverse_softplus_log_uniform",
    "kaiming_normal",
    "kaiming_uniform",
    "lecun_normal",
    "lecun_uniform",
    "log_of_uniform",
    "normal",
    "ones",
    "orthogonal",
    "philox4x32",
    "random_bits",
    "set_num_threads",
    "stream_id",
    "truncated_normal",
    "uniform",
    "variance_scaling",
    "xavier_normal",
    "xavier_uniform",
    "zeros",
]
