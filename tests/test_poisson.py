"""The Poisson loss: half the Poisson deviance of exp(output), against independent formulas.

With ``loss="poisson"`` the net's raw output ``z`` (what ``predict``
returns) is the log of the predicted mean; the loss is, per element,
``exp(z) - y z + xlogy(y, y) - y``, summed over the outputs and averaged
over the samples (scikit-learn's half Poisson deviance of ``exp(z)``), and
its gradient w.r.t. ``z`` is ``(exp(z) - y) / n_samples``. Here: closed
forms (scipy's ``xlogy``, scikit-learn's ``mean_poisson_deviance``), the
target checks, the minimum at ``y = exp(z)``, central differences,
``nnfast.Net`` against ``nnfast.reference.Net``, and fitting counts drawn
from a known log-linear model. Sample weights with this loss are tested
with the other losses in test_sample_weight.py.
"""
import copy

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from scipy.special import xlogy

import nnfast
import nnfast.io
import nnfast.reference
from tests.conftest import (
    central_differences,
    ACTIVATIONS,
    DTYPES,
    NET_CLASSES,
    NET_IDS,
    TOL,
    activation_options,
    assert_close,
    flat,
    make_net,
    make_pair,
    net_configs,
    params_of,
    rel_error,
)

# -- helpers ---------------------------------------------------------------------------


def half_deviance(z, y):
    """The elementwise Poisson loss ``exp(z) - y z + xlogy(y, y) - y`` in float64.

    Parameters
    ----------
    z : array_like
        Outputs: logs of the predicted means.
    y : array_like
        Targets >= 0, broadcastable against ``z``; ``xlogy`` makes ``0 log 0 = 0``.

    Returns
    -------
    ndarray of float64
    """
    z, y = np.asarray(z, dtype=np.float64), np.asarray(y, dtype=np.float64)
    return np.exp(z) - y * z + xlogy(y, y) - y


def poisson_loss(z, y):
    """The net's loss as the spec states it: ``half_deviance`` summed over outputs, averaged over samples."""
    return half_deviance(z, y).sum(axis=1).mean()


def loss_scale(z, y):
    """The size of the terms that cancel in the loss: the per-sample mean of
    ``exp(z) + |y z| + |xlogy(y, y)| + y`` summed over outputs.

    Near the minimum the loss is a small difference of these terms, so its
    rounding error is relative to them, not to the loss itself.
    """
    z, y = np.asarray(z, dtype=np.float64), np.asarray(y, dtype=np.float64)
    return (np.exp(z) + np.abs(y * z) + np.abs(xlogy(y, y)) + y).sum(axis=1).mean()


def assert_poisson_loss_close(actual, expected, z, y, dtype, rtol=None, what="loss"):
    """Assert ``|actual - expected| <= rtol * loss_scale(z, y)`` (``rtol`` defaults to ``TOL[dtype]``)."""
    rtol = TOL[np.dtype(dtype)] if rtol is None else rtol
    scale = loss_scale(z, y)
    error = abs(actual - expected)
    assert error <= rtol * scale, f"{what}: {actual} vs {expected}, error {error:.3g} > {rtol:g} * {scale:.3g}"


def logits_net(net_class, logits, dtype=np.float64):
    """A bias-free poisson ``[n, k]`` net whose outputs on ``np.eye(n)`` are ``logits`` (``W = logits``).

    Its weight gradient on ``x = np.eye(n)`` is the gradient w.r.t. the outputs.

    Returns
    -------
    net, x
        The net and ``np.eye(n)``.
    """
    logits = np.asarray(logits, dtype=np.float64)
    net = net_class(list(logits.shape), loss="poisson", bias=False, dtype=dtype)
    net.weights = [logits]
    return net, np.eye(logits.shape[0])


def count_targets(rng, n_samples, n_out, zeros=True):
    """Poisson counts with log-normal means (so some are 0), as float64 ``(n_samples, n_out)``.

    With ``zeros``, the first row is all zeros whatever was drawn, so that
    every test on these targets sees the ``0 log 0`` term.
    """
    y = rng.poisson(rng.lognormal(0.0, 1.0, (n_samples, n_out))).astype(np.float64)
    if zeros:
        y[0] = 0.0
    return y


