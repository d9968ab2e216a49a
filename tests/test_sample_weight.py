"""sample_weight: per-sample weights in every loss, on both nets, against the spec's formulas.

Per evaluated batch with weights ``w`` summing to ``W`` (in float64), ``k``
outputs and ``l`` the loss's per-element (or, for cross_entropy, per-sample)
terms: sse is ``sum_i w_i sum_j d_ij^2``, mse that over ``W k``,
cross_entropy ``sum_i w_i l_i / W``, binary_cross_entropy
``sum_i w_i sum_j l_ij / (W k)``, poisson ``sum_i w_i sum_j l_ij / W``;
gradients are those of these losses. All-zero weights give loss 0 and
gradient 0; weights of one give bit for bit what no weights give. In
``fit`` each batch uses its own ``W``, ``validation_fraction`` splits the
weights with the samples and validation losses are unweighted.

Here: the closed forms, central differences, the properties (unit weights,
repeated and removed rows, scaling), ``fit``'s batching, ``nnfast.Net``
against ``nnfast.reference.Net``, and what is accepted and refused.
"""
import copy

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from scipy.special import expit, softmax

import nnfast
import nnfast.reference
from nnfast import _random
from tests.conftest import (
    ACTIVATIONS,
    DTYPES,
    LOSSES,
    NET_CLASSES,
    NET_IDS,
    TOL,
    activation_options,
    assert_close,
    assert_identical,
    flat,
    make_net,
    make_pair,
    net_configs,
    params_of,
    random_weighted_data,
    target_matrix,
    per_sample_terms,
    central_differences,
    assert_matches_central_differences,
    rel_error,
    stable_lr,
)

# Every loss, poisson included (spelled out in case conftest's list predates it).
ALL_LOSSES = list(dict.fromkeys([*LOSSES, "poisson"]))

# -- helpers ---------------------------------------------------------------------------


def normalizer(loss, w, n_out):
    """What the spec divides the weighted sum by: 1 for sse, ``W k`` for mse and
    binary_cross_entropy, ``W`` for cross_entropy and poisson (``W = sum(w)``)."""
    total = float(np.sum(w, dtype=np.float64))
    if loss == "sse":
        return 1.0
    return total * n_out if loss in ("mse", "binary_cross_entropy") else total


def expected_loss(loss, z, y, w=None):
    """The spec's weighted loss of outputs ``z`` against ``y``, and its scale for tolerances.

    Parameters
    ----------
    loss : str
    z : array_like, shape (n_samples, n_out)
    y : array_like
        Targets as the net takes them.
    w : array_like, shape (n_samples,), optional
        Weights; None means all ones.

    Returns
    -------
    loss, scale : float
        ``scale`` is the same weighted mean of the terms' sizes (``per_sample_terms``).
        Both are 0 when all weights are 0.
    """
    z = np.asarray(z, dtype=np.float64)
    y = target_matrix(y, loss, z.shape[1])
    w = np.ones(len(z)) if w is None else np.asarray(w, dtype=np.float64)
    values, sizes = per_sample_terms(loss, z, y)
    if not w.any():
        return 0.0, 0.0
    norm = normalizer(loss, w, z.shape[1])
    return float(w @ values) / norm, float(w @ sizes) / norm


def expected_output_gradient(loss, z, y, w=None):
    """The gradient of ``expected_loss`` w.r.t. the outputs ``z``, float64 ``(n_samples, n_out)``."""
    z = np.asarray(z, dtype=np.float64)
    y = target_matrix(y, loss, z.shape[1])
    w = np.ones(len(z)) if w is None else np.asarray(w, dtype=np.float64)
    if not w.any():
        return np.zeros_like(z)
    if loss in ("sse", "mse"):
        per_element = 2 * (z - y)
    elif loss == "cross_entropy":
        # d/dz of sum_k y_k (logsumexp(z) - z_k): rows of y need not sum to 1.
        per_element = softmax(z, axis=1) * y.sum(axis=1, keepdims=True) - y
    elif loss == "binary_cross_entropy":
        per_element = expit(z) - y
    else:
        per_element = np.exp(z) - y
    return w[:, np.newaxis] * per_element / normalizer(loss, w, z.shape[1])


def assert_loss_close(actual, expected, scale, dtype, rtol=None, what="loss"):
    """Assert ``|actual - expected| <= rtol * scale`` (``rtol`` defaults to ``TOL[dtype]``).

    ``scale`` is the size of the terms that cancel (``expected_loss``): a
    loss near its minimum is a small difference of large terms, whose
    rounding error is relative to them. A scale of 0 demands equality.
    """
    rtol = TOL[np.dtype(dtype)] if rtol is None else rtol
    error = abs(actual - expected)
    assert error <= rtol * scale, f"{what}: {actual} vs {expected}, error {error:.3g} > {rtol:g} * {scale:.3g}"


def logits_net(net_class, logits, loss, dtype=np.float64):
    """A bias-free ``[n, k]`` net whose outputs on ``np.eye(n)`` are ``logits`` (``W = logits``).

    Its weight gradient on ``x = np.eye(n)`` is the gradient w.r.t. the outputs.

    Returns
    -------
    net, x
    """
    logits = np.asarray(logits, dtype=np.float64)
    net = net_class(list(logits.shape), loss=loss, bias=False, dtype=dtype)
    net.weights = [logits]
    return net, np.eye(logits.shape[0])


def weighted_lr(layers, batch_size, loss, w, net=None, x=None):
    """``stable_lr`` for weighted data: sse's curvature grows with the weights, and
    poisson's with the predicted means ``exp(net.predict(x))``."""
    lr = stable_lr(layers, batch_size, loss)
    if loss == "sse":
        lr /= max(1.0, float(np.max(w)))
    if loss == "poisson" and net is not None:
        lr /= max(1.0, float(np.exp(net.predict(x).astype(np.float64)).max()))
    return lr


