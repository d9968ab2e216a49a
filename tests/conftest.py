"""Shared fixtures and helpers for the nnfast test suite.

Test modules import the helpers with ``from tests.conftest import ...``:
pytest's importlib mode registers this file as ``tests.conftest``.
"""
import os

import numpy as np
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from scipy.special import expit, log_softmax, xlogy

import nnfast
import nnfast.reference

# Modest example counts: the suite also runs against a slow debug build.
# NNFAST_HYPOTHESIS_PROFILE=thorough runs many more examples (for soak runs);
# "ci" draws the same examples every run, so that CI's verdict on a commit
# does not depend on which examples it happened to draw (local runs keep
# exploring new ones).
settings.register_profile("default", max_examples=30, deadline=None)
settings.register_profile("ci", max_examples=30, deadline=None, derandomize=True)
settings.register_profile("thorough", max_examples=1000, deadline=None)
settings.load_profile(os.environ.get("NNFAST_HYPOTHESIS_PROFILE", "default"))

NET_CLASSES = [nnfast.Net, nnfast.reference.Net]
NET_IDS = ["fast", "reference"]
DTYPES = [np.float64, np.float32]

# The documented options (nnfast._base.BaseNet), spelled out here so that a
# renamed or dropped option fails the tests instead of silently shrinking them.
ACTIVATIONS = ["relu", "leaky_relu", "tanh", "sigmoid", "identity"]
LOSSES = ["sse", "mse", "cross_entropy", "binary_cross_entropy"]
CLASSIFICATION_LOSSES = ["cross_entropy", "binary_cross_entropy"]
INITS = ["auto", "he_normal", "he_uniform", "glorot_normal", "glorot_uniform", "normal"]

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


def zero_prediction_loss(y, loss):
    """The loss of predicting all zeros (logits of 0 for the cross-entropy losses): the size of the targets.

    For the cross-entropy losses a lower bound, ``log 2`` per unit of target
    mass, which is all the scale needs.
    """
    y = np.asarray(y, dtype=np.float64)
    if loss == "sse":
        return np.square(y).sum()
    if loss == "mse":
        return np.square(y).mean()
    return np.log(2.0)


def assert_loss_close(actual, expected, y, loss, dtype, what="loss"):
    """Assert two loss values agree within ``TOL[dtype]``, relative to the larger of
    ``expected`` and the loss of predicting zero (the size of the targets).

    A loss far below the zero predictor's is the square of a difference that
    cancels (predictions close to the targets), or for the cross-entropy
    losses a log-sum-exp minus a logit: its relative rounding error is
    unbounded, but measured against the targets it stays small.
    """
    scale = max(abs(expected), zero_prediction_loss(y, loss))
    error = abs(actual - expected) / scale if scale else abs(actual - expected)
    tol = TOL[np.dtype(dtype)]
    assert error <= tol, f"{what}: {actual} vs {expected}, relative error {error:.3g} > {tol:g}"


def params_of(net):
    """The net's parameters as one flat float64 vector (weights, then biases)."""
    return flat([net.weights, net.biases])


def set_flat_params(net, vector):
    """Assign a flat (weights, then biases) vector, as ``params_of`` returns, through the public setters."""
    shapes = [w.shape for w in net.weights] + [b.shape for b in net.biases]
    arrays, start = [], 0
    for shape in shapes:
        size = int(np.prod(shape))
        arrays.append(vector[start : start + size].reshape(shape))
        start += size
    assert start == len(vector) == net.n_params
    n_weights = len(net.weights)
    net.weights = arrays[:n_weights]
    net.biases = arrays[n_weights:]


def fit_recording(net, x, y, **kwargs):
    """``net.fit`` with a callback that records the parameters after every epoch.

    Returns ``(history, [params_of(net) after epoch 0, after epoch 1, ...])``.
    """
    recorded = []

    def callback(epoch, history):
        assert epoch == len(recorded), f"callback for epoch {epoch} after {len(recorded)} calls"
        recorded.append(params_of(net))

    history = net.fit(x, y, callback=callback, **kwargs)
    return history, recorded


def activate(name, z, negative_slope=0.01):
    """The documented activations, in float64 (a test-side transcription of the docstring)."""
    if name == "relu":
        return np.maximum(z, 0)
    if name == "leaky_relu":
        return np.where(z < 0, negative_slope * z, z)
    if name == "tanh":
        return np.tanh(z)
    if name == "sigmoid":
        return expit(z)  # 1 / (1 + exp(-z)) without overflow
    assert name == "identity", name
    return z