def count_data(rng, n_samples, layers):
    """N(0, 1) inputs and ``count_targets`` shaped for ``layers``."""
    return rng.standard_normal((n_samples, layers[0])), count_targets(rng, n_samples, layers[-1])


def assert_gradients_match_central_differences(net, x, y):
    """The net's float64 gradient equals the central-difference gradient of its loss.

    The loss is smooth in the outputs (exp), so away from ReLU kinks
    (``make_net`` with ``x`` keeps pre-activations off them) the truncation
    error is ~eps**2 times a third derivative: far below 1e-6.
    """
    before = params_of(net)
    numeric = central_differences(net, x, y)
    assert np.abs(numeric).max() > 0  # a zero gradient would make the check vacuous
    error = rel_error(flat(net.gradients(x, y)), numeric)
    assert error < 1e-6, error
    np.testing.assert_array_equal(params_of(net), before)  # the perturbations were undone


# Logits from e^-3 to e^3 as means, and targets with zeros, counts and non-integer rates.
LOGITS = np.array([[0.0, -3.0, 1.5], [2.0, 0.5, -1.0], [-0.25, 3.0, 0.0], [1.0, -2.0, 0.75]])
TARGETS = np.array([[0.0, 0.0, 4.0], [7.0, 1.0, 0.0], [0.5, 20.0, 1.0], [2.5, 0.0, 3.0]])


# -- the formula -------------------------------------------------------------------------


def test_hand_worked_poisson_loss(net_class, dtype):
    """Outputs 0 (mean 1) against y = 0, 1, 3: exact arithmetic but for 3 log 3.

    Per sample exp(0) - y*0 + xlogy(y, y) - y:
      y = 0: 1 - 0 + 0 - 0 = 1   (0 log 0 = 0)
      y = 1: 1 - 0 + 0 - 1 = 0   (the minimum: the mean is the target)
      y = 3: 1 - 0 + 3 log 3 - 3 = 3 log 3 - 2
    loss = (3 log 3 - 1) / 3; gradient (exp(0) - y) / 3 = (1/3, 0, -2/3).
    """
    net, x = logits_net(net_class, np.zeros((3, 1)), dtype)
    y = np.array([0.0, 1.0, 3.0])
    assert net.loss(x, y) == pytest.approx((3 * np.log(3) - 1) / 3, rel=4 * float(np.finfo(dtype).eps))
    np.testing.assert_allclose(net.gradients(x, y)[0][0][:, 0], [1 / 3, 0.0, -2 / 3],
                               rtol=4 * np.finfo(dtype).eps, atol=0)
    # The middle sample alone sits exactly at its minimum.
    assert net.loss(x[1:2], y[1:2]) == 0.0
    assert np.all(net.gradients(x[1:2], y[1:2])[0][0] == 0.0)


def test_loss_and_gradient_are_the_closed_form(net_class, dtype):
    """Multi-output: the loss is the per-sample sum of half deviances, averaged; the
    output gradient is (exp(z) - y) / n_samples. float32 rounds the logits first."""
    net, x = logits_net(net_class, LOGITS, dtype)
    z = LOGITS.astype(dtype)  # what the net holds and outputs
    np.testing.assert_array_equal(net.predict(x), z)
    rtol = 1e-12 if dtype == np.float64 else TOL[dtype]
    loss = net.loss(x, TARGETS)
    assert isinstance(loss, float)
    assert_poisson_loss_close(loss, poisson_loss(z, TARGETS), z, TARGETS, dtype, rtol)
    expected_grad = (np.exp(z.astype(np.float64)) - TARGETS) / len(TARGETS)
    grad = net.gradients(x, TARGETS)[0][0]
    assert grad.dtype == dtype
    assert rel_error(grad, expected_grad) <= rtol