def adam_eps(dtype):
    """Adam's eps for comparisons (see test_equivalence.py): above float32's rounding
    of a gradient entry that cancels to ~0, whose update would be lr * rounding / eps."""
    return 1e-8 if np.dtype(dtype) == np.float64 else 1e-3


# Optimizers as factories of the learning rate and Adam's eps.
OPTIMIZERS = {
    "sgd": lambda lr, eps: nnfast.SGD(lr),
    "momentum": lambda lr, eps: nnfast.SGD(lr, momentum=0.9),
    "nesterov": lambda lr, eps: nnfast.SGD(lr, momentum=0.5, nesterov=True),
    "sgd-weight-decay": lambda lr, eps: nnfast.SGD(lr, momentum=0.5, weight_decay=0.1),
    "adam": lambda lr, eps: nnfast.Adam(lr, eps=eps),
    "adamw": lambda lr, eps: nnfast.AdamW(lr, eps=eps, weight_decay=0.1),
}


def optimizer_for(name, lr, dtype):
    """A fresh optimizer ``name``; Adam's take lr 1e-3, whatever the gradient's scale."""
    return OPTIMIZERS[name](1e-3 if name.startswith("adam") else lr, adam_eps(dtype))


# Logits and, per loss, targets on which the closed forms are checked.
LOGITS = np.array([[2.0, -1.0, 0.5], [0.0, 0.0, 0.0], [-3.0, 2.5, 1.0], [1.0, 1.0, -2.0], [0.5, -0.5, 1.5]])
CLOSED_FORM_TARGETS = {
    "sse": np.array([[1.0, 0.0, -1.0], [2.0, 0.5, 0.0], [0.0, 0.0, 0.0], [1.0, -1.0, 3.0], [-2.0, 1.0, 0.5]]),
    "cross_entropy-labels": np.array([0, 2, 1, 1, 2]),
    "cross_entropy-probabilities": np.array([[0.7, 0.2, 0.1], [1 / 3, 1 / 3, 1 / 3], [0.0, 0.5, 0.5],
                                             [0.0, 0.0, 1.0], [0.25, 0.25, 0.5]]),
    "binary_cross_entropy": np.array([[1.0, 0.0, 0.3], [0.5, 1.0, 0.0], [0.0, 1.0, 1.0], [0.9, 0.1, 0.0],
                                      [1.0, 1.0, 0.0]]),
    "poisson": np.array([[0.0, 0.0, 4.0], [7.0, 1.0, 0.0], [0.5, 20.0, 1.0], [2.0, 0.0, 3.0], [1.0, 1.0, 0.0]]),
}
CLOSED_FORM_TARGETS["mse"] = CLOSED_FORM_TARGETS["sse"]
# Zeros, fractions and a large weight: W = 5.75, not the row count.
CLOSED_FORM_WEIGHTS = np.array([0.5, 0.0, 2.0, 0.25, 3.0])


# -- the closed forms --------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(CLOSED_FORM_TARGETS))
def test_weighted_loss_and_output_gradient_are_the_closed_form(net_class, dtype, case):
    """Each loss's weighted value and its gradient w.r.t. the outputs, against the spec's
    formulas written with SciPy; float32 rounds the logits (and weights) first."""
    loss = case.split("-")[0]
    y = CLOSED_FORM_TARGETS[case]
    net, x = logits_net(net_class, LOGITS, loss, dtype)
    z = LOGITS.astype(dtype).astype(np.float64)
    w = CLOSED_FORM_WEIGHTS
    rtol = 1e-12 if dtype == np.float64 else TOL[dtype]
    value = net.loss(x, y, sample_weight=w)
    assert isinstance(value, float)
    expected, scale = expected_loss(loss, z, y, w)
    assert_loss_close(value, expected, scale, dtype, rtol)
    # The weights matter: the unweighted loss is another number.
    unweighted, _ = expected_loss(loss, z, y)
    assert abs(unweighted - expected) > 100 * rtol * scale
    grad = net.gradients(x, y, sample_weight=w)[0][0]
    assert grad.dtype == dtype
    expected_grad = expected_output_gradient(loss, z, y, w)
    assert rel_error(grad, expected_grad) <= rtol
    # Zero-weight rows get exactly zero gradient.
    assert np.all(grad[w == 0] == 0)


def test_hand_worked_weighted_mse(net_class):
    """A [2, 1] linear net by hand: outputs (-0.5, 3.5, 0.5), targets (1, 1, 0), weights (2, 0, 1).

    Parameters (1, -1) and bias 0.5: out = (1 - 2, 3 - 0, 1 - 1) + 0.5.
    d = (-1.5, 2.5, 0.5); sum_i w_i d_i^2 = 2 * 2.25 + 0 * 6.25 + 1 * 0.25 = 4.75
    = sse (exact in binary); W = 3, k = 1: mse = 4.75 / 3. Output gradient of
    mse, 2 w d / (W k): (2 * 2 * -1.5, 0, 2 * 1 * 0.5) / 3 = (-2, 0, 1/3);
    d/dparameters = x.T @ that = (1 * -2 + 3 * 0 + 1 * 1/3, 2 * -2 + 0 * 0 + 1 * 1/3)
    = (-5/3, -11/3); d/dbias = -2 + 0 + 1/3 = -5/3. sse's are 3 times those.
    """
    x = np.array([[1.0, 2.0], [3.0, 0.0], [1.0, 1.0]])
    y = np.array([1.0, 1.0, 0.0])
    w = np.array([2.0, 0.0, 1.0])
    nets = {loss: net_class([2, 1], loss=loss) for loss in ("sse", "mse")}
    for net in nets.values():
        net.weights, net.biases = [np.array([[1.0], [-1.0]])], [np.array([0.5])]
        np.testing.assert_array_equal(net.predict(x)[:, 0], [-0.5, 3.5, 0.5])
    assert nets["sse"].loss(x, y, sample_weight=w) == 4.75
    assert nets["mse"].loss(x, y, sample_weight=w) == pytest.approx(4.75 / 3, rel=1e-15)
    for loss, factor in [("mse", 1.0), ("sse", 3.0)]:
        (grad_w,), (grad_b,) = nets[loss].gradients(x, y, sample_weight=w)
        np.testing.assert_allclose(grad_w[:, 0], factor * np.array([-5 / 3, -11 / 3]), rtol=1e-15)
        np.testing.assert_allclose(grad_b, [factor * -5 / 3], rtol=1e-15)