def clear_relu_kinks(weights, biases, x, dtype, rng, margin=1e-4, activations=None, bias=None,
                     negative_slope=0.01):
    """Redraw hidden units' weights (and biases) until no pre-activation on ``x`` is near zero.

    Two correct implementations round differently; a pre-activation within
    rounding distance of 0 can then fall on different sides of the ReLU and
    the gradients legitimately differ (and a finite difference would step
    over the kink). Here every hidden pre-activation of a (leaky) ReLU layer
    ends up at least ``margin * (|a| @ |W| + |b|)`` away from 0 (plus
    ``margin`` with biases, which a finite difference shifts by its absolute
    step): far beyond float32 rounding and a 1e-6 finite-difference step.
    Exact zeros (a sample with all-zero inputs to a bias-free layer) are
    computed exactly by both and are left alone. Layers with a smooth
    activation have no kink and are left alone.

    ``activations`` lists each hidden layer's activation (default: all
    ReLU); ``bias`` each layer's bias flag (default: all layers have one if
    ``biases`` is non-empty, none otherwise), so ``biases`` holds the vectors
    of the layers that have one, as ``Net.biases`` does. Modifies ``weights``
    and ``biases``.
    """
    n_layers = len(weights)
    if activations is None:
        activations = ["relu"] * (n_layers - 1)
    if bias is None:
        bias = [bool(biases)] * n_layers
    bias_index = list(np.cumsum(bias) - 1)
    a = np.asarray(x, dtype=dtype).astype(np.float64)
    for layer in range(n_layers - 1):
        has_bias = bias[layer]
        kinked = activations[layer] in ("relu", "leaky_relu")
        for _ in range(100):
            w = weights[layer].astype(dtype).astype(np.float64)
            b = biases[bias_index[layer]].astype(dtype).astype(np.float64) if has_bias else np.zeros(w.shape[1])
            z = a @ w + b
            if not kinked:
                break
            scale = np.abs(a) @ np.abs(w) + np.abs(b)
            near = ((np.abs(z) < margin * (scale + has_bias)) & (scale > 0)).any(axis=0)
            if not near.any():
                break
            fan_in, count = w.shape[0], int(near.sum())
            weights[layer][:, near] = rng.standard_normal((fan_in, count)) * np.sqrt(2 / fan_in)
            if has_bias:  # the only way out for a sample whose inputs to the layer are all 0
                biases[bias_index[layer]][near] = 0.1 * rng.standard_normal(count)
        else:
            raise RuntimeError("could not move the pre-activations away from the ReLU kink")
        a = activate(activations[layer], z, negative_slope)
    return weights


def make_net(net_class, layers, *, x=None, seed=0, **kwargs):
    """Return a ``net_class`` net with the parameters ``make_pair`` gives both of its nets.

    Built with ``seed``; the biases (of the layers that have one) are set to
    small random values (so the bias paths carry weight). With ``x``, the
    hidden weights are adjusted so that no (leaky) ReLU pre-activation on
    ``x`` sits near the kink (see ``clear_relu_kinks``). Depends only on the
    arguments, not on ``net_class``.
    """
    net = net_class(layers, seed=seed, **kwargs)
    rng = np.random.default_rng([seed, 1])
    weights = [w.astype(np.float64) for w in net.weights]
    biases = [0.1 * rng.standard_normal(b.shape) for b in net.biases]
    if x is not None:
        clear_relu_kinks(weights, biases, x, net.dtype, rng, activations=net.activation, bias=net.bias,
                         negative_slope=net.negative_slope)
    net.weights = weights
    net.biases = biases
    return net


def make_pair(layers, *, x=None, seed=0, **kwargs):
    """Return ``(nnfast.Net, nnfast.reference.Net)`` with identical parameters (see ``make_net``)."""
    fast = make_net(nnfast.Net, layers, x=x, seed=seed, **kwargs)
    ref = make_net(nnfast.reference.Net, layers, x=x, seed=seed, **kwargs)
    np.testing.assert_array_equal(params_of(fast), params_of(ref))
    return fast, ref


def random_targets(rng, n_samples, n_out, loss="sse", soft=False):
    """Targets as ``loss`` reads them.

    ``"sse"``/``"mse"``: N(0, 1). ``"cross_entropy"``: class labels ``(n,)``,
    or with ``soft`` class probabilities ``(n, n_out)`` (rows sum to 1).
    ``"binary_cross_entropy"`` and ``"binary_log_loss"``: probabilities in
    [0, 1], with ``soft`` drawn uniformly, else hard 0/1 labels.
    ``"poisson"``: counts, some 0, of log-normal rates. ``"squared_error"``: N(0, 1).
    """
    if loss == "poisson":
        return rng.poisson(rng.lognormal(0.0, 1.0, (n_samples, n_out))).astype(np.float64)
    if loss == "binary_log_loss":
        loss = "binary_cross_entropy"
    if loss == "cross_entropy":
        if soft:
            return rng.dirichlet(np.ones(n_out), n_samples)
        return rng.integers(0, n_out, n_samples)
    if loss == "binary_cross_entropy":
        if soft:
            return rng.uniform(0, 1, (n_samples, n_out))
        return rng.integers(0, 2, (n_samples, n_out)).astype(np.float64)
    return rng.standard_normal((n_samples, n_out))