def test_loss_is_scikit_learns_half_mean_poisson_deviance(net_class):
    """Against scikit-learn's public ``mean_poisson_deviance`` (twice the half deviance),
    one output at a time, with and without sample weights."""
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    z = rng.normal(0.0, 1.0, (9, 3))
    y = count_targets(rng, 9, 3)
    w = rng.uniform(0.0, 2.0, 9)
    w[[2, 5]] = 0.0
    net, x = logits_net(net_class, z)
    for weights in [None, w]:
        # Per output j: sum_i w_i l_ij / sum_i w_i; the net sums those over the outputs.
        expected = sum(metrics.mean_poisson_deviance(y[:, j], np.exp(z[:, j]), sample_weight=weights) / 2
                       for j in range(3))
        kwargs = {} if weights is None else dict(sample_weight=weights)
        assert net.loss(x, y, **kwargs) == pytest.approx(expected, rel=1e-12)


def test_zero_targets_cost_the_predicted_mean(net_class, dtype):
    """y = 0: 0 log 0 counts as 0, so each element costs exp(z) (no NaN from 0 * log 0),
    and the gradient is exp(z) / n, pushing the mean down, however small it already is."""
    z = np.array([[-30.0, 0.0], [2.0, -1.0], [0.5, 5.0]])
    net, x = logits_net(net_class, z, dtype)
    y = np.zeros_like(z)
    z = z.astype(dtype).astype(np.float64)
    loss = net.loss(x, y)
    assert np.isfinite(loss)
    assert loss == pytest.approx(np.exp(z).sum() / 3, rel=4 * float(np.finfo(dtype).eps))
    grad = net.gradients(x, y)[0][0]
    assert np.all(np.isfinite(grad)) and np.all(grad > 0)
    np.testing.assert_allclose(grad, np.exp(z) / 3, rtol=4 * np.finfo(dtype).eps, atol=0)
    # A row of zeros among counts: the other rows' terms are untouched by it.
    y[1] = [3.0, 1.0]
    assert_poisson_loss_close(net.loss(x, y), poisson_loss(z, y), z, y, dtype)


def test_negative_zero_target_is_zero(net_class, dtype):
    """-0.0 is >= 0: accepted, and the same as 0.0 (0 log 0 = 0, not -0 * log(-0) = NaN)."""
    net, x = logits_net(net_class, LOGITS, dtype)
    y, y_negative_zero = TARGETS.copy(), TARGETS.copy()
    y_negative_zero[y == 0] = -0.0
    assert np.signbit(y_negative_zero).any()
    loss = net.loss(x, y)
    assert net.loss(x, y_negative_zero) == loss and np.isfinite(loss)
    np.testing.assert_array_equal(net.gradients(x, y_negative_zero)[0][0], net.gradients(x, y)[0][0])


def test_non_integer_rates_are_accepted(net_class):
    """Targets need not be counts: any finite y >= 0 is a rate, with the same formula."""
    rng = np.random.default_rng(1)
    z = rng.normal(0.0, 1.0, (6, 2))
    y = rng.uniform(0.0, 5.0, (6, 2))
    assert np.any(y != np.floor(y))
    net, x = logits_net(net_class, z)
    assert_poisson_loss_close(net.loss(x, y), poisson_loss(z, y), z, y, np.float64, 1e-12)