# -- central differences ------------------------------------------------------------------


@pytest.mark.parametrize("net_class", NET_CLASSES, ids=NET_IDS)
@given(layers=st.lists(st.integers(1, 6), min_size=2, max_size=4), n_samples=st.integers(1, 6),
       bias=st.booleans(), loss=st.sampled_from(ALL_LOSSES), soft=st.booleans(),
       seed=st.integers(0, 2**32 - 1), data=st.data())
def test_weighted_gradients_match_central_differences(net_class, layers, n_samples, bias, loss, soft, seed, data):
    """float64 weighted gradients equal central differences of the weighted loss, for random
    architectures, activations, losses, targets and weights (some of them 0)."""
    if loss == "cross_entropy":
        layers = layers[:-1] + [max(layers[-1], 2)]
    options = data.draw(activation_options(len(layers) - 2))
    rng = np.random.default_rng(seed)
    x, y, w = random_weighted_data(rng, n_samples, layers, loss, soft)
    net = make_net(net_class, layers, x=x, seed=seed, bias=bias, loss=loss, **options)
    numeric = central_differences(net, x, y, w)
    assert_matches_central_differences(flat(net.gradients(x, y, sample_weight=w)), numeric,
                                       net.loss(x, y, sample_weight=w))


@pytest.mark.parametrize("loss", ALL_LOSSES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_every_activation_and_loss_weighted_matches_central_differences(net_class, activation, loss):
    """Each activation x loss with positive and zero weights, on a two-hidden-layer net."""
    layers = [3, 5, 4, 3]
    x, y, w = random_weighted_data(np.random.default_rng(1), 8, layers, loss)
    w[[1, 4]] = 0.0
    net = make_net(net_class, layers, x=x, seed=4, activation=activation, loss=loss, negative_slope=0.1)
    numeric = central_differences(net, x, y, w)
    assert np.abs(numeric).max() > 0  # a zero gradient would make the check vacuous
    assert_matches_central_differences(flat(net.gradients(x, y, sample_weight=w)), numeric,
                                       net.loss(x, y, sample_weight=w))


# -- unit weights are no weights -----------------------------------------------------------


def everything(net, x, y, **weighting):
    """Every result ``net`` computes from ``(x, y)`` with the keyword ``weighting``
    (``sample_weight=...`` or nothing), each training call on a fresh copy.

    Returns
    -------
    dict
        loss, gradients, train_step (loss and parameters), fit (histories
        and parameters: mini-batch shuffled Adam, unshuffled momentum SGD,
        and a validation_fraction split) and partial_fit.
    """
    out = {"loss": net.loss(x, y, **weighting), "gradients": flat(net.gradients(x, y, **weighting))}
    lr = weighted_lr(net.layers, len(x), net.loss_name, np.ones(1), net, x)
    stepped = copy.deepcopy(net)
    out["train_step"] = (stepped.train_step(x, y, lr, **weighting), params_of(stepped))
    fits = [dict(epochs=3, batch_size=3, seed=1, optimizer=nnfast.Adam(1e-3)),
            dict(epochs=2, batch_size=4, shuffle=False, optimizer=nnfast.SGD(lr, momentum=0.9)),
            dict(epochs=2, batch_size=2, seed=2, lr=lr, validation_fraction=0.3)]
    for i, kwargs in enumerate(fits):
        fitted = copy.deepcopy(net)
        history = fitted.fit(x, y, **kwargs, **weighting)
        out[f"fit {i}"] = (history.loss, history.epoch_loss, history.val_loss, params_of(fitted))
    partial = copy.deepcopy(net)
    history = partial.partial_fit(x, y, lr=lr, batch_size=3, seed=3, **weighting)
    out["partial_fit"] = (history.loss, params_of(partial))
    return out


@pytest.mark.parametrize("loss", ALL_LOSSES)
def test_unit_weights_are_exactly_no_weights(net_class, dtype, loss):
    """Weights of one (as float64, the net's dtype or int) and sample_weight=None give
    bit for bit the unweighted loss, gradients, train_step, fit and partial_fit."""
    layers = [3, 6, 4] if loss != "binary_cross_entropy" else [3, 6, 2]
    rng = np.random.default_rng(2)
    x, y, _ = random_weighted_data(rng, 10, layers, loss)
    net = make_net(net_class, layers, x=x, seed=3, loss=loss, dtype=dtype, activation="tanh")
    expected = everything(net, x, y)
    for weights in [None, np.ones(10), np.ones(10, dtype=dtype), np.ones(10, dtype=np.int64)]:
        assert_identical(everything(net, x, y, sample_weight=weights), expected,
                         f"weights {None if weights is None else weights.dtype}")


# -- weights against rows -----------------------------------------------------------------


def loss_and_gradient(net, x, y, **weighting):
    """``(net.loss, flat(net.gradients))`` on the same arguments."""
    return net.loss(x, y, **weighting), flat(net.gradients(x, y, **weighting))


def assert_same_loss_and_gradient(got, expected, scale, dtype, what):
    """Two ``loss_and_gradient`` results agree within ``TOL[dtype]``."""
    assert_loss_close(got[0], expected[0], scale, dtype, what=f"{what}: loss")
    error = rel_error(got[1], expected[1])
    assert error <= TOL[np.dtype(dtype)], f"{what}: gradient relative error {error:.3g}"


@given(loss=st.sampled_from(ALL_LOSSES), n_samples=st.integers(1, 12), dtype=st.sampled_from(DTYPES),
       seed=st.integers(0, 2**32 - 1))
@pytest.mark.parametrize("net_class", NET_CLASSES, ids=NET_IDS)
def test_integer_weights_are_repeated_rows(net_class, loss, n_samples, dtype, seed):
    """Weight m on a row is the row repeated m times (0: left out), for the full-batch loss and gradients."""
    rng = np.random.default_rng(seed)
    layers = [3, 5, 3]
    x, y, _ = random_weighted_data(rng, n_samples, layers, loss)
    w = rng.integers(0, 4, n_samples)
    if not w.any():
        w[0] = 2
    net = make_net(net_class, layers, x=x, seed=seed, loss=loss, dtype=dtype)
    rows = np.repeat(np.arange(n_samples), w)
    _, scale = expected_loss(loss, net.predict(x), y, w)
    assert_same_loss_and_gradient(loss_and_gradient(net, x, y, sample_weight=w),
                                  loss_and_gradient(net, x[rows], y[rows]), scale, dtype, "repeated rows")


@pytest.mark.parametrize("loss", ALL_LOSSES)
def test_zero_weights_are_removed_rows(net_class, dtype, loss):
    """Rows of weight 0 count for nothing: the same loss and gradients as without those rows."""
    layers = [4, 6, 3]
    x, y, w = random_weighted_data(np.random.default_rng(5), 11, layers, loss)
    w[[0, 3, 4, 9]] = 0.0
    keep = w > 0
    net = make_net(net_class, layers, x=x, seed=6, loss=loss, dtype=dtype)
    _, scale = expected_loss(loss, net.predict(x), y, w)
    assert_same_loss_and_gradient(loss_and_gradient(net, x, y, sample_weight=w),
                                  loss_and_gradient(net, x[keep], y[keep], sample_weight=w[keep]),
                                  scale, dtype, "removed rows")
    # ...and the same as the kept rows with the weights they had, not uniform ones
    # (the comparison above tells those apart).
    uniform = flat(net.gradients(x[keep], y[keep]))
    assert rel_error(flat(net.gradients(x, y, sample_weight=w)), uniform) > 100 * TOL[dtype]


@given(loss=st.sampled_from(ALL_LOSSES), factor=st.sampled_from([2.0**-20, 1e-3, 0.37, 3.0, 1e3, 2.0**20]),
       dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**32 - 1))