def random_data(rng, n_samples, layers, loss="sse", soft=False):
    """Inputs drawn from N(0, 1) and targets from ``random_targets``, shaped for ``layers``."""
    x = rng.standard_normal((n_samples, layers[0]))
    y = random_targets(rng, n_samples, layers[-1], loss, soft)
    return x, y

def assert_identical(got, expected, path="result"):
    """Exact equality of nested results (dicts, lists, tuples): same types, dtypes, shapes
    and values, NaN equal to NaN."""
    if isinstance(expected, dict):
        assert isinstance(got, dict) and got.keys() == expected.keys(), path
        for key in expected:
            assert_identical(got[key], expected[key], f"{path}[{key!r}]")
    elif isinstance(expected, (list, tuple)):
        assert isinstance(got, (list, tuple)) and len(got) == len(expected), path
        for i, (a, b) in enumerate(zip(got, expected)):
            assert_identical(a, b, f"{path}[{i}]")
    elif isinstance(expected, np.ndarray):
        assert type(got) is np.ndarray and got.dtype == expected.dtype, f"{path}: {got!r} vs {expected!r}"
        np.testing.assert_array_equal(got, expected, err_msg=path)
    elif isinstance(expected, float) and np.isnan(expected):
        assert isinstance(got, float) and np.isnan(got), f"{path}: {got} vs nan"
    else:
        assert type(got) is type(expected) and got == expected, f"{path}: {got!r} vs {expected!r}"

def random_weights(rng, n_samples, zero_fraction=0.25):
    """Sample weights drawn uniformly from [0.1, 3), about ``zero_fraction`` of them
    exactly 0, never all 0: float64 ``(n_samples,)``."""
    w = rng.uniform(0.1, 3.0, n_samples)
    w[rng.random(n_samples) < zero_fraction] = 0.0
    if not w.any():
        w[rng.integers(n_samples)] = 1.5
    return w


def random_weighted_data(rng, n_samples, layers, loss, soft=False):
    """``random_data`` and ``random_weights``, shaped for ``layers``."""
    x, y = random_data(rng, n_samples, layers, loss, soft)
    return x, y, random_weights(rng, n_samples)


def target_matrix(y, loss, n_out):
    """``y`` as the loss reads it, a float64 ``(n_samples, n_out)`` matrix: class labels become one-hot rows."""
    y = np.asarray(y)
    if loss == "cross_entropy" and y.ndim == 1:
        return np.eye(n_out)[y.astype(np.intp)]
    return y.astype(np.float64).reshape(len(y), n_out)


def per_sample_terms(loss, z, y):
    """Each sample's unweighted loss summed over its outputs (before any averaging), and the
    size of the terms that cancel in it (for tolerances), both float64 ``(n_samples,)``.

    ``z``: outputs ``(n, k)``; ``y``: ``target_matrix``. Written from the
    formulas with SciPy, independently of nnfast's own stable forms.
    """
    if loss in ("sse", "mse"):
        return np.square(z - y).sum(axis=1), (z * z + y * y).sum(axis=1)
    if loss == "squared_error":
        return 0.5 * np.square(z - y).sum(axis=1), 0.5 * (z * z + y * y).sum(axis=1)
    if loss == "cross_entropy":
        log_p = log_softmax(z, axis=1)
        return -(y * log_p).sum(axis=1), (np.abs(y) * (np.abs(z - log_p) + np.abs(z))).sum(axis=1)
    if loss in ("binary_cross_entropy", "binary_log_loss"):
        # -[t log s(z) + (1 - t) log(1 - s(z))] = softplus(z) - t z
        softplus = np.logaddexp(0.0, z)
        return (softplus - y * z).sum(axis=1), (softplus + np.abs(y * z)).sum(axis=1)
    assert loss == "poisson", loss
    terms = np.exp(z) - y * z + xlogy(y, y) - y
    return terms.sum(axis=1), (np.exp(z) + np.abs(y * z) + np.abs(xlogy(y, y)) + y).sum(axis=1)