def test_one_output_takes_1d_targets(net_class, dtype):
    """One output: y of shape (n,) means exactly y of shape (n, 1), for every operation."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((9, 3))
    y = count_targets(rng, 9, 1)
    net = make_net(net_class, [3, 5, 1], x=x, seed=3, loss="poisson", dtype=dtype)
    assert net.loss(x, y[:, 0]) == net.loss(x, y)
    np.testing.assert_array_equal(flat(net.gradients(x, y[:, 0])), flat(net.gradients(x, y)))
    a, b = copy.deepcopy(net), copy.deepcopy(net)
    assert a.train_step(x, y[:, 0], 0.01) == b.train_step(x, y, 0.01)
    np.testing.assert_array_equal(params_of(a), params_of(b))
    kwargs = dict(epochs=2, lr=0.01, batch_size=4, seed=0)
    np.testing.assert_array_equal(a.fit(x, y[:, 0], **kwargs).loss, b.fit(x, y, **kwargs).loss)
    np.testing.assert_array_equal(params_of(a), params_of(b))


# -- targets -----------------------------------------------------------------------------


def training_calls():
    """Every call that reads targets, as ``(id, call(net, x, y))``."""
    return [
        ("loss", lambda net, x, y: net.loss(x, y)),
        ("gradients", lambda net, x, y: net.gradients(x, y)),
        ("train_step", lambda net, x, y: net.train_step(x, y, 0.01)),
        ("fit", lambda net, x, y: net.fit(x, y, epochs=1, lr=0.01)),
        ("partial_fit", lambda net, x, y: net.partial_fit(x, y, lr=0.01)),
        ("fit-validation_data", lambda net, x, y: net.fit(np.abs(x), np.abs(y), epochs=1, lr=0.01,
                                                          validation_data=(x, y))),
    ]


CALLS = training_calls()


@pytest.mark.parametrize("bad", [-1.0, -0.5, -1e-300], ids=["minus-one", "minus-half", "tiny-negative"])
@pytest.mark.parametrize("call", [c for _, c in CALLS], ids=[name for name, _ in CALLS])
def test_negative_targets_are_rejected(net_class, call, bad):
    """A negative target raises ValueError naming y and loss='poisson', and trains nothing."""
    x = np.ones((4, 2))
    y = np.array([[1.0, 0.0], [2.0, 3.0], [0.0, bad], [1.0, 1.0]])
    net = net_class([2, 3, 2], loss="poisson", seed=0)
    before = params_of(net)
    with pytest.raises(ValueError, match=r"(?s)(\by\b.*loss='poisson'|loss='poisson'.*\by\b)"):
        call(net, x, y)
    np.testing.assert_array_equal(params_of(net), before)


def test_negative_1d_target_is_rejected(net_class):
    """The 1-D form of one output's targets is checked too."""
    net = net_class([2, 1], loss="poisson", seed=0)
    with pytest.raises(ValueError, match="loss='poisson'"):
        net.loss(np.ones((3, 2)), np.array([1.0, -2.0, 0.0]))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "minus-inf"])
def test_non_finite_targets_are_rejected(net_class, bad):
    """Targets must be finite: +inf is >= 0 but still refused."""
    net = net_class([2, 2], loss="poisson", seed=0)
    y = np.ones((3, 2))
    y[1, 0] = bad
    for call in (lambda: net.loss(np.ones((3, 2)), y), lambda: net.train_step(np.ones((3, 2)), y, 0.01)):
        with pytest.raises(ValueError, match=r"\by\b"):
            call()


# -- the minimum -------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
def test_the_minimum_is_at_the_target(net_class, dtype):
    """y = exp(z): the loss is 0 and the gradient 0 up to rounding, and moving any
    output either way raises the loss (by about y h^2 / 2 per element)."""
    rng = np.random.default_rng(3)
    z = rng.uniform(-2.0, 2.0, (7, 3)).astype(dtype).astype(np.float64)
    y = np.exp(z)  # in float64: the net's own exp(z) differs from it by rounding only
    net, x = logits_net(net_class, z, dtype)
    eps = np.finfo(dtype).eps
    loss = net.loss(x, y)
    assert abs(loss) <= 16 * eps * loss_scale(z, y)
    grad = net.gradients(x, y)[0][0]
    assert np.max(np.abs(grad)) <= 16 * eps * y.max() / len(y)
    h = 0.01
    for sign in (1.0, -1.0):
        for i, j in [(0, 0), (3, 1), (6, 2)]:
            moved = z.copy()
            moved[i, j] += sign * h
            net.weights = [moved]
            increase = net.loss(x, y) - loss
            expected = y[i, j] * (np.exp(sign * h) - 1 - sign * h) / len(y)  # exact: the other terms cancel
            assert increase > 0
            assert increase == pytest.approx(expected, rel=0.01 if dtype == np.float64 else 0.2)


@given(z=st.lists(st.floats(-20, 20), min_size=1, max_size=12),
       y=st.lists(st.one_of(st.just(0.0), st.floats(0, 1e4)), min_size=12, max_size=12))