@pytest.mark.parametrize("net_class", NET_CLASSES, ids=NET_IDS)
def test_scaling_the_weights(net_class, loss, factor, dtype, seed):
    """Mean losses (and their gradients) do not change when every weight is multiplied by
    the same factor; sse (no normalization) is multiplied by it."""
    rng = np.random.default_rng(seed)
    layers = [3, 4, 3]
    x, y, w = random_weighted_data(rng, 7, layers, loss)
    net = make_net(net_class, layers, x=x, seed=seed, loss=loss, dtype=dtype)
    value, grad = loss_and_gradient(net, x, y, sample_weight=w)
    scaled_value, scaled_grad = loss_and_gradient(net, x, y, sample_weight=factor * w)
    _, scale = expected_loss(loss, net.predict(x), y, w)
    if loss == "sse":
        assert_loss_close(scaled_value / factor, value, scale, dtype, what="sse / factor")
        assert rel_error(scaled_grad / factor, grad) <= TOL[np.dtype(dtype)]
    else:
        assert_loss_close(scaled_value, value, scale, dtype, what=loss)
        assert rel_error(scaled_grad, grad) <= TOL[np.dtype(dtype)]


# -- all-zero weights -----------------------------------------------------------------------


@pytest.mark.parametrize("loss", ALL_LOSSES)
def test_all_zero_weights_give_zero_loss_and_gradient(net_class, dtype, loss):
    """A batch whose weights are all 0: loss 0, gradient 0, and a train_step that changes nothing."""
    layers = [3, 5, 3]
    x, y, _ = random_weighted_data(np.random.default_rng(7), 6, layers, loss)
    net = make_net(net_class, layers, x=x, seed=8, loss=loss, dtype=dtype)
    zeros = np.zeros(6)
    assert net.loss(x, y, sample_weight=zeros) == 0.0
    weight_grads, bias_grads = net.gradients(x, y, sample_weight=zeros)
    for grad in weight_grads + bias_grads:
        assert grad.dtype == dtype and np.all(grad == 0)
    before = params_of(net)
    assert net.train_step(x, y, 0.1, sample_weight=zeros) == 0.0
    np.testing.assert_array_equal(params_of(net), before)
    # One sample of weight 0 alone, too.
    assert net.loss(x[:1], y[:1], sample_weight=np.zeros(1)) == 0.0


@pytest.mark.parametrize("loss", ALL_LOSSES)
def test_zero_weight_batch_in_fit_is_a_step_of_zero(net_class, dtype, loss):
    """In fit, a batch whose weights are all 0 records loss 0 and (plain SGD) leaves the
    parameters as they were; the other batches train as train_steps on them would."""
    layers = [3, 5, 3]
    x, y, w = random_weighted_data(np.random.default_rng(9), 8, layers, loss)
    w[:4] = [0.5, 1.0, 2.0, 0.25]
    w[4:] = 0.0
    net = make_net(net_class, layers, x=x, seed=10, loss=loss, dtype=dtype)
    twin = copy.deepcopy(net)
    lr = weighted_lr(layers, 4, loss, w, net, x)
    history = net.fit(x, y, epochs=2, batch_size=4, shuffle=False, lr=lr, sample_weight=w)
    assert history.loss[1] == 0.0 and history.loss[3] == 0.0
    steps = [twin.train_step(x[:4], y[:4], lr, sample_weight=w[:4]) for _ in range(2)]
    np.testing.assert_allclose(history.loss[::2], steps, rtol=TOL[dtype], atol=0)
    assert_close(params_of(net), params_of(twin), dtype, "parameters")
    # The epoch loss still weighs each batch by its rows: half of the first batch's loss.
    np.testing.assert_allclose(history.epoch_loss, history.loss[::2] * 4 / 8, rtol=1e-15, atol=0)


