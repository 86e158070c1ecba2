"""The named initializers are explicit defs: each is variance_scaling with its NAMED
constants, bit for bit, takes variance_scaling's keywords (less scale and mode, plus
gain), and documents itself in the Args/Returns/Raises/Example/Reference shape."""

from __future__ import annotations

import inspect

import fastinit
import numpy as np
import pytest
from fastinit import initializers

NAMES = sorted(initializers.NAMED)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("gain", [1.0, 0.5, 3])
@pytest.mark.parametrize("distribution", [None, "normal", "uniform", "truncated_normal"])
def test_named_equals_variance_scaling(name, gain, distribution):
    scale, mode, default, _ = initializers.NAMED[name]
    chosen = default if distribution is None else distribution
    options = {} if distribution is None else {"distribution": distribution}
    named = getattr(fastinit, name)((37, 5, 3), 11, gain=gain, stream="w", **options)
    general = fastinit.variance_scaling(
        (37, 5, 3), 11, scale=scale * gain * gain, mode=mode, distribution=chosen, stream="w"
    )
    assert named.dtype == general.dtype
    assert named.tobytes() == general.tobytes()
    assert np.isfinite(named).all()


@pytest.mark.parametrize("name", NAMES)
def test_named_signature_and_docstring(name):
    function = getattr(fastinit, name)
    assert function.__module__ == "fastinit.initializers" and function.__name__ == name
    ours = inspect.signature(function).parameters
    general = inspect.signature(fastinit.variance_scaling).parameters
    assert set(ours) == (set(general) - {"scale", "mode"}) | {"gain"}
    assert ours["distribution"].default == initializers.NAMED[name][2]
    doc = inspect.getdoc(function)
    for section in ("Args:", "Returns:", "Raises:", "Example:", "Reference:"):
        assert section in doc, f"{name} docstring lacks {section}"
    assert "{args}" not in doc


@pytest.mark.parametrize(
    ("alias", "name"),
    [
        ("xavier_normal", "glorot_normal"),
        ("xavier_uniform", "glorot_uniform"),
        ("kaiming_normal", "he_normal"),
        ("kaiming_uniform", "he_uniform"),
    ],
)
def test_pytorch_aliases(alias, name):
    assert getattr(fastinit, alias) is getattr(fastinit, name)