def test_loss_is_never_negative(z, y):
    """Half the deviance is >= 0 for every mean and target (0 only at y = exp(z)), up to rounding."""
    z = np.array(z)[:, np.newaxis]
    y = np.array(y[: len(z)])
    net, x = logits_net(nnfast.reference.Net, z)
    loss = net.loss(x, y)
    assert loss >= -1e-13 * loss_scale(z, y[:, np.newaxis])
    assert_poisson_loss_close(loss, poisson_loss(z, y[:, np.newaxis]), z, y[:, np.newaxis], np.float64, 1e-12)


# -- gradients ---------------------------------------------------------------------------


@pytest.mark.parametrize("net_class", NET_CLASSES, ids=NET_IDS)
@given(layers=st.lists(st.integers(1, 6), min_size=2, max_size=4), n_samples=st.integers(1, 6),
       bias=st.booleans(), seed=st.integers(0, 2**32 - 1), data=st.data())
def test_gradients_match_central_differences(net_class, layers, n_samples, bias, seed, data):
    """float64 gradients equal central differences of the loss, for random architectures,
    activations (one or per layer), slopes, biases and count targets."""
    options = data.draw(activation_options(len(layers) - 2))
    rng = np.random.default_rng(seed)
    x, y = count_data(rng, n_samples, layers)
    net = make_net(net_class, layers, x=x, seed=seed, bias=bias, loss="poisson", **options)
    numeric = central_differences(net, x, y)
    assert rel_error(flat(net.gradients(x, y)), numeric) < 1e-6


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_every_activation_matches_central_differences(net_class, activation):
    """Each activation, two hidden layers, three outputs."""
    layers = [3, 5, 4, 3]
    x, y = count_data(np.random.default_rng(4), 6, layers)
    net = make_net(net_class, layers, x=x, seed=5, activation=activation, loss="poisson", negative_slope=0.1)
    assert_gradients_match_central_differences(net, x, y)


def test_per_layer_options_match_central_differences(net_class):
    """Per-layer activations and biases, and a single output with 1-D targets."""
    layers = [4, 5, 3, 1]
    x, y = count_data(np.random.default_rng(6), 7, layers)
    net = make_net(net_class, layers, x=x, seed=7, loss="poisson", activation=["sigmoid", "leaky_relu"],
                   negative_slope=0.3, bias=[False, True, True])
    assert_gradients_match_central_differences(net, x, y[:, 0])


# -- nnfast.Net against the reference -----------------------------------------------------

OPTIMIZERS = {
    "sgd": lambda lr, eps: nnfast.SGD(lr),
    "momentum": lambda lr, eps: nnfast.SGD(lr, momentum=0.9),
    "nesterov-weight-decay": lambda lr, eps: nnfast.SGD(lr, momentum=0.5, nesterov=True, weight_decay=0.1),
    "adam": lambda lr, eps: nnfast.Adam(lr, eps=eps),
    "adamw": lambda lr, eps: nnfast.AdamW(lr, eps=eps, weight_decay=0.1),
}


def adam_eps(dtype):
    """Adam's eps for comparisons: above float32's rounding of a gradient entry that
    cancels to ~0 (else the two nets' updates of that entry differ by lr * rounding / eps)."""
    return 1e-8 if np.dtype(dtype) == np.float64 else 1e-3