# -- fit ------------------------------------------------------------------------------------


def epoch_orders(n_samples, epochs, seed, shuffle):
    """The sample order of each epoch of a fit: reshuffled by the spec's generator
    (nnfast._random, as fit documents) or, without shuffle, the identity."""
    state = _random.shuffle_state(seed)
    order = np.arange(n_samples)
    orders = []
    for _ in range(epochs):
        if shuffle:
            state = _random.shuffle(order, state)
        orders.append(order.copy())
    return orders


@pytest.mark.parametrize("shuffle", [True, False], ids=["shuffled", "unshuffled"])
@pytest.mark.parametrize("batch_size", [5, 4], ids=["uneven-batches", "even-batches"])
@pytest.mark.parametrize("loss", ALL_LOSSES)
def test_weighted_fit_is_train_steps_on_its_batches(net_class, dtype, loss, batch_size, shuffle):
    """A weighted SGD fit is one weighted train_step per batch: each batch's rows with their
    own weights, normalized by that batch's weight sum; the epoch loss is the
    row-weighted mean of the batch losses."""
    layers = [3, 5, 3]
    n_samples, epochs = 12, 3
    x, y, w = random_weighted_data(np.random.default_rng(11), n_samples, layers, loss)
    net = make_net(net_class, layers, x=x, seed=12, loss=loss, dtype=dtype)
    twin = copy.deepcopy(net)
    lr = weighted_lr(layers, batch_size, loss, w, net, x)
    history = net.fit(x, y, epochs=epochs, batch_size=batch_size, shuffle=shuffle, seed=13, lr=lr,
                      sample_weight=w)
    expected, rows = [], []
    for order in epoch_orders(n_samples, epochs, 13, shuffle):
        for start in range(0, n_samples, batch_size):
            batch = order[start : start + batch_size]
            expected.append(twin.train_step(x[batch], y[batch], lr, sample_weight=w[batch]))
            rows.append(len(batch))
    rtol = 1e-12 if dtype == np.float64 else TOL[dtype]
    np.testing.assert_allclose(history.loss, expected, rtol=rtol, atol=0)
    assert_close(params_of(net), params_of(twin), dtype, "parameters")
    by_epoch = (history.loss * np.array(rows)).reshape(epochs, -1).sum(axis=1) / n_samples
    np.testing.assert_allclose(history.epoch_loss, by_epoch, rtol=1e-14, atol=0)


def test_weights_travel_with_their_rows_when_shuffled(net_class):
    """Rows with wild targets and weight 0 never count, however the rows are shuffled:
    were a weight applied to another row, a step's loss would jump by ~1e6."""
    rng = np.random.default_rng(14)
    layers = [3, 6, 2]
    x = rng.standard_normal((40, 3))
    y = rng.standard_normal((40, 2))
    w = rng.uniform(0.5, 2.0, 40)
    wild = rng.permutation(40)[:20]
    y[wild] = 1e3
    w[wild] = 0.0
    net = make_net(nnfast.reference.Net, layers, x=x, seed=15)
    tame = net.loss(x[w > 0], y[w > 0], sample_weight=w[w > 0])
    net = make_net(net_class, layers, x=x, seed=15)
    history = net.fit(x, y, epochs=4, batch_size=5, seed=16, lr=1e-3, sample_weight=w)
    assert np.all(history.loss < 100 * tame), history.loss.max()
    assert np.any(history.loss > 0)


def validation_split(n_samples, fraction, seed):
    """``(train, val)`` row indices of fit's ``validation_fraction`` split, drawn as
    nnfast/_base.py draws it (a copy: were it wrong, the fits that
    ``test_validation_fraction_splits_the_weights_with_the_rows`` compares would differ)."""
    n_val = int(np.ceil(fraction * n_samples))
    order = np.random.default_rng(seed).permutation(n_samples)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


@pytest.mark.parametrize("loss", ["mse", "cross_entropy", "poisson"])
def test_validation_fraction_splits_the_weights_with_the_rows(net_class, dtype, loss):
    """validation_fraction: the training rows keep their weights (the fit is the fit on those
    rows with those weights) and the validation loss is unweighted."""
    layers = [3, 5, 3]
    x, y, _ = random_weighted_data(np.random.default_rng(17), 20, layers, loss)
    w = np.linspace(0.2, 4.0, 20)  # every row its own weight, none 0
    train, val = validation_split(20, 0.25, seed=18)
    net = make_net(net_class, layers, x=x, seed=19, loss=loss, dtype=dtype)
    twin = copy.deepcopy(net)
    lr = weighted_lr(layers, 5, loss, w, net, x)
    history = net.fit(x, y, epochs=2, batch_size=5, seed=18, lr=lr, validation_fraction=0.25, sample_weight=w)
    expected = twin.fit(x[train], y[train], epochs=2, batch_size=5, seed=18, lr=lr,
                        validation_data=(x[val], y[val]), sample_weight=w[train])
    assert_close(history.loss, expected.loss, dtype, "history")
    assert_close(history.val_loss, expected.val_loss, dtype, "validation losses")
    assert_close(params_of(net), params_of(twin), dtype, "parameters")
    # The last validation loss is the net's unweighted loss on the validation rows...
    unweighted, scale = expected_loss(loss, net.predict(x[val]), y[val])
    assert_loss_close(history.val_loss[-1], net.loss(x[val], y[val]), scale, dtype, what="val_loss")
    # ...which the weighted one is not (so the check above could tell them apart).
    weighted, _ = expected_loss(loss, net.predict(x[val]), y[val], w[val])
    assert abs(weighted - unweighted) > 1e-3 * scale


