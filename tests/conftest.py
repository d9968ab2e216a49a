"""Shared fixtures and helpers for the nnfast test suite.

Test modules import the helpers with ``from tests.conftest import ...``:
pytest's importlib mode registers this file as ``tests.conftest``.
"""
import os

import numpy as np
import pytest
from hypothesis import settings
from hypothesis import strategies as st

import nnfast
import nnfast.reference

# Modest example counts: the suite also runs against a slow debug build.
# NNFAST_HYPOTHESIS_PROFILE=thorough runs many more examples (for soak runs).
settings.register_profile("default", max_examples=30, deadline=None)
settings.register_profile("thorough", max_examples=1000, deadline=None)
settings.load_profile(os.environ.get("NNFAST_HYPOTHESIS_PROFILE", "default"))

NET_CLASSES = [nnfast.Net, nnfast.reference.Net]
NET_IDS = ["fast", "reference"]
DTYPES = [np.float64, np.float32]

# Agreement required between nnfast.Net and nnfast.reference.Net.
TOL = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 1e-4}


@pytest.fixture(params=NET_CLASSES, ids=NET_IDS)
def net_class(request):
    """Each net class in turn, for behaviour both must share."""
    return request.param


@pytest.fixture(params=DTYPES, ids=["float64", "float32"])
def dtype(request):
    return np.dtype(request.param)


def flat(values):
    """Concatenate a scalar, an array or a (nested) list of arrays into one float64 vector."""
    if isinstance(values, (list, tuple)):
        parts = [flat(value) for value in values]
        return np.concatenate(parts) if parts else np.zeros(0)
    return np.asarray(values, dtype=np.float64).reshape(-1)


def rel_error(actual, expected):
    """Norm-wise relative error ``max|a - b| / max|b|`` over everything in ``expected``.

    A single scale for the whole collection avoids blow-ups on entries that
    are near zero by cancellation; an all-zero ``expected`` demands an exact match.
    """
    a, b = flat(actual), flat(expected)
    assert a.shape == b.shape, f"sizes differ: {a.shape} vs {b.shape}"
    error = np.max(np.abs(a - b), initial=0.0)
    scale = np.max(np.abs(b), initial=0.0)
    if scale == 0:
        return 0.0 if error == 0 else np.inf
    return error / scale


def assert_same_structure(actual, expected, what="values"):
    """Assert ``actual`` has the (nested) list lengths and array shapes of ``expected``."""
    if isinstance(expected, (list, tuple)):
        assert isinstance(actual, (list, tuple)), f"{what}: expected a list, got {type(actual)}"
        assert len(actual) == len(expected), f"{what}: {len(actual)} items, expected {len(expected)}"
        for a, b in zip(actual, expected):
            assert_same_structure(a, b, what)
    else:
        assert np.shape(actual) == np.shape(expected), (
            f"{what}: shape {np.shape(actual)} != {np.shape(expected)}"
        )


def assert_close(actual, expected, dtype, what="values"):
    """Assert shapes match and the norm-wise relative error is within ``TOL[dtype]``."""
    assert_same_structure(actual, expected, what)
    error = rel_error(actual, expected)
    tol = TOL[np.dtype(dtype)]
    assert error <= tol, f"{what}: relative error {error:.3g} > {tol:g}"


def assert_loss_close(actual, expected, y, loss, dtype, what="loss"):
    """Assert two loss values agree within ``TOL[dtype]``, relative to the larger of
    ``expected`` and the loss of predicting zero (the size of the targets).

    A loss far below the zero predictor's is the square of a difference that
    cancels (predictions close to the targets): its relative rounding error
    is unbounded, but measured against the targets it stays small.
    """
    y = np.asarray(y, dtype=np.float64)
    zero_prediction = np.square(y).sum() if loss == "sse" else np.square(y).mean()
    scale = max(abs(expected), zero_prediction)
    error = abs(actual - expected) / scale if scale else abs(actual - expected)
    tol = TOL[np.dtype(dtype)]
    assert error <= tol, f"{what}: {actual} vs {expected}, relative error {error:.3g} > {tol:g}"


def params_of(net):
    """The net's parameters as one flat float64 vector (weights, then biases)."""
    return flat([net.weights, net.biases])