def assert_poisson_agrees(fast, ref, x, y, lr, optimizer="sgd", batch_size=5, shuffle=True):
    """predict, loss, gradients, a train_step and a 3-epoch fit of ``fast`` match ``ref``."""
    dtype = ref.dtype
    z = ref.predict(x)
    assert_close(fast.predict(x), z, dtype, "predict")
    loss = fast.loss(x, y)
    assert isinstance(loss, float)
    assert_poisson_loss_close(loss, ref.loss(x, y), z, y, dtype)
    assert_close(fast.gradients(x, y), ref.gradients(x, y), dtype, "gradients")
    assert_poisson_loss_close(fast.train_step(x, y, lr), ref.train_step(x, y, lr), z, y, dtype, what="train_step")
    assert_close(params_of(fast), params_of(ref), dtype, "parameters after train_step")
    histories = [net.fit(x, y, epochs=3, batch_size=batch_size, shuffle=shuffle, seed=11,
                         optimizer=OPTIMIZERS[optimizer](lr, adam_eps(dtype))) for net in (fast, ref)]
    # Losses near the minimum are small differences of the terms: measured against their size.
    for what in ("loss", "epoch_loss"):
        got, expected = getattr(histories[0], what), getattr(histories[1], what)
        assert got.shape == expected.shape
        scale = max(np.abs(expected).max(), loss_scale(z, y))
        error = np.abs(got - expected).max() / scale
        assert error <= TOL[dtype], f"fit {what}: error {error:.3g} of {scale:.3g} > {TOL[dtype]:g}"
    assert_close(params_of(fast), params_of(ref), dtype, "parameters after fit")


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_every_activation_matches_reference(activation, dtype):
    """Each activation: evaluation, a train_step and a shuffled mini-batch fit."""
    layers = [4, 7, 5, 3]
    x, y = count_data(np.random.default_rng(8), 12, layers)
    fast, ref = make_pair(layers, x=x, seed=9, loss="poisson", activation=activation, dtype=dtype,
                          negative_slope=0.1)
    assert_poisson_agrees(fast, ref, x, y, lr=1e-2)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("shuffle, batch_size", [(True, 5), (True, 4), (False, 5), (False, 12)],
                         ids=["shuffled-uneven", "shuffled-even", "unshuffled-uneven", "full-batch"])
@pytest.mark.parametrize("optimizer", OPTIMIZERS.keys())
def test_every_optimizer_matches_reference(optimizer, shuffle, batch_size, dtype):
    """Each optimizer, shuffled or not, batches that do and do not divide the 12 samples."""
    layers = [3, 9, 2]
    x, y = count_data(np.random.default_rng(10), 12, layers)
    fast, ref = make_pair(layers, x=x, seed=12, loss="poisson", activation="tanh", dtype=dtype)
    assert_poisson_agrees(fast, ref, x, y, lr=1e-2, optimizer=optimizer, batch_size=batch_size, shuffle=shuffle)


@given(config=net_configs(max_hidden=3, losses=["poisson"]), batch_size=st.integers(1, 20))
def test_random_nets_match_reference(config, batch_size):
    """Random architectures (both sides of the BLAS threshold), options and dtypes."""
    rng = np.random.default_rng(config["seed"])
    x, y = count_data(rng, config["n_samples"], config["layers"])
    fast, ref = make_pair(config["layers"], x=x, seed=config["seed"], bias=config["bias"], loss="poisson",
                          dtype=config["dtype"], activation=config["activation"],
                          negative_slope=config["negative_slope"])
    # Steep leaky ReLUs stacked can give outputs of 100 and more: means beyond float32.
    assume(np.abs(ref.predict(x)).max() < 20)
    # The loss's curvature grows with the predicted means exp(z) (and, as for
    # stable_lr, with the widths): a random net's outputs can reach exp(10).
    means = np.exp(ref.predict(x).astype(np.float64))
    lr = 1e-3 / (max(config["layers"]) * max(1.0, means.max()))
    assert_poisson_agrees(fast, ref, x, y, lr=lr, batch_size=batch_size)


# -- training ----------------------------------------------------------------------------

# A log-linear (Poisson GLM) model: the mean count of x is exp(x @ BETA + INTERCEPT).
BETA = np.array([0.5, -0.3, 0.2])
INTERCEPT = 0.3


def log_linear_counts(rng, n_samples):
    """Inputs from N(0, 1) and counts drawn from the log-linear model ``BETA``, ``INTERCEPT``."""
    x = rng.standard_normal((n_samples, len(BETA)))
    return x, rng.poisson(np.exp(x @ BETA + INTERCEPT)).astype(np.float64)


def maximum_likelihood(x, y, iterations=25):
    """The Poisson GLM's maximum-likelihood ``(coefficients, intercept)`` by Newton's method.

    The mean loss is convex in ``theta = (coefficients, intercept)``, with
    gradient ``X1.T (mu - y) / n`` and Hessian ``X1.T diag(mu) X1 / n``
    (``X1 = [x, 1]``, ``mu = exp(X1 theta)``); from 0, Newton converges
    quadratically here.
    """
    x1 = np.column_stack([x, np.ones(len(x))])
    theta = np.zeros(x1.shape[1])
    for _ in range(iterations):
        mu = np.exp(x1 @ theta)
        gradient = x1.T @ (mu - y) / len(y)
        hessian = (x1 * mu[:, np.newaxis]).T @ x1 / len(y)
        theta -= np.linalg.solve(hessian, gradient)
    assert np.abs(gradient).max() < 1e-12, "Newton's method did not converge"
    return theta[:-1], theta[-1]