def test_validation_data_loss_is_unweighted(net_class):
    """With validation_data, val_loss is the net's unweighted loss on it."""
    layers = [3, 5, 2]
    rng = np.random.default_rng(20)
    x, y, w = random_weighted_data(rng, 12, layers, "mse")
    x_val, y_val = rng.standard_normal((6, 3)), rng.standard_normal((6, 2))
    net = make_net(net_class, layers, x=x, seed=21, loss="mse")
    history = net.fit(x, y, epochs=2, batch_size=4, seed=1, lr=0.01, validation_data=(x_val, y_val),
                      sample_weight=w)
    assert history.val_loss[-1] == pytest.approx(net.loss(x_val, y_val), rel=1e-12)


def test_partial_fit_is_one_weighted_epoch_of_fit(net_class, dtype):
    """partial_fit(sample_weight=w) is fit(epochs=1, sample_weight=w), bit for bit."""
    layers = [3, 5, 2]
    x, y, w = random_weighted_data(np.random.default_rng(22), 10, layers, "sse")
    net = make_net(net_class, layers, x=x, seed=23, dtype=dtype)
    twin = copy.deepcopy(net)
    lr = weighted_lr(layers, 3, "sse", w)
    partial = net.partial_fit(x, y, lr=lr, batch_size=3, seed=4, sample_weight=w)
    full = twin.fit(x, y, epochs=1, lr=lr, batch_size=3, seed=4, sample_weight=w)
    np.testing.assert_array_equal(partial.loss, full.loss)
    np.testing.assert_array_equal(params_of(net), params_of(twin))


FIT_CALLS = {
    "fit": lambda net, x, y, w: net.fit(x, y, epochs=1, lr=0.01, sample_weight=w),
    "partial_fit": lambda net, x, y, w: net.partial_fit(x, y, lr=0.01, sample_weight=w),
    "fit-validation_data": lambda net, x, y, w: net.fit(x, y, epochs=1, lr=0.01, sample_weight=w,
                                                        validation_data=(x, y)),
}


@pytest.mark.parametrize("call", FIT_CALLS.values(), ids=FIT_CALLS.keys())
def test_fit_refuses_weights_that_are_all_zero(net_class, call):
    """Nothing to train on: ValueError naming sample_weight, before anything changes."""
    x, y = np.ones((5, 2)), np.zeros((5, 1))
    net = net_class([2, 3, 1], seed=0)
    before = params_of(net)
    with pytest.raises(ValueError, match="sample_weight"):
        call(net, x, y, np.zeros(5))
    np.testing.assert_array_equal(params_of(net), before)
    assert net.optimizer is None


def test_fit_refuses_a_training_part_whose_weights_are_all_zero(net_class):
    """validation_fraction: weights that are 0 on every training row (positive only on
    validation rows) leave nothing to train on either."""
    x, y = np.random.default_rng(24).standard_normal((8, 2)), np.zeros((8, 1))
    train, val = validation_split(8, 0.25, seed=5)
    w = np.zeros(8)
    w[val] = 1.0
    net = net_class([2, 3, 1], seed=0)
    before = params_of(net)
    with pytest.raises(ValueError, match="sample_weight"):
        net.fit(x, y, epochs=1, lr=0.01, sample_weight=w, validation_fraction=0.25, seed=5)
    np.testing.assert_array_equal(params_of(net), before)
    # One training row with weight is enough.
    w[train[0]] = 1.0
    net.fit(x, y, epochs=1, lr=0.01, sample_weight=w, validation_fraction=0.25, seed=5)


# -- nnfast.Net against the reference ---------------------------------------------------------


def assert_weighted_agreement(fast, ref, x, y, w, lr, fits):
    """Weighted loss, gradients, a train_step and each fit of ``fits`` (kwargs) agree.

    Each fit starts from the nets as the previous left them, with a fresh
    optimizer; histories, epoch losses and parameters are compared.
    """
    dtype, loss = ref.dtype, ref.loss_name
    _, scale = expected_loss(loss, ref.predict(x), y, w)
    value = fast.loss(x, y, sample_weight=w)
    assert isinstance(value, float)
    assert_loss_close(value, ref.loss(x, y, sample_weight=w), scale, dtype)
    gradients = fast.gradients(x, y, sample_weight=w)
    assert all(g.dtype == dtype for g in gradients[0] + gradients[1])
    assert_close(gradients, ref.gradients(x, y, sample_weight=w), dtype, "gradients")
    assert_loss_close(fast.train_step(x, y, lr, sample_weight=w), ref.train_step(x, y, lr, sample_weight=w),
                      scale, dtype, what="train_step")
    assert_close(params_of(fast), params_of(ref), dtype, "parameters after train_step")
    # Training can drive a loss far below the size of its terms (a confident
    # classifier's ~1e-5), where its relative rounding error is unbounded:
    # histories are measured against the loss of predicting 0, as
    # conftest.assert_loss_close measures single losses.
    _, zero_scale = expected_loss(loss, np.zeros_like(ref.predict(x)), y, w)
    for kwargs in fits:
        histories = [net.fit(x, y, sample_weight=w, **kwargs(dtype)) for net in (fast, ref)]
        assert histories[0].steps_per_epoch == histories[1].steps_per_epoch
        for what in ("loss", "epoch_loss"):
            got, expected = getattr(histories[0], what), getattr(histories[1], what)
            assert got.shape == expected.shape
            scale = max(np.abs(expected).max(), zero_scale)
            error = np.abs(got - expected).max() / scale
            assert error <= TOL[dtype], f"fit {what}: error {error:.3g} of {scale:.3g} > {TOL[dtype]:g}"
        assert_close(params_of(fast), params_of(ref), dtype, "parameters after fit")


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("optimizer", OPTIMIZERS.keys())
@pytest.mark.parametrize("loss", ALL_LOSSES)
def test_every_loss_and_optimizer_weighted_matches_reference(loss, optimizer, dtype):
    """Each loss x optimizer with weights (some 0): evaluation, a train_step, and fits
    shuffled and not, with batches that do and do not divide the 12 samples."""
    layers = [4, 7, 3]
    x, y, w = random_weighted_data(np.random.default_rng(25), 12, layers, loss)
    fast, ref = make_pair(layers, x=x, seed=26, loss=loss, dtype=dtype, activation="tanh")
    lr = weighted_lr(layers, 12, loss, w, ref, x)
    fits = [
        lambda d, shuffle=shuffle, batch_size=batch_size: dict(
            epochs=2, batch_size=batch_size, shuffle=shuffle, seed=27, optimizer=optimizer_for(optimizer, lr, d))
        for shuffle in (True, False) for batch_size in (5, 4)
    ]
    assert_weighted_agreement(fast, ref, x, y, w, lr, fits)