def clear_relu_kinks(weights, biases, x, dtype, rng, margin=1e-4):
    """Redraw hidden units' weights (and biases) until no pre-activation on ``x`` is near zero.

    Two correct implementations round differently; a pre-activation within
    rounding distance of 0 can then fall on different sides of the ReLU and
    the gradients legitimately differ (and a finite difference would step
    over the kink). Here every hidden pre-activation ends up at least
    ``margin * (|a| @ |W| + |b|)`` away from 0 (plus ``margin`` with biases,
    which a finite difference shifts by its absolute step): far beyond
    float32 rounding and a 1e-6 finite-difference step. Exact zeros (a sample
    with all-zero inputs to a bias-free layer) are computed exactly by both
    and are left alone. Modifies ``weights`` and ``biases``.
    """
    a = np.asarray(x, dtype=dtype).astype(np.float64)
    for layer in range(len(weights) - 1):
        for _ in range(100):
            w = weights[layer].astype(dtype).astype(np.float64)
            b = biases[layer].astype(dtype).astype(np.float64) if biases else np.zeros(w.shape[1])
            z = a @ w + b
            scale = np.abs(a) @ np.abs(w) + np.abs(b)
            near = ((np.abs(z) < margin * (scale + bool(biases))) & (scale > 0)).any(axis=0)
            if not near.any():
                break
            fan_in, count = w.shape[0], int(near.sum())
            weights[layer][:, near] = rng.standard_normal((fan_in, count)) * np.sqrt(2 / fan_in)
            if biases:  # the only way out for a sample whose inputs to the layer are all 0
                biases[layer][near] = 0.1 * rng.standard_normal(count)
        else:
            raise RuntimeError("could not move the pre-activations away from the ReLU kink")
        a = np.maximum(z, 0)
    return weights


def make_pair(layers, *, x=None, seed=0, **kwargs):
    """Return ``(nnfast.Net, nnfast.reference.Net)`` with identical parameters.

    Both are built with ``seed``; with ``bias=True`` the biases are set to
    small random values (so the bias paths carry weight). With ``x``, the
    hidden weights are adjusted so that no pre-activation on ``x`` sits
    near the ReLU kink (see ``clear_relu_kinks``).
    """
    fast = nnfast.Net(layers, seed=seed, **kwargs)
    ref = nnfast.reference.Net(layers, seed=seed, **kwargs)
    rng = np.random.default_rng([seed, 1])
    weights = [w.astype(np.float64) for w in fast.weights]
    biases = [0.1 * rng.standard_normal(b.shape) for b in fast.biases]
    if x is not None:
        clear_relu_kinks(weights, biases, x, fast.dtype, rng)
    for net in (fast, ref):
        net.weights = weights
        net.biases = biases
    np.testing.assert_array_equal(params_of(fast), params_of(ref))
    return fast, ref


def random_data(rng, n_samples, layers):
    """Inputs and targets drawn from N(0, 1), shaped for ``layers``."""
    x = rng.standard_normal((n_samples, layers[0]))
    y = rng.standard_normal((n_samples, layers[-1]))
    return x, y


def stable_lr(layers, batch_size, loss):
    """A learning rate small enough that plain SGD cannot diverge on N(0, 1) data.

    The loss's curvature grows with the layer widths, and for ``"sse"``
    also with the number of summed outputs per step.
    """
    lr = 1e-2 / max(layers)
    if loss == "sse":
        lr /= batch_size * layers[-1]
    return lr


# -- Hypothesis strategies ----------------------------------------------------

# Widths on both sides of the BLAS threshold (a product uses BLAS when
# rows * fan_in * fan_out >= nnfast._matmul.blas_min_work).
widths = st.one_of(st.integers(1, 8), st.integers(9, 40), st.integers(41, 300))


@st.composite
def architectures(draw, min_hidden=1, max_hidden=4):
    """Layer sizes: input, ``min_hidden``..``max_hidden`` hidden layers, output."""
    n_hidden = draw(st.integers(min_hidden, max_hidden))
    return [draw(widths) for _ in range(n_hidden + 2)]


@st.composite
def net_configs(draw, max_hidden=4):
    """A random architecture with its options, batch size and data seed."""
    return dict(
        layers=draw(architectures(max_hidden=max_hidden)),
        bias=draw(st.booleans()),
        loss=draw(st.sampled_from(["sse", "mse"])),
        dtype=np.dtype(draw(st.sampled_from(DTYPES))),
        n_samples=draw(st.integers(1, 64)),
        seed=draw(st.integers(0, 2**32 - 1)),
    )