def test_fit_finds_the_maximum_likelihood_log_linear_model(net_class, dtype):
    """A [3, 1] poisson net is a Poisson GLM: fitted with full-batch Adam to 4000 counts
    from a known log-linear model, it reaches the maximum-likelihood estimate
    (Newton's method, above), which itself lies close to the model's coefficients."""
    x, y = log_linear_counts(np.random.default_rng(13), 4000)
    coefficients, intercept = maximum_likelihood(x, y)
    # 4000 samples pin the estimate down to a few hundredths: the data are as intended.
    np.testing.assert_allclose(coefficients, BETA, atol=0.05)
    assert abs(intercept - INTERCEPT) < 0.05
    net = net_class([3, 1], loss="poisson", dtype=dtype, seed=14)
    start = net.loss(x, y)
    history = net.fit(x, y, epochs=300, optimizer=nnfast.Adam(0.05))
    assert np.all(np.isfinite(history.loss)) and history.loss[-1] < history.loss[0]
    np.testing.assert_allclose(net.weights[0][:, 0], coefficients, atol=1e-4)
    np.testing.assert_allclose(net.biases[0], [intercept], atol=1e-4)
    best = nnfast.reference.Net([3, 1], loss="poisson")
    best.weights, best.biases = [coefficients[:, np.newaxis]], [np.array([intercept])]
    fitted = net.loss(x, y)
    assert fitted < 0.5 * start
    assert abs(fitted - best.loss(x, y)) <= 1e-6 * loss_scale(best.predict(x), y[:, np.newaxis])
    # The raw output is the log of the mean; at the estimate the mean count is the
    # mean target (the intercept's gradient, sum(exp(z) - y), is 0).
    assert np.exp(net.predict(x).astype(np.float64)).mean() == pytest.approx(y.mean(), rel=1e-4)


def test_fit_with_a_hidden_layer_reduces_the_loss(net_class, dtype):
    """A tanh net fitted to the same kind of counts: every epoch's loss is finite and the
    last epoch's is well below the first's; validation loss is recorded, no accuracy."""
    x, y = log_linear_counts(np.random.default_rng(16), 600)
    net = net_class([3, 8, 1], activation="tanh", loss="poisson", dtype=dtype, seed=17)
    start = net.loss(x, y)
    history = net.fit(x, y, epochs=20, batch_size=32, optimizer=nnfast.Adam(0.01), seed=18,
                      validation_fraction=0.25)
    assert np.all(np.isfinite(history.epoch_loss))
    assert history.epoch_loss[-1] < 0.9 * history.epoch_loss[0]
    assert net.loss(x, y) < 0.9 * start
    assert history.val_loss is not None and np.all(np.isfinite(history.val_loss))
    assert history.val_loss[-1] < history.val_loss[0]
    assert history.val_accuracy is None  # a regression loss: there is nothing to classify


def test_poisson_net_round_trips(tmp_path, net_class, dtype):
    """Saved and loaded, a poisson net keeps its loss: same outputs and same loss on counts."""
    x, y = log_linear_counts(np.random.default_rng(19), 20)
    net = net_class([3, 4, 1], loss="poisson", dtype=dtype, seed=20)
    net.fit(x, y, epochs=2, lr=0.01, seed=0)
    loaded = nnfast.io.load(nnfast.io.save(net, tmp_path / "net.npz"))
    assert type(loaded) is net_class and loaded.loss_name == "poisson"
    np.testing.assert_array_equal(loaded.predict(x), net.predict(x))
    assert loaded.loss(x, y) == net.loss(x, y)
    copied = copy.deepcopy(net)
    assert copied.loss_name == "poisson" and copied.loss(x, y) == net.loss(x, y)