@given(config=net_configs(max_hidden=3, losses=ALL_LOSSES), batch_size=st.integers(1, 20),
       optimizer=st.sampled_from(sorted(OPTIMIZERS)), shuffle=st.booleans())
def test_random_weighted_nets_match_reference(config, batch_size, optimizer, shuffle):
    """Random architectures on both sides of the BLAS threshold, activations, losses,
    dtypes, weights, batch sizes and optimizers."""
    rng = np.random.default_rng(config["seed"])
    layers, loss, dtype = config["layers"], config["loss"], config["dtype"]
    x, y, w = random_weighted_data(rng, config["n_samples"], layers, loss, config["soft_targets"])
    fast, ref = make_pair(layers, x=x, seed=config["seed"], bias=config["bias"], loss=loss, dtype=dtype,
                          activation=config["activation"], negative_slope=config["negative_slope"])
    if loss == "poisson":
        # Steep leaky ReLUs stacked can give outputs of 100 and more: means beyond float32.
        assume(np.abs(ref.predict(x)).max() < 20)
    lr = weighted_lr(layers, len(x), loss, w, ref, x)
    fit = lambda d: dict(epochs=2, batch_size=batch_size, shuffle=shuffle, seed=config["seed"],  # noqa: E731
                         optimizer=optimizer_for(optimizer, lr, d))
    assert_weighted_agreement(fast, ref, x, y, w, lr, [fit])


@pytest.mark.parametrize("loss", ALL_LOSSES)
def test_weights_over_several_row_blocks_match_reference(loss, dtype):
    """nnfast.Net evaluates a large batch in blocks of rows: the weights still normalize over
    the whole batch, and a block whose weights are all 0 is rows that count for nothing,
    not a batch of W = 0."""
    layers = [3, 4000, 3]  # one wide layer: blocks of 65 (float64) or 131 (float32) rows
    block = nnfast.Net(layers, dtype=dtype)._fast.block_rows  # private, as test_fastpath.py reads it
    n_samples = block + 29
    x, y, w = random_weighted_data(np.random.default_rng(29), n_samples, layers, loss)
    w[:block] = 0.0  # the whole first block
    fast, ref = make_pair(layers, x=x, seed=30, loss=loss, dtype=dtype, activation="tanh")
    _, scale = expected_loss(loss, ref.predict(x), y, w)
    assert_loss_close(fast.loss(x, y, sample_weight=w), ref.loss(x, y, sample_weight=w), scale, dtype)
    assert_close(fast.gradients(x, y, sample_weight=w), ref.gradients(x, y, sample_weight=w), dtype, "gradients")
    # fit's one full-batch step, too.
    lr = weighted_lr(layers, n_samples, loss, w, ref, x)
    histories = [net.fit(x, y, epochs=1, lr=lr, sample_weight=w) for net in (fast, ref)]
    assert_loss_close(histories[0].loss[0], histories[1].loss[0], scale, dtype, what="fit")
    assert_close(params_of(fast), params_of(ref), dtype, "parameters after fit")
    # All of them 0, across every block: loss 0, gradient 0.
    assert fast.loss(x, y, sample_weight=np.zeros(n_samples)) == 0.0
    assert np.all(flat(fast.gradients(x, y, sample_weight=np.zeros(n_samples))) == 0)


# -- what sample_weight accepts and refuses -------------------------------------------------

LAYERS = [3, 4, 2]
RNG = np.random.default_rng(28)
X = RNG.standard_normal((8, 3))
Y = RNG.standard_normal((8, 2))
# Values every accepted dtype holds exactly: any conversion gives the same weights.
W = np.array([0.0, 0.5, 1.0, 2.0, 3.0, 1.5, 0.25, 4.0])


def calls():
    """Every call that takes ``sample_weight``, as ``(id, call(net, w))`` on ``(X, Y)``."""
    return [
        ("loss", lambda net, w: net.loss(X, Y, sample_weight=w)),
        ("gradients", lambda net, w: flat(net.gradients(X, Y, sample_weight=w))),
        ("train_step", lambda net, w: (net.train_step(X, Y, 0.01, sample_weight=w), params_of(net))),
        ("fit", lambda net, w: (net.fit(X, Y, epochs=2, lr=0.01, batch_size=3, seed=0, sample_weight=w).loss,
                                params_of(net))),
        ("fit-validation_fraction", lambda net, w: (
            net.fit(X, Y, epochs=2, lr=0.01, batch_size=3, seed=0, validation_fraction=0.25,
                    sample_weight=w).val_loss, params_of(net))),
        ("partial_fit", lambda net, w: (net.partial_fit(X, Y, lr=0.01, batch_size=3, seed=0,
                                                        sample_weight=w).loss, params_of(net))),
    ]


CALLS = calls()
CALL_IDS = [name for name, _ in CALLS]
CALL_FUNCTIONS = [call for _, call in CALLS]


def with_value(index, value):
    """``W`` as float64 with entry ``index`` replaced by ``value``."""
    w = W.copy()
    w[index] = value
    return w