def central_differences(net, x, y, sample_weight=None, eps=1e-6):
    """d loss / d parameter by central differences, in the ``params_of`` layout (float64 nets).

    Goes through ``weights``/``biases`` (``set_flat_params``) rather than
    ``parameters``, which tests of its own check.
    """
    base = params_of(net)
    grad = np.empty_like(base)
    for i in range(len(base)):
        shifted = base.copy()
        shifted[i] += eps
        set_flat_params(net, shifted)
        plus = net.loss(x, y, sample_weight=sample_weight)
        shifted[i] -= 2 * eps
        set_flat_params(net, shifted)
        minus = net.loss(x, y, sample_weight=sample_weight)
        grad[i] = (plus - minus) / (2 * eps)
    set_flat_params(net, base)
    return grad


def assert_matches_central_differences(analytic, numeric, loss):
    """Assert a float64 gradient equals its central differences (``central_differences``, eps 1e-6).

    Within 1e-6 of the gradient's size, plus the rounding of the differences
    themselves, ~1e-16 * loss / eps: a small weight makes a small gradient,
    which that rounding would otherwise swamp.
    """
    error = np.max(np.abs(analytic - numeric))
    bound = 1e-6 * np.max(np.abs(numeric)) + 100 * np.finfo(np.float64).eps * abs(loss) / 1e-6
    assert error <= bound, f"gradient error {error:.3g} > {bound:.3g} (relative {rel_error(analytic, numeric):.3g})"



def stable_lr(layers, batch_size, loss, activation="relu", negative_slope=0.01):
    """A learning rate small enough that plain SGD cannot diverge on N(0, 1) data.

    The loss's curvature grows with the layer widths, for ``"sse"`` also
    with the number of summed outputs per step, and with a leaky ReLU whose
    slope is above 1, by the square of that slope per hidden layer (the
    gradient passes every one of them, forward and back).
    """
    lr = 1e-2 / max(layers)
    if loss == "sse":
        lr /= batch_size * layers[-1]
    names = [activation] if isinstance(activation, str) else list(activation)
    if "leaky_relu" in names and negative_slope > 1:
        lr /= negative_slope ** (2 * (len(layers) - 2))
    return lr


# -- Hypothesis strategies ----------------------------------------------------

# Narrow widths (the unrolled loops), and wider ones for the blocked kernels'
# tails and full blocks; with a large batch or a wide layer a product goes to
# BLAS (nnfast._matmul.uses_blas_for; test_equivalence.py and test_kernels.py
# put shapes on both sides of that crossover on purpose).
widths = st.one_of(st.integers(1, 8), st.integers(9, 40), st.integers(41, 300))


@st.composite
def architectures(draw, min_hidden=1, max_hidden=4):
    """Layer sizes: input, ``min_hidden``..``max_hidden`` hidden layers, output."""
    n_hidden = draw(st.integers(min_hidden, max_hidden))
    return [draw(widths) for _ in range(n_hidden + 2)]


@st.composite
def activation_options(draw, n_hidden):
    """``activation`` as one name or a per-hidden-layer list, and ``negative_slope``."""
    names = st.sampled_from(ACTIVATIONS)
    activation = draw(st.one_of(names, st.lists(names, min_size=n_hidden, max_size=n_hidden)))
    negative_slope = draw(st.sampled_from([0.0, 0.01, 0.2, 1.0, 3.0]))
    return dict(activation=activation, negative_slope=negative_slope)


@st.composite
def net_configs(draw, max_hidden=4, losses=LOSSES):
    """A random architecture with its options, targets, batch size and data seed."""
    layers = draw(architectures(max_hidden=max_hidden))
    loss = draw(st.sampled_from(losses))
    if loss == "cross_entropy" and layers[-1] < 2:
        layers[-1] = draw(st.integers(2, 8))
    n_layers = len(layers) - 1
    return dict(
        layers=layers,
        bias=draw(st.one_of(st.booleans(), st.lists(st.booleans(), min_size=n_layers, max_size=n_layers))),
        loss=loss,
        soft_targets=draw(st.booleans()),
        dtype=np.dtype(draw(st.sampled_from(DTYPES))),
        n_samples=draw(st.integers(1, 64)),
        seed=draw(st.integers(0, 2**32 - 1)),
        **draw(activation_options(n_layers - 1)),
    )


def rows_filling(limit, depth, itemsize, vector):
    """The most rows of a product with inner slice ``depth`` whose pass over a block of
    columns reads at most ``limit`` bytes (see ``nnfast._matmul.crossover``)."""
    return (limit - 2 * vector * depth) // (itemsize * depth + 2 * vector)


def threshold_depth(facts, itemsize):
    """The longest inner slice, of the full one or shorter ones, at which a block of rows
    fits under the limit in force (an eighth of L1 leaves no room for a full slice)."""
    return next(depth for depth in (facts["depth_slice"], 64, 16, 4, 1)
                if rows_filling(facts["loops_cache_bytes"], depth, itemsize, facts["crossover_vector_bytes"])
                >= facts["block_rows"])