def object_array(values):
    """A 1-D object array of ``values`` (np.array would turn some lists into other dtypes)."""
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


# (id, weights, exception types): values that must be refused with a message naming sample_weight.
REFUSED = [
    ("short", W[:-1], ValueError),
    ("long", np.append(W, 1.0), ValueError),
    ("empty", np.zeros(0), ValueError),
    ("column", W[:, np.newaxis], (TypeError, ValueError)),
    ("row", W[np.newaxis, :], (TypeError, ValueError)),
    ("scalar-float", 1.0, (TypeError, ValueError)),
    ("scalar-int", 2, (TypeError, ValueError)),
    ("numpy-scalar", np.float64(1.0), (TypeError, ValueError)),
    ("0-d-array", np.array(1.0), (TypeError, ValueError)),
    ("negative", with_value(3, -0.5), ValueError),
    ("tiny-negative", with_value(3, -1e-300), ValueError),
    ("nan", with_value(5, np.nan), ValueError),
    ("inf", with_value(5, np.inf), ValueError),
    ("minus-inf", with_value(5, -np.inf), ValueError),
    ("complex", W.astype(np.complex128), (TypeError, ValueError)),
    ("strings", W.astype(str), (TypeError, ValueError)),
    ("objects-with-none", object_array([1.0] * 7 + [None]), (TypeError, ValueError)),
    ("objects-with-string", object_array([1.0] * 7 + ["1"]), (TypeError, ValueError)),
    ("a-string", "balanced", (TypeError, ValueError)),
    ("a-dict", {0: 1.0}, (TypeError, ValueError)),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("weights, error", [(w, e) for _, w, e in REFUSED], ids=[name for name, _, _ in REFUSED])
@pytest.mark.parametrize("call", CALL_FUNCTIONS, ids=CALL_IDS)
def test_bad_weights_are_refused(net_class, call, weights, error, dtype):
    """Wrong shapes, scalars, negative or non-finite weights and non-numbers raise an error
    naming sample_weight, and leave the net (and the weights) untouched."""
    net = net_class(LAYERS, seed=0, dtype=dtype)
    before = params_of(net)
    original = copy.deepcopy(weights)
    with pytest.raises(error, match="sample_weight"):
        call(net, weights)
    np.testing.assert_array_equal(params_of(net), before)
    assert net.optimizer is None
    if isinstance(weights, np.ndarray):
        np.testing.assert_array_equal(weights, original, strict=True)


def unaligned(a):
    """A copy of ``a`` whose data start one byte past an aligned address."""
    raw = np.zeros(a.nbytes + 1, dtype=np.uint8)
    copied = raw[1:].view(a.dtype).reshape(a.shape)
    copied[...] = a
    assert not copied.flags.aligned
    return copied


def read_only(a):
    """A read-only copy of ``a``."""
    a = a.copy()
    a.flags.writeable = False
    return a


# (id, make weights): each equals W in value, in another dtype or memory layout
# (integer dtypes: test_integer_weight_dtypes_are_their_values, W having fractions).
ACCEPTED = [
    ("float32", lambda: W.astype(np.float32)),
    ("float16", lambda: W.astype(np.float16)),
    ("longdouble", lambda: W.astype(np.longdouble)),
    ("strided", lambda: np.repeat(W, 3)[::3]),
    ("reversed", lambda: np.ascontiguousarray(W[::-1])[::-1]),
    ("byte-swapped", lambda: W.astype(W.dtype.newbyteorder())),
    ("unaligned", lambda: unaligned(W)),
    ("read-only", lambda: read_only(W)),
]


@pytest.mark.parametrize("make", [m for _, m in ACCEPTED], ids=[name for name, _ in ACCEPTED])
@pytest.mark.parametrize("call", CALL_FUNCTIONS, ids=CALL_IDS)
def test_other_dtypes_and_layouts_are_the_same_weights(net_class, dtype, call, make):
    """Any real dtype and any memory layout of the same values give exactly the results
    of the plain float64 array, and the array is left as it was."""
    weights = make()
    original = weights.copy()
    expected = call(net_class(LAYERS, seed=0, dtype=dtype), W)
    assert_identical(call(net_class(LAYERS, seed=0, dtype=dtype), weights), expected)
    np.testing.assert_array_equal(weights, original, strict=True)


@pytest.mark.parametrize("weight_dtype", [np.int8, np.uint8, np.int32, np.int64, np.uint64])
def test_integer_weight_dtypes_are_their_values(net_class, dtype, weight_dtype):
    """Integer weights of any width mean their values."""
    counts = np.array([0, 1, 2, 3, 1, 0, 5, 2])
    expected = [call(net_class(LAYERS, seed=0, dtype=dtype), counts.astype(np.float64)) for call in CALL_FUNCTIONS]
    got = [call(net_class(LAYERS, seed=0, dtype=dtype), counts.astype(weight_dtype)) for call in CALL_FUNCTIONS]
    assert_identical(got, expected)


@pytest.mark.parametrize("weight_dtype", [np.float64, np.float32, np.int64], ids=["float64", "float32", "int64"])
@pytest.mark.parametrize("call", CALL_FUNCTIONS, ids=CALL_IDS)
def test_callers_weights_are_never_modified(net_class, dtype, call, weight_dtype):
    """The caller's array is only read: unchanged after every call (a fit shuffles and
    splits rows, never the caller's weights), and a read-only one is accepted."""
    weights = (np.array([0.0, 1.0, 2.0, 3.0, 1.0, 0.0, 5.0, 2.0]) if weight_dtype == np.int64
               else W).astype(weight_dtype)
    original = weights.copy()
    result = call(net_class(LAYERS, seed=0, dtype=dtype), weights)
    np.testing.assert_array_equal(weights, original, strict=True)
    locked = read_only(weights)
    assert_identical(call(net_class(LAYERS, seed=0, dtype=dtype), locked), result)
