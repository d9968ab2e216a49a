"""scikit-learn's MLP conventions in the core: its losses, alpha, update rules and sample order.

The spec (nnfast/_base.py, nnfast/optimizers.py, nnfast/reference.py), per
batch of outputs ``z``, targets ``y``, sample weights ``w`` summing to ``W``
(the row count without weights) and ``d = z - y``:

- ``"squared_error"``: ``sum_i w_i 1/2 sum_j d_ij^2 / W``, output gradient
  ``w d / W``. scikit-learn's MLPRegressor reports ``1/2`` the *mean* over
  the outputs, so its loss is ours divided by the number of outputs (its
  gradient is ours).
- ``"binary_log_loss"``: a sigmoid per output and the binary cross-entropy
  summed over the outputs, ``sum_i w_i sum_j l_ij / W``, output gradient
  ``w (sigmoid(z) - y) / W``; it classifies as ``"binary_cross_entropy"``.
- ``l2=alpha``: every batch's loss gains ``0.5 alpha sum(weights**2) / N``
  and each weight gradient ``alpha W / N`` (biases excluded; ``N = W``, or 1
  when the weights are all 0), in loss, gradients, train_step and the fit
  losses, never in fit's validation losses.
- ``SGD(style="sklearn")``: ``v = momentum v - lr g``, ``p += momentum v - lr g``
  with Nesterov, else ``p += v``. ``Adam(style="sklearn")``:
  ``p += -lr sqrt(1 - beta2^t) / (1 - beta1^t) m / (sqrt(v) + eps)``.
- ``fit(order=perm)`` visits the samples in ``perm`` every epoch;
  ``net.parameters`` is the flat vector, layer after layer (weights in C
  order, then the bias), and ``loss_and_gradients`` the pair SciPy's
  minimizers take; the file format (version 3), pickle and deepcopy keep
  ``l2`` and the optimizer's style.

Here: closed forms on hand-made nets, central differences, nnfast.Net
against nnfast.reference.Net, the update rules by hand, order, parameters,
saving, and, where scikit-learn is installed, agreement with scikit-learn's
own arithmetic (``_backprop``), optimizers and ``fit``.
"""
import copy
import pickle
import warnings

import numpy as np
import pytest
import scipy.optimize
from hypothesis import assume, given
from hypothesis import strategies as st
from scipy.special import expit, softmax

import nnfast
import nnfast.io
import nnfast.reference
import nnfast.schedules
from tests.conftest import (
    ACTIVATIONS,
    DTYPES,
    LOSSES,
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
    random_targets,
    random_weighted_data,
    random_weights,
    target_matrix,
    per_sample_terms,
    central_differences,
    assert_matches_central_differences,
    rel_error,
    stable_lr,
    zero_prediction_loss,
)

# The two new losses, and the losses that divide by the weight sum W alone (scikit-learn's).
NEW_LOSSES = ["squared_error", "binary_log_loss"]
SKLEARN_LOSSES = ["squared_error", "binary_log_loss", "cross_entropy", "poisson"]
# Every loss (spelled out in case conftest's list predates some).
ALL_LOSSES = list(dict.fromkeys([*LOSSES, "poisson", *NEW_LOSSES]))
DTYPE_IDS = ["float64", "float32"]

# -- helpers ---------------------------------------------------------------------------


def normalizer(w, n_samples):
    """The spec's N: the weights' sum, the row count without weights, 1 if all weights are 0."""
    if w is None:
        return float(n_samples)
    total = float(np.sum(w, dtype=np.float64))
    return total if total != 0 else 1.0


def penalty(weights, l2, n):
    """``0.5 * l2 * sum(W**2) / n`` over the weight matrices ``weights`` (float64)."""
    return 0.5 * l2 * sum(float(np.sum(np.square(np.asarray(w, dtype=np.float64)))) for w in weights) / n


def expected_loss(loss, z, y, w=None):
    """The spec's data loss (no penalty) of outputs ``z`` against ``y`` with weights ``w``,
    and its scale (the same weighted mean of the terms' sizes) for tolerances."""
    z = np.asarray(z, dtype=np.float64)
    y = target_matrix(y, loss, z.shape[1])
    values, sizes = per_sample_terms(loss, z, y)
    if w is not None and not np.any(w):
        return 0.0, 0.0
    weights = np.ones(len(z)) if w is None else np.asarray(w, dtype=np.float64)
    norm = normalizer(w, len(z))
    return float(weights @ values) / norm, float(weights @ sizes) / norm


def expected_output_gradient(loss, z, y, w=None):
    """The gradient of ``expected_loss`` w.r.t. the outputs, float64 ``(n_samples, n_out)``."""
    z = np.asarray(z, dtype=np.float64)
    y = target_matrix(y, loss, z.shape[1])
    weights = np.ones(len(z)) if w is None else np.asarray(w, dtype=np.float64)
    if loss == "squared_error":
        per_element = z - y
    elif loss == "binary_log_loss":
        per_element = expit(z) - y
    elif loss == "cross_entropy":
        per_element = softmax(z, axis=1) * y.sum(axis=1, keepdims=True) - y
    else:
        per_element = np.exp(z) - y
    return weights[:, np.newaxis] * per_element / normalizer(w, len(z))


def assert_loss_close(actual, expected, scale, dtype, rtol=None, what="loss"):
    """Assert ``|actual - expected| <= rtol * scale`` (``rtol`` defaults to ``TOL[dtype]``).

    ``scale`` is the size of the terms that cancel: a loss near its minimum
    is a small difference of large terms, whose rounding is relative to them.
    """
    rtol = TOL[np.dtype(dtype)] if rtol is None else rtol
    error = abs(actual - expected)
    assert error <= rtol * scale, f"{what}: {actual} vs {expected}, error {error:.3g} > {rtol:g} * {scale:.3g}"


def logits_net(net_class, logits, loss, dtype=np.float64, l2=0.0):
    """A bias-free ``[n, k]`` net whose outputs on ``np.eye(n)`` are ``logits`` (``W = logits``).

    Its weight gradient on ``np.eye(n)`` is the gradient w.r.t. the outputs
    (plus, with ``l2``, the penalty's ``l2 * logits / N``).

    Returns
    -------
    net, x
    """
    logits = np.asarray(logits, dtype=np.float64)
    net = net_class(list(logits.shape), loss=loss, bias=False, dtype=dtype, l2=l2)
    net.weights = [logits]
    return net, np.eye(logits.shape[0])


def layer_layout(net):
    """What ``net.parameters`` must be, built from ``weights`` and ``biases``: layer after
    layer, the weights in C order, then the bias (where the layer has one)."""
    biases = iter(net.biases)
    parts = []
    for w, has_bias in zip(net.weights, net.bias):
        parts.append(w.reshape(-1))
        if has_bias:
            parts.append(next(biases))
    return np.concatenate(parts)


def weight_mask(net):
    """1.0 at the weights and 0.0 at the biases of the ``parameters`` layout."""
    marked = copy.deepcopy(net)
    marked.weights = [np.ones(w.shape) for w in net.weights]
    marked.biases = [np.zeros(b.shape) for b in net.biases]
    return marked.parameters.astype(np.float64)


def adam_eps(dtype):
    """Adam's eps for comparisons (as test_equivalence.py): above float32's rounding of a
    gradient entry that cancels to ~0, whose update would be lr * rounding / eps."""
    return 1e-8 if np.dtype(dtype) == np.float64 else 1e-3


# Optimizers as factories of (learning rate, Adam's eps): both styles of each rule.
OPTIMIZERS = {
    "sgd": lambda lr, eps: nnfast.SGD(lr),
    "sgd-sklearn": lambda lr, eps: nnfast.SGD(lr, style="sklearn"),
    "momentum": lambda lr, eps: nnfast.SGD(lr, momentum=0.9),
    "momentum-sklearn": lambda lr, eps: nnfast.SGD(lr, momentum=0.9, style="sklearn"),
    "nesterov": lambda lr, eps: nnfast.SGD(lr, momentum=0.5, nesterov=True),
    "nesterov-sklearn": lambda lr, eps: nnfast.SGD(lr, momentum=0.5, nesterov=True, style="sklearn"),
    "nesterov-weight-decay-sklearn": lambda lr, eps: nnfast.SGD(lr, momentum=0.7, nesterov=True,
                                                                weight_decay=0.1, style="sklearn"),
    "adam": lambda lr, eps: nnfast.Adam(1e-3, eps=eps),
    "adam-sklearn": lambda lr, eps: nnfast.Adam(1e-3, eps=eps, style="sklearn"),
    "adamw": lambda lr, eps: nnfast.AdamW(1e-3, eps=eps, weight_decay=0.1),
}


def training_lr(net, x, batch_size, w=None):
    """A learning rate plain SGD cannot diverge with (``stable_lr``): smaller for sse, whose
    curvature grows with the weights ``w``, and for poisson's large predicted means
    ``exp(net.predict(x))``."""
    lr = stable_lr(net.layers, batch_size, net.loss_name)
    if net.loss_name == "sse" and w is not None:
        lr /= max(1.0, float(np.max(w)))
    if net.loss_name == "poisson":
        lr /= max(1.0, float(np.exp(net.predict(x).astype(np.float64)).max()))
    return lr


def loss_size(net, x, y, w):
    """A scale for comparing ``net``'s losses on ``(x, y)``: the size of the loss's terms
    at the current outputs and at zero outputs (training can drive the loss far below
    them), plus the penalty."""
    n = normalizer(w, len(x))
    reg = penalty(net.weights, net.l2, n)
    name = net.loss_name
    if name not in SKLEARN_LOSSES:  # the torch-style losses: the loss itself, or what predicting 0 costs
        weight = 1.0 if w is None else max(1.0, float(np.max(w)))
        return max(abs(net.loss(x, y, sample_weight=w)), weight * zero_prediction_loss(y, name)) + reg
    sizes = [expected_loss(name, z, y, w)[1] for z in (net.predict(x), np.zeros((len(x), net.layers[-1])))]
    return max(sizes) + reg


def assert_agreement(fast, ref, x, y, w, lr, fits):
    """Loss, gradients, loss_and_gradients, a train_step and each fit of ``fits`` (kwargs
    factories of the dtype) agree between ``fast`` and ``ref``.

    Each fit continues from the nets as the previous one left them; step and
    epoch losses, validation losses and parameters are compared.
    """
    dtype = ref.dtype
    scale = loss_size(ref, x, y, w)
    loss = fast.loss(x, y, sample_weight=w)
    assert isinstance(loss, float)
    assert_loss_close(loss, ref.loss(x, y, sample_weight=w), scale, dtype)
    assert_close(fast.gradients(x, y, sample_weight=w), ref.gradients(x, y, sample_weight=w), dtype, "gradients")
    both = fast.loss_and_gradients(x, y, sample_weight=w)
    expected = ref.loss_and_gradients(x, y, sample_weight=w)
    assert_loss_close(both[0], expected[0], scale, dtype, what="loss_and_gradients")
    assert_close(both[1], expected[1], dtype, "loss_and_gradients")
    assert_loss_close(fast.train_step(x, y, lr, sample_weight=w), ref.train_step(x, y, lr, sample_weight=w),
                      scale, dtype, what="train_step")
    assert_close(params_of(fast), params_of(ref), dtype, "parameters after train_step")
    for kwargs in fits:
        histories = [net.fit(x, y, sample_weight=w, **kwargs(dtype)) for net in (fast, ref)]
        assert histories[0].steps_per_epoch == histories[1].steps_per_epoch
        for what in ("loss", "epoch_loss", "val_loss"):
            got, wanted = getattr(histories[0], what), getattr(histories[1], what)
            if wanted is None:
                assert got is None, what
                continue
            assert got.shape == wanted.shape, what
            error = np.abs(got - wanted).max(initial=0.0) / max(scale, np.abs(wanted).max(initial=0.0))
            assert error <= TOL[dtype], f"fit {what}: relative error {error:.3g} > {TOL[dtype]:g}"
        assert_close(params_of(fast), params_of(ref), dtype, "parameters after fit")


# Logits and, per loss, targets on which the closed forms are checked.
LOGITS = np.array([[2.0, -1.0, 0.5], [0.0, 0.0, 0.0], [-3.0, 2.5, 1.0], [1.0, 1.0, -2.0], [0.5, -0.5, 1.5]])
CLOSED_FORM_TARGETS = {
    "squared_error": np.array([[1.0, 0.0, -1.0], [2.0, 0.5, 0.0], [0.0, 0.0, 0.0], [1.0, -1.0, 3.0],
                               [-2.0, 1.0, 0.5]]),
    "binary_log_loss": np.array([[1.0, 0.0, 0.3], [0.5, 1.0, 0.0], [0.0, 1.0, 1.0], [0.9, 0.1, 0.0],
                                 [1.0, 1.0, 0.0]]),
}
# Zeros, fractions and a large weight: W = 5.75, not the row count.
CLOSED_FORM_WEIGHTS = np.array([0.5, 0.0, 2.0, 0.25, 3.0])
WEIGHTINGS = {"unweighted": None, "weighted": CLOSED_FORM_WEIGHTS, "all-zero": np.zeros(5)}


# -- the two losses: closed forms -----------------------------------------------------------


@pytest.mark.parametrize("weighting", WEIGHTINGS.keys())
@pytest.mark.parametrize("l2", [0.0, 0.7], ids=["no-l2", "l2"])
@pytest.mark.parametrize("loss", NEW_LOSSES)
def test_loss_and_output_gradient_are_the_closed_form(net_class, dtype, loss, l2, weighting):
    """The loss and its gradient w.r.t. the outputs against the formulas written with
    SciPy, with the penalty of ``W = logits``; float32 rounds the logits first."""
    y, w = CLOSED_FORM_TARGETS[loss], WEIGHTINGS[weighting]
    net, x = logits_net(net_class, LOGITS, loss, dtype, l2)
    z = LOGITS.astype(dtype).astype(np.float64)
    rtol = 1e-12 if dtype == np.float64 else TOL[dtype]
    n = normalizer(w, len(z))
    data_loss, scale = expected_loss(loss, z, y, w)
    reg = penalty([z], l2, n)
    value = net.loss(x, y, sample_weight=w)
    assert isinstance(value, float)
    assert_loss_close(value, data_loss + reg, scale + reg, dtype, rtol)
    grad = net.gradients(x, y, sample_weight=w)[0][0]
    assert grad.dtype == dtype
    expected_grad = expected_output_gradient(loss, z, y, w) + l2 * z / n
    assert rel_error(grad, expected_grad) <= rtol


def test_hand_worked_squared_error_with_l2(net_class):
    """A [2, 1] linear net by hand: outputs (-0.5, 3.5, 0.5), targets (1, 1, 0), weights (2, 0, 1).

    Weights (1, -1), bias 0.5; d = (-1.5, 2.5, 0.5). sum_i w_i d_i^2 / 2
    = (2 * 2.25 + 0 * 6.25 + 1 * 0.25) / 2 = 2.375 over W = 3; the penalty
    0.5 * 0.6 * (1 + 1) / 3 = 0.2 (l2 = 0.6; the bias of 0.5 is not in it):
    loss = (2.375 + 0.6) / 3 = 2.975 / 3. Output gradient w d / W = (-1, 0, 1/6);
    d/dweights = x.T @ that + 0.6 * (1, -1) / 3 = (-5/6 + 1/5, -11/6 - 1/5)
    = (-19/30, -61/30); d/dbias = -1 + 0 + 1/6 = -5/6, no penalty.
    Without weights: W = 3 rows as well, but all three d count:
    (2.25 + 6.25 + 0.25) / 2 / 3 + 0.2 = (4.375 + 0.6) / 3.
    """
    x = np.array([[1.0, 2.0], [3.0, 0.0], [1.0, 1.0]])
    y = np.array([1.0, 1.0, 0.0])
    w = np.array([2.0, 0.0, 1.0])
    net = net_class([2, 1], loss="squared_error", l2=0.6)
    net.weights, net.biases = [np.array([[1.0], [-1.0]])], [np.array([0.5])]
    np.testing.assert_array_equal(net.predict(x)[:, 0], [-0.5, 3.5, 0.5])
    assert net.loss(x, y, sample_weight=w) == pytest.approx(2.975 / 3, rel=1e-15)
    assert net.loss(x, y) == pytest.approx(4.975 / 3, rel=1e-15)
    (grad_w,), (grad_b,) = net.gradients(x, y, sample_weight=w)
    np.testing.assert_allclose(grad_w[:, 0], [-19 / 30, -61 / 30], rtol=1e-15)
    np.testing.assert_allclose(grad_b, [-5 / 6], rtol=1e-15)


def test_hand_worked_binary_log_loss(net_class):
    """Logits (0, ln 3) and (-ln 3, 0), targets (1, 0) and (0, 1), weights (3, 1).

    sigmoid(0) = 1/2, sigmoid(ln 3) = 3/4, sigmoid(-ln 3) = 1/4; per element
    softplus(z) - y z: row 1 ln 2 - 0 and ln 4 - 0, summed 3 ln 2 = ln 8;
    row 2 ln(4/3) - 0 and ln 2 - 0, summed ln(8/3). Summed over the outputs
    and weighted over W = 4: (3 ln 8 + ln(8/3)) / 4 (binary_cross_entropy
    would also divide by the 2 outputs). Output gradient w (sigmoid(z) - y) / W:
    row 1 3 (-1/2, 3/4) / 4 = (-3/8, 9/16), row 2 (1/4, -1/2) / 4 = (1/16, -1/8).
    With l2 = 0.5: the penalty 0.5 * 0.5 * 2 (ln 3)^2 / 4 = (ln 3)^2 / 8, and
    the gradient gains 0.5 * W / 4 = W / 8. Probabilities (1/2, 3/4), (1/4, 1/2);
    classes 1 where the probability is >= 1/2.
    """
    ln3 = np.log(3.0)
    logits = np.array([[0.0, ln3], [-ln3, 0.0]])
    y = np.array([[1.0, 0.0], [0.0, 1.0]])
    w = np.array([3.0, 1.0])
    net, x = logits_net(net_class, logits, "binary_log_loss")
    assert net.loss(x, y, sample_weight=w) == pytest.approx((3 * np.log(8) + np.log(8 / 3)) / 4, rel=1e-15)
    np.testing.assert_allclose(net.gradients(x, y, sample_weight=w)[0][0],
                               [[-3 / 8, 9 / 16], [1 / 16, -1 / 8]], rtol=1e-15)
    np.testing.assert_allclose(net.predict_proba(x), [[1 / 2, 3 / 4], [1 / 4, 1 / 2]], rtol=1e-15)
    np.testing.assert_array_equal(net.predict_classes(x), [[1, 1], [0, 1]])
    regularized, _ = logits_net(net_class, logits, "binary_log_loss", l2=0.5)
    assert regularized.loss(x, y, sample_weight=w) == pytest.approx(
        (3 * np.log(8) + np.log(8 / 3)) / 4 + ln3**2 / 8, rel=1e-15)
    np.testing.assert_allclose(regularized.gradients(x, y, sample_weight=w)[0][0],
                               [[-3 / 8, 9 / 16 + ln3 / 8], [1 / 16 - ln3 / 8, -1 / 8]], rtol=1e-15)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("n_out", [1, 3])
def test_binary_log_loss_is_binary_cross_entropy_times_the_outputs(net_class, dtype, n_out, weighted):
    """The same sigmoid per output, summed instead of averaged over the outputs: loss and
    gradient are k times binary_cross_entropy's; probabilities and classes are its own."""
    rng = np.random.default_rng(0)
    layers = [3, 5, n_out]
    x, y, w = random_weighted_data(rng, 9, layers, "binary_log_loss", soft=True)
    w = w if weighted else None
    summed = make_net(net_class, layers, x=x, seed=1, loss="binary_log_loss", dtype=dtype)
    averaged = make_net(net_class, layers, x=x, seed=1, loss="binary_cross_entropy", dtype=dtype)
    rtol = 1e-12 if dtype == np.float64 else TOL[dtype]
    assert summed.loss(x, y, sample_weight=w) == pytest.approx(
        n_out * averaged.loss(x, y, sample_weight=w), rel=rtol)
    assert rel_error(flat(summed.gradients(x, y, sample_weight=w)),
                     n_out * flat(averaged.gradients(x, y, sample_weight=w))) <= rtol
    np.testing.assert_array_equal(summed.predict_proba(x), averaged.predict_proba(x))
    np.testing.assert_array_equal(summed.predict_classes(x), averaged.predict_classes(x))
    assert summed.predict_classes(x).shape == ((9,) if n_out == 1 else (9, n_out))


def test_binary_log_loss_validation_accuracy_and_targets(net_class, dtype):
    """fit's val_accuracy is the fraction of outputs on the right side of 1/2 (as for
    binary_cross_entropy), its val_loss the unpenalized loss; targets outside [0, 1] are refused."""
    rng = np.random.default_rng(2)
    layers = [3, 6, 2]
    x, y, _ = random_weighted_data(rng, 20, layers, "binary_log_loss")
    x_val, y_val, _ = random_weighted_data(rng, 11, layers, "binary_log_loss")
    net = make_net(net_class, layers, x=x, seed=3, loss="binary_log_loss", l2=0.4, dtype=dtype)
    history = net.fit(x, y, epochs=1, lr=0.05, validation_data=(x_val, y_val))
    classes = net.predict_classes(x_val)
    assert history.val_accuracy[0] == pytest.approx(np.mean(classes == y_val), abs=1e-12)
    plain = make_net(net_class, layers, loss="binary_log_loss", dtype=dtype)
    plain.parameters = net.parameters
    assert_loss_close(history.val_loss[0], plain.loss(x_val, y_val), plain.loss(x_val, y_val), dtype)
    for bad in (1.5, -0.25):
        y_bad = y.copy()
        y_bad[4, 1] = bad
        with pytest.raises(ValueError, match=r"y must hold probabilities in \[0, 1\] for loss='binary_log_loss'"):
            net.loss(x, y_bad)
        with pytest.raises(ValueError, match="binary_log_loss"):
            net.fit(x, y_bad, epochs=1, lr=0.1)


# -- the L2 penalty -----------------------------------------------------------------------


@pytest.mark.parametrize("weighting", ["unweighted", "weighted", "all-zero"])
@pytest.mark.parametrize("loss", ALL_LOSSES)
def test_penalty_is_half_alpha_sum_of_squared_weights_over_n(net_class, dtype, loss, weighting):
    """Against the same net with l2 = 0: the loss gains 0.5 l2 sum(W**2) / N, each weight
    gradient l2 W / N, and the bias gradients stay exactly as they were, with N the row
    count, the weights' sum, or 1 when all weights are 0; on every loss."""
    rng = np.random.default_rng(4)
    layers = [3, 5, 4, 3]
    x, y, w = random_weighted_data(rng, 8, layers, loss)
    w = {"unweighted": None, "weighted": w, "all-zero": np.zeros(8)}[weighting]
    l2 = 0.35
    net = make_net(net_class, layers, x=x, seed=5, loss=loss, l2=l2, dtype=dtype, activation="tanh")
    plain = make_net(net_class, layers, x=x, seed=5, loss=loss, dtype=dtype, activation="tanh")
    net.biases = [b + 3.0 for b in net.biases]  # large biases: any of them in the penalty would show
    plain.biases = net.biases
    assert net.l2 == l2 and plain.l2 == 0.0
    n = normalizer(w, 8)
    reg = penalty(net.weights, l2, n)
    data_loss = plain.loss(x, y, sample_weight=w)
    assert_loss_close(net.loss(x, y, sample_weight=w), data_loss + reg, abs(data_loss) + reg, dtype)
    grad_weights, grad_biases = net.gradients(x, y, sample_weight=w)
    plain_weights, plain_biases = plain.gradients(x, y, sample_weight=w)
    for got, data_grad, weight in zip(grad_weights, plain_weights, net.weights):
        assert_close(got, data_grad + l2 * weight.astype(np.float64) / n, dtype, "weight gradient")
    for got, data_grad in zip(grad_biases, plain_biases):
        np.testing.assert_array_equal(got, data_grad)
    if weighting == "all-zero":  # no data term at all: the penalty alone, over N = 1
        assert plain.loss(x, y, sample_weight=w) == 0.0
        assert net.loss(x, y, sample_weight=w) == pytest.approx(reg, rel=TOL[dtype])


def test_penalty_scales_with_l2_and_ignores_biases(net_class):
    """The penalty is linear in l2 and zero for a net whose weights are all 0, however
    large its biases (a pure-bias net's loss is its data loss)."""
    rng = np.random.default_rng(6)
    x, y, _ = random_weighted_data(rng, 7, [3, 4, 2], "squared_error")
    losses = {}
    for l2 in (0.0, 0.5, 1.0, 2.0):
        net = make_net(net_class, [3, 4, 2], seed=7, loss="squared_error", l2=l2)
        losses[l2] = net.loss(x, y)
        net.weights = [np.zeros(w.shape) for w in net.weights]
        net.biases = [np.full(b.shape, 5.0) for b in net.biases]
        zero = make_net(net_class, [3, 4, 2], seed=7, loss="squared_error")
        zero.parameters = net.parameters
        assert net.loss(x, y) == zero.loss(x, y)
    assert losses[2.0] - losses[0.0] == pytest.approx(2 * (losses[1.0] - losses[0.0]), rel=1e-12)
    assert losses[1.0] - losses[0.0] == pytest.approx(2 * (losses[0.5] - losses[0.0]), rel=1e-12)
    assert losses[0.5] > losses[0.0]


def test_train_step_includes_the_penalty(net_class, dtype):
    """train_step returns the penalized loss before the step and applies
    p - lr * (penalized gradient)."""
    rng = np.random.default_rng(8)
    x, y, w = random_weighted_data(rng, 6, [3, 4, 2], "squared_error")
    net = make_net(net_class, [3, 4, 2], x=x, seed=9, loss="squared_error", l2=0.8, dtype=dtype)
    for weights in (None, w):
        loss, grad = net.loss_and_gradients(x, y, sample_weight=weights)
        before = net.parameters.astype(np.float64)
        assert net.train_step(x, y, 0.1, sample_weight=weights) == pytest.approx(loss, rel=TOL[dtype])
        assert_close(net.parameters, before - 0.1 * grad, dtype, "parameters after train_step")


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_each_batch_penalty_uses_its_own_count(net_class, dtype, weighted):
    """In a mini-batch fit the first step's loss is the first batch's data loss plus
    0.5 l2 sum(W**2) / N of that batch (4 rows, or their weights' sum), not of all 10."""
    rng = np.random.default_rng(10)
    layers = [3, 4, 1]
    x, y, w = random_weighted_data(rng, 10, layers, "squared_error")
    w = w if weighted else None
    l2 = 1.5
    net = make_net(net_class, layers, x=x, seed=11, loss="squared_error", l2=l2, dtype=dtype)
    z = net.predict(x[:4])
    batch_w = None if w is None else w[:4]
    data_loss, scale = expected_loss("squared_error", z, y[:4], batch_w)
    reg = penalty(net.weights, l2, normalizer(batch_w, 4))
    assert abs(reg - penalty(net.weights, l2, normalizer(w, 10))) > 1e-3 * reg  # the two N differ
    history = net.fit(x, y, epochs=1, lr=0.01, batch_size=4, shuffle=False, sample_weight=w)
    assert_loss_close(history.loss[0], data_loss + reg, scale + reg, dtype)


@pytest.mark.parametrize("split", ["validation_data", "validation_fraction"])
def test_fit_losses_include_the_penalty_validation_losses_do_not(net_class, dtype, split):
    """A full-batch fit's step loss is loss() before it, penalty included; the validation
    loss after it is the loss of the same parameters without the penalty."""
    rng = np.random.default_rng(12)
    layers = [3, 5, 2]
    x, y, _ = random_weighted_data(rng, 16, layers, "squared_error")
    x_val, y_val, _ = random_weighted_data(rng, 6, layers, "squared_error")
    net = make_net(net_class, layers, x=x, seed=13, loss="squared_error", l2=2.0, dtype=dtype)
    x_train, y_train = x, y
    kwargs = dict(validation_data=(x_val, y_val))
    if split == "validation_fraction":
        # The split of nnfast._base: a permutation seeded by seed, ceil(0.25 * 16) = 4 held out.
        order = np.random.default_rng(14).permutation(16)
        val, train = np.sort(order[:4]), np.sort(order[4:])
        x_train, y_train, x_val, y_val = x[train], y[train], x[val], y[val]
        kwargs = dict(validation_fraction=0.25, seed=14)
    before = net.loss(x_train, y_train)
    history = net.fit(x, y, epochs=1, lr=0.01, **kwargs)
    assert_loss_close(history.loss[0], before, before, dtype)
    assert_loss_close(history.epoch_loss[0], before, before, dtype)
    plain = make_net(net_class, layers, loss="squared_error", dtype=dtype)
    plain.parameters = net.parameters
    unpenalized = plain.loss(x_val, y_val)
    assert_loss_close(history.val_loss[0], unpenalized, unpenalized, dtype)
    # The penalty is large here: including it would be far outside the tolerance.
    assert net.loss(x_val, y_val) - unpenalized > 100 * TOL[dtype] * unpenalized


# (id, l2, exception): values refused with a message naming l2.
REFUSED_L2 = [
    ("negative", -0.1, ValueError),
    ("tiny-negative", -1e-300, ValueError),
    ("nan", np.nan, ValueError),
    ("inf", np.inf, ValueError),
    ("string", "0.1", TypeError),
    ("none", None, TypeError),
    ("bool", True, TypeError),
    ("complex", 1j, TypeError),
    ("list", [0.1], TypeError),
]


@pytest.mark.parametrize("l2, error", [(v, e) for _, v, e in REFUSED_L2], ids=[i for i, _, _ in REFUSED_L2])
def test_bad_l2_is_refused(net_class, l2, error):
    """Negative, non-finite and non-number penalties raise an error naming l2."""
    with pytest.raises(error, match="l2"):
        net_class([2, 3, 1], l2=l2)


@pytest.mark.parametrize("l2", [0, 0.25, np.float32(0.5), np.float64(2.0), 3])
def test_l2_accepts_real_numbers(net_class, l2):
    """Python and NumPy ints and floats >= 0; the property gives a float back."""
    net = net_class([2, 3, 1], l2=l2)
    assert isinstance(net.l2, float) and net.l2 == float(l2)


# -- central differences ------------------------------------------------------------------


@pytest.mark.parametrize("net_class", NET_CLASSES, ids=NET_IDS)
@given(layers=st.lists(st.integers(1, 6), min_size=2, max_size=4), n_samples=st.integers(1, 6),
       bias=st.booleans(), loss=st.sampled_from(ALL_LOSSES), soft=st.booleans(), weighted=st.booleans(),
       l2=st.floats(0.0, 3.0), seed=st.integers(0, 2**32 - 1), data_=st.data())
def test_gradients_with_l2_match_central_differences(net_class, layers, n_samples, bias, loss, soft,
                                                     weighted, l2, seed, data_):
    """float64 gradients of the penalized (and weighted) loss equal its central differences,
    for random architectures, activations, every loss, targets, weights and l2."""
    if loss == "cross_entropy":
        layers = layers[:-1] + [max(layers[-1], 2)]
    options = data_.draw(activation_options(len(layers) - 2))
    rng = np.random.default_rng(seed)
    x, y, w = random_weighted_data(rng, n_samples, layers, loss, soft)
    w = w if weighted else None
    net = make_net(net_class, layers, x=x, seed=seed, bias=bias, loss=loss, l2=l2, **options)
    numeric = central_differences(net, x, y, w)
    assert_matches_central_differences(flat(net.gradients(x, y, sample_weight=w)), numeric,
                                       net.loss(x, y, sample_weight=w))


@pytest.mark.parametrize("weighting", ["unweighted", "weighted", "all-zero"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("loss", NEW_LOSSES)
def test_new_losses_match_central_differences(net_class, loss, activation, weighting):
    """Each new loss x activation, with l2 and positive, zero or no weights, two hidden layers."""
    layers = [3, 5, 4, 3]
    x, y, w = random_weighted_data(np.random.default_rng(15), 8, layers, loss, soft=True)
    w[[1, 4]] = 0.0
    w = {"unweighted": None, "weighted": w, "all-zero": np.zeros(8)}[weighting]
    net = make_net(net_class, layers, x=x, seed=16, activation=activation, loss=loss, l2=0.5,
                   negative_slope=0.1)
    numeric = central_differences(net, x, y, w)
    assert np.abs(numeric).max() > 0  # a zero gradient would make the check vacuous
    assert_matches_central_differences(flat(net.gradients(x, y, sample_weight=w)), numeric,
                                       net.loss(x, y, sample_weight=w))


# -- nnfast.Net against the reference -----------------------------------------------------

PERMUTATION = np.random.default_rng(17).permutation(12)
# How a fit takes its batches from 12 samples.
BATCHINGS = {
    "shuffled-uneven": dict(batch_size=5, shuffle=True, seed=18),
    "order-uneven": dict(batch_size=5, order=PERMUTATION),
    "one-row-shuffled": dict(batch_size=1, shuffle=True, seed=19),
    "one-row-order": dict(batch_size=1, order=PERMUTATION),
    "unshuffled-even": dict(batch_size=4, shuffle=False),
    "full-batch": dict(batch_size=None),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("batching", BATCHINGS.keys())
@pytest.mark.parametrize("optimizer", OPTIMIZERS.keys())
@pytest.mark.parametrize("loss", NEW_LOSSES)
def test_every_optimizer_and_batching_with_l2_matches_reference(loss, optimizer, batching, weighted, dtype):
    """Each new loss with l2 x each optimizer in both styles x batch sizes 1, uneven, even
    and full, shuffled, in a given order or not, weighted or not: evaluation, a train_step,
    and two 2-epoch fits (the second continuing the first's optimizer state)."""
    layers = [4, 7, 3]
    x, y, w = random_weighted_data(np.random.default_rng(20), 12, layers, loss, soft=True)
    fast, ref = make_pair(layers, x=x, seed=21, loss=loss, l2=0.3, dtype=dtype, activation="tanh")
    lr = training_lr(ref, x, 1)
    batches = BATCHINGS[batching]
    fresh = lambda d: dict(batches, epochs=2, optimizer=OPTIMIZERS[optimizer](lr, adam_eps(d)))  # noqa: E731
    continued = lambda d: dict(batches, epochs=2)  # noqa: E731  (the net's optimizer, with its state)
    assert_agreement(fast, ref, x, y, w if weighted else None, lr, [fresh, continued])


@given(config=net_configs(max_hidden=3, losses=ALL_LOSSES), batch_size=st.integers(1, 20),
       optimizer=st.sampled_from(sorted(OPTIMIZERS)), batching=st.sampled_from(["shuffle", "order", "none"]),
       l2=st.sampled_from([0.0, 1e-4, 0.1, 2.0]), weighted=st.booleans(), decay=st.booleans())
def test_random_nets_with_l2_match_reference(config, batch_size, optimizer, batching, l2, weighted, decay):
    """Random architectures on both sides of the BLAS threshold, activations, every loss,
    dtypes, l2, weights, batch sizes, both styles of every optimizer, a learning rate
    that changes per epoch or not, and shuffled, ordered or plain batches."""
    rng = np.random.default_rng(config["seed"])
    layers, loss, dtype = config["layers"], config["loss"], config["dtype"]
    x, y, w = random_weighted_data(rng, config["n_samples"], layers, loss, config["soft_targets"])
    fast, ref = make_pair(layers, x=x, seed=config["seed"], bias=config["bias"], loss=loss, l2=l2, dtype=dtype,
                          activation=config["activation"], negative_slope=config["negative_slope"])
    if loss == "poisson":
        # Steep leaky ReLUs stacked can give outputs of 100 and more: means beyond float32.
        assume(np.abs(ref.predict(x)).max() < 20)
    lr = training_lr(ref, x, batch_size, w if weighted else None)
    n = len(x)
    options = {"shuffle": dict(shuffle=True, seed=config["seed"]), "none": dict(shuffle=False),
               "order": dict(order=rng.permutation(n))}[batching]
    schedule = nnfast.schedules.StepDecay(1, 0.5) if decay else None
    fit = lambda d: dict(epochs=3, batch_size=batch_size, schedule=schedule,  # noqa: E731
                         optimizer=OPTIMIZERS[optimizer](lr, adam_eps(d)), **options)
    assert_agreement(fast, ref, x, y, w if weighted else None, lr, [fit])


@pytest.mark.parametrize("loss", ["cross_entropy", "poisson"])
def test_other_sklearn_losses_with_l2_and_sklearn_styles_match_reference(loss, dtype):
    """cross_entropy (MLPClassifier's softmax) and poisson with l2, weights and both
    sklearn-style optimizers: evaluation and shuffled uneven fits."""
    layers = [4, 6, 3]
    x, y, w = random_weighted_data(np.random.default_rng(22), 12, layers, loss, soft=True)
    fast, ref = make_pair(layers, x=x, seed=23, loss=loss, l2=0.2, dtype=dtype, activation="relu")
    lr = training_lr(ref, x, 1)
    fits = [lambda d, name=name: dict(epochs=2, batch_size=5, seed=24, optimizer=OPTIMIZERS[name](lr, adam_eps(d)))
            for name in ("nesterov-sklearn", "adam-sklearn")]
    assert_agreement(fast, ref, x, y, w, lr, fits)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("loss", NEW_LOSSES)
def test_penalty_over_several_row_blocks_matches_reference(loss, dtype, weighted):
    """nnfast.Net evaluates a large batch in blocks of rows: the penalty is added once, over
    the whole batch's N, not per block; and a full-batch fit's step takes it too."""
    layers = [3, 4000, 3]  # one wide layer: blocks of 65 (float64) or 131 (float32) rows
    block = nnfast.Net(layers, dtype=dtype)._fast.block_rows  # private, as test_fastpath.py reads it
    n_samples = 2 * block + 29
    x, y, w = random_weighted_data(np.random.default_rng(64), n_samples, layers, loss, soft=True)
    w = w if weighted else None
    fast, ref = make_pair(layers, x=x, seed=65, loss=loss, l2=50.0, dtype=dtype, activation="tanh")
    scale = loss_size(ref, x, y, w)
    assert penalty(ref.weights, 50.0, normalizer(w, n_samples)) > 0.1 * scale  # a penalty that shows
    assert_loss_close(fast.loss(x, y, sample_weight=w), ref.loss(x, y, sample_weight=w), scale, dtype)
    assert_close(fast.gradients(x, y, sample_weight=w), ref.gradients(x, y, sample_weight=w), dtype, "gradients")
    histories = [net.fit(x, y, epochs=1, lr=1e-3, sample_weight=w) for net in (fast, ref)]
    assert_loss_close(histories[0].loss[0], histories[1].loss[0], scale, dtype, what="fit")
    assert_close(params_of(fast), params_of(ref), dtype, "parameters after fit")


# -- the compiled one-row plain SGD path -----------------------------------------------------


def one_row_sgd_by_hand(net, x, y, lr, l2):
    """Plain SGD over the rows of ``x`` in turn, by hand: p -= lr * (g + l2 W / 1), g the
    data gradient of ``net``'s loss (a twin with l2 = 0) on one row.

    Returns ``(loss before each step, parameters after the last)`` in float64.
    """
    plain = make_net(type(net), list(net.layers), loss=net.loss_name, dtype=net.dtype,
                     activation=net.activation, bias=net.bias)
    mask = weight_mask(net)
    p = net.parameters.astype(np.float64)
    losses = []
    for i in range(len(x)):
        plain.parameters = p
        data_loss, grad = plain.loss_and_gradients(x[i : i + 1], y[i : i + 1])
        losses.append(data_loss + 0.5 * l2 * float(np.sum(np.square(mask * p))))
        p = p - lr * (grad.astype(np.float64) + l2 * mask * p)
    return np.array(losses), p


@pytest.mark.parametrize("loss", ["squared_error", "sse", "binary_log_loss"])
def test_one_row_plain_sgd_includes_the_penalty(net_class, dtype, loss):
    """batch_size=1 with lr= (the path that updates during backprop when l2 is 0), and
    train_step on one row (trusted and validated arguments): the step is
    p - lr (g + l2 W / 1), by hand, and differs visibly from the unpenalized one."""
    rng = np.random.default_rng(25)
    layers = [3, 5, 2]
    x, y, _ = random_weighted_data(rng, 7, layers, loss)
    x, y = x.astype(dtype), y.astype(dtype)  # arrays the compiled train_step trusts without validation
    l2, lr = 0.5, 0.05
    net = make_net(net_class, layers, x=x, seed=26, loss=loss, l2=l2, dtype=dtype)
    start = copy.deepcopy(net)
    losses, expected = one_row_sgd_by_hand(net, x, y, lr, l2)
    history = net.fit(x, y, epochs=1, lr=lr, batch_size=1, shuffle=False)
    assert rel_error(history.loss, losses) <= TOL[dtype]
    assert_close(net.parameters, expected, dtype, "parameters after the one-row fit")
    # The same steps one train_step at a time, with float arrays and with nested lists.
    for as_given in (lambda a: a, lambda a: a.tolist()):
        stepped = copy.deepcopy(start)
        step_losses = [stepped.train_step(as_given(x[i : i + 1]), as_given(y[i : i + 1]), lr) for i in range(7)]
        assert rel_error(step_losses, losses) <= TOL[dtype]
        assert_close(stepped.parameters, expected, dtype, "parameters after one-row train_steps")
    plain = make_net(net_class, layers, x=x, seed=26, loss=loss, dtype=dtype)
    plain.fit(x, y, epochs=1, lr=lr, batch_size=1, shuffle=False)
    assert rel_error(plain.parameters - start.parameters, expected - start.parameters) > 100 * TOL[dtype]


# -- the update rules by hand ------------------------------------------------------------------


def gradient_at(net, x, y):
    """A function of float64 parameters: ``net``'s gradient there (on a copy of ``net``)."""
    probe = copy.deepcopy(net)

    def gradient(p):
        probe.parameters = p
        return probe.loss_and_gradients(x, y)[1].astype(np.float64)

    return gradient


def sgd_by_hand(style, momentum, nesterov, gradient, p, learning_rates):
    """Parameters after one full-batch step per learning rate, by the documented formulas."""
    velocity = np.zeros_like(p)
    for lr in learning_rates:
        g = gradient(p)
        if style == "sklearn":
            velocity = momentum * velocity - lr * g
            p = p + (momentum * velocity - lr * g if nesterov else velocity)
        else:
            velocity = momentum * velocity + g
            p = p - lr * (g + momentum * velocity if nesterov else velocity)
    return p


def adam_by_hand(style, betas, eps, gradient, p, learning_rates):
    """Parameters after one full-batch Adam step per learning rate, by the documented formulas."""
    beta1, beta2 = betas
    m, v = np.zeros_like(p), np.zeros_like(p)
    for t, lr in enumerate(learning_rates, start=1):
        g = gradient(p)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        if style == "sklearn":
            p = p + (-lr * np.sqrt(1 - beta2**t) / (1 - beta1**t)) * m / (np.sqrt(v) + eps)
        else:
            p = p - (lr / (1 - beta1**t)) * m / (np.sqrt(v) / np.sqrt(1 - beta2**t) + eps)
    return p


# name -> (constructor, function of (style, gradient, p, learning rates)).
RULES = {
    "momentum": (lambda lr, style: nnfast.SGD(lr, momentum=0.9, style=style),
                 lambda style, *args: sgd_by_hand(style, 0.9, False, *args)),
    "nesterov": (lambda lr, style: nnfast.SGD(lr, momentum=0.6, nesterov=True, style=style),
                 lambda style, *args: sgd_by_hand(style, 0.6, True, *args)),
    # A large eps: where the two styles put it shows in every update.
    "adam": (lambda lr, style: nnfast.Adam(lr, betas=(0.8, 0.9), eps=0.05, style=style),
             lambda style, *args: adam_by_hand(style, (0.8, 0.9), 0.05, *args)),
}


def two_steps(net, x, y, optimizer, learning_rates):
    """Two full-batch steps: one fit of 2 epochs at a constant lr, or two fits with
    ``optimizer.lr`` reassigned in between (the net keeps the optimizer and its state)."""
    first, second = learning_rates
    if first == second:
        return net.fit(x, y, epochs=2, optimizer=optimizer)
    net.fit(x, y, epochs=1, optimizer=optimizer)
    state = copy.deepcopy(optimizer.buffers)
    optimizer.lr = second
    assert optimizer.step_count == 1
    np.testing.assert_array_equal(optimizer.buffers, state)  # reassigning lr keeps the state
    return net.fit(x, y, epochs=1)


@pytest.mark.parametrize("lrs", [(0.1, 0.1), (0.1, 0.02)], ids=["constant-lr", "lr-reassigned"])
@pytest.mark.parametrize("style", ["torch", "sklearn"])
@pytest.mark.parametrize("rule", RULES.keys())
def test_two_steps_follow_the_formulas_by_hand(net_class, dtype, rule, style, lrs):
    """SGD with momentum or Nesterov and Adam, each style, two steps from the net's
    start, by hand with the net's own gradients at each point; compared as updates."""
    rng = np.random.default_rng(27)
    x, y, _ = random_weighted_data(rng, 6, [3, 4, 2], "squared_error")
    net = make_net(net_class, [3, 4, 2], x=x, seed=28, loss="squared_error", l2=0.2, dtype=dtype,
                   activation="tanh")
    make, by_hand = RULES[rule]
    optimizer = make(lrs[0], style)
    start = net.parameters.astype(np.float64)
    expected = by_hand(style, gradient_at(net, x, y), start, lrs)
    two_steps(net, x, y, optimizer, lrs)
    assert optimizer.step_count == 2
    rtol = 1e-12 if dtype == np.float64 else TOL[dtype]
    error = rel_error(net.parameters - start, expected - start)
    assert error <= rtol, f"update: relative error {error:.3g} > {rtol:g}"


@pytest.mark.parametrize("nesterov", [False, True], ids=["momentum", "nesterov"])
def test_sgd_styles_agree_with_a_constant_lr_and_differ_when_it_changes(net_class, dtype, nesterov):
    """With one lr throughout, sklearn's velocity is -lr times torch's buffer: the same
    steps up to rounding (3 epochs of shuffled mini-batches). With a decaying schedule, or
    lr reassigned between fits, sklearn applies the new rate to new gradients only, and
    the trajectories part."""
    rng = np.random.default_rng(29)
    layers = [3, 6, 2]
    x, y, _ = random_weighted_data(rng, 10, layers, "squared_error")
    start = make_net(net_class, layers, x=x, seed=30, loss="squared_error", l2=0.1, dtype=dtype)

    def run(style, how):
        net = copy.deepcopy(start)
        optimizer = nnfast.SGD(0.05, momentum=0.8, nesterov=nesterov, style=style)
        fit = dict(batch_size=3, seed=31)
        if how == "schedule":
            net.fit(x, y, epochs=3, optimizer=optimizer, schedule=nnfast.schedules.StepDecay(1, 0.3), **fit)
        else:
            net.fit(x, y, epochs=1 if how == "reassigned" else 3, optimizer=optimizer, **fit)
            if how == "reassigned":
                optimizer.lr = 0.01
                net.fit(x, y, epochs=2, **fit)
        return net.parameters.astype(np.float64) - start.parameters

    assert rel_error(run("sklearn", "constant"), run("torch", "constant")) <= TOL[dtype]
    for how in ("schedule", "reassigned"):
        assert rel_error(run("sklearn", how), run("torch", how)) > 1e-3, how


def test_plain_sgd_is_the_same_in_both_styles(net_class, dtype):
    """Without momentum both rules are p - lr g: the same to the bit, and no buffer."""
    rng = np.random.default_rng(32)
    x, y, _ = random_weighted_data(rng, 9, [3, 4, 2], "squared_error")
    nets = [make_net(net_class, [3, 4, 2], seed=33, loss="squared_error", l2=0.1, dtype=dtype) for _ in range(2)]
    optimizers = [nnfast.SGD(0.05, style=style) for style in ("torch", "sklearn")]
    histories = [net.fit(x, y, epochs=2, batch_size=4, seed=34, optimizer=opt) for net, opt in zip(nets, optimizers)]
    np.testing.assert_array_equal(histories[0].loss, histories[1].loss)
    np.testing.assert_array_equal(nets[0].parameters, nets[1].parameters)
    assert optimizers[1].n_moments == 0 and optimizers[1].buffers.shape[0] == 0


@pytest.mark.parametrize("make", [lambda: nnfast.SGD(0.1, momentum=0.9, style="sklearn"),
                                  lambda: nnfast.Adam(0.01, style="sklearn"), lambda: nnfast.AdamW(0.01)],
                         ids=["sgd-sklearn", "adam-sklearn", "adamw"])
@pytest.mark.parametrize("bad, error", [(0.0, ValueError), (-0.1, ValueError), (np.nan, ValueError),
                                        (np.inf, ValueError), ("0.1", TypeError), (None, TypeError),
                                        (True, TypeError)],
                         ids=["zero", "negative", "nan", "inf", "string", "none", "bool"])
def test_reassigned_lr_is_validated(make, bad, error):
    """optimizer.lr = ... checks as the constructor does and leaves lr as it was."""
    optimizer = make()
    before = optimizer.lr
    with pytest.raises(error, match="lr"):
        optimizer.lr = bad
    assert optimizer.lr == before
    optimizer.lr = np.float32(0.5)
    assert optimizer.lr == 0.5


def test_style_in_repr_and_attributes():
    """The style is an attribute and in the repr of SGD and Adam (torch's by default);
    AdamW has none to choose and shows none."""
    for make in (lambda **kw: nnfast.SGD(0.1, momentum=0.5, **kw), lambda **kw: nnfast.Adam(0.01, **kw)):
        assert make().style == "torch" and "style='torch'" in repr(make())
        sklearn_style = make(style="sklearn")
        assert sklearn_style.style == "sklearn" and "style='sklearn'" in repr(sklearn_style)
    assert "style" not in repr(nnfast.AdamW(0.01))
    with pytest.raises(TypeError):
        nnfast.AdamW(0.01, style="sklearn")


@pytest.mark.parametrize("bad", ["Sklearn", "pytorch", "", " sklearn", None, 1, b"sklearn", ["sklearn"]])
@pytest.mark.parametrize("make", [lambda style: nnfast.SGD(0.1, style=style),
                                  lambda style: nnfast.Adam(0.01, style=style)], ids=["sgd", "adam"])
def test_bad_style_is_refused(make, bad):
    """Only the exact names "torch" and "sklearn"."""
    with pytest.raises((TypeError, ValueError), match="style"):
        make(bad)


# -- fit(order=...) ---------------------------------------------------------------------------


ORDER_BATCH_SIZES = [1, 4, 11]  # one row, uneven (4 + 4 + 3), the full batch


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("batch_size", ORDER_BATCH_SIZES)
def test_order_is_train_steps_on_those_batches(net_class, dtype, batch_size, weighted):
    """Plain SGD with order: each epoch the train_steps on consecutive slices of the
    permutation, with their weights, to the bit; the same permutation every epoch."""
    rng = np.random.default_rng(35)
    layers = [4, 6, 3]
    x, y, w = random_weighted_data(rng, 11, layers, "squared_error")
    w = w if weighted else None
    perm = rng.permutation(11)
    net = make_net(net_class, layers, x=x, seed=36, loss="squared_error", l2=0.3, dtype=dtype)
    stepped = copy.deepcopy(net)
    history = net.fit(x, y, epochs=2, lr=0.05, batch_size=batch_size, order=perm, sample_weight=w)
    losses = []
    for _ in range(2):
        for start in range(0, 11, batch_size):
            batch = perm[start : start + batch_size]
            losses.append(stepped.train_step(x[batch], y[batch], 0.05,
                                             sample_weight=None if w is None else w[batch]))
    np.testing.assert_array_equal(history.loss, losses)
    np.testing.assert_array_equal(net.parameters, stepped.parameters)


@pytest.mark.parametrize("rule", ["nesterov-sklearn", "adam-sklearn", "adamw"])
def test_order_is_optimizer_steps_on_those_batches(net_class, dtype, rule):
    """Any optimizer with order: the steps of one-batch fits on the slices in turn (the
    net keeps the optimizer's state between them), to the bit."""
    rng = np.random.default_rng(37)
    layers = [4, 6, 3]
    x, y, w = random_weighted_data(rng, 11, layers, "binary_log_loss", soft=True)
    perm = rng.permutation(11)
    net = make_net(net_class, layers, x=x, seed=38, loss="binary_log_loss", l2=0.3, dtype=dtype)
    stepped = copy.deepcopy(net)
    history = net.fit(x, y, epochs=2, batch_size=4, order=perm, sample_weight=w,
                      optimizer=OPTIMIZERS[rule](0.05, adam_eps(dtype)))
    optimizer, losses = OPTIMIZERS[rule](0.05, adam_eps(dtype)), []
    for _ in range(2):
        for start in range(0, 11, 4):
            batch = perm[start : start + 4]
            losses.extend(stepped.fit(x[batch], y[batch], epochs=1, optimizer=optimizer,
                                      sample_weight=w[batch]).loss)
    np.testing.assert_array_equal(history.loss, losses)
    np.testing.assert_array_equal(net.parameters, stepped.parameters)
    assert net.optimizer.step_count == optimizer.step_count == 6


def test_order_overrides_shuffle_and_seed(net_class):
    """With order, shuffle and seed do not change the batches; the identity order is the
    unshuffled fit; several epochs equal as many one-epoch fits with the same order."""
    rng = np.random.default_rng(39)
    x, y, _ = random_weighted_data(rng, 10, [3, 4, 2], "squared_error")
    perm = rng.permutation(10)
    start = make_net(net_class, [3, 4, 2], x=x, seed=40, loss="squared_error", l2=0.1)

    def fitted(**kwargs):
        net = copy.deepcopy(start)
        return net.fit(x, y, lr=0.05, batch_size=3, **kwargs).loss, net.parameters

    expected = fitted(epochs=3, order=perm, shuffle=False)
    for kwargs in (dict(shuffle=True, seed=1), dict(shuffle=True, seed=2), dict(seed=None)):
        got = fitted(epochs=3, order=perm, **kwargs)
        np.testing.assert_array_equal(got[0], expected[0])
        np.testing.assert_array_equal(got[1], expected[1])
    identity, unshuffled = fitted(epochs=2, order=np.arange(10)), fitted(epochs=2, shuffle=False)
    np.testing.assert_array_equal(identity[0], unshuffled[0])
    np.testing.assert_array_equal(identity[1], unshuffled[1])
    net = copy.deepcopy(start)
    losses = np.concatenate([net.fit(x, y, epochs=1, lr=0.05, batch_size=3, order=perm).loss for _ in range(3)])
    np.testing.assert_array_equal(losses, expected[0])
    np.testing.assert_array_equal(net.parameters, expected[1])
    # A shuffled fit is another trajectory: the order did matter.
    assert not np.array_equal(fitted(epochs=3, seed=41)[1], expected[1])


def read_only(a):
    """A read-only copy of ``a``."""
    a = np.array(a)
    a.flags.writeable = False
    return a


# (id, make the order from a permutation): the same permutation in other types and layouts.
ORDER_FORMS = [
    ("list", lambda p: p.tolist()),
    ("tuple", lambda p: tuple(p.tolist())),
    ("int32", lambda p: p.astype(np.int32)),
    ("uint16", lambda p: p.astype(np.uint16)),
    ("strided", lambda p: np.repeat(p, 2)[::2]),
    ("read-only", read_only),
]


@pytest.mark.parametrize("make", [m for _, m in ORDER_FORMS], ids=[i for i, _ in ORDER_FORMS])
def test_order_in_any_integer_form_is_the_same(net_class, make):
    """Lists, tuples, other integer widths and any memory layout are the same permutation."""
    rng = np.random.default_rng(42)
    x, y, _ = random_weighted_data(rng, 8, [3, 4, 1], "squared_error")
    perm = rng.permutation(8)
    nets = [make_net(net_class, [3, 4, 1], seed=43, loss="squared_error") for _ in range(2)]
    expected = nets[0].fit(x, y, epochs=2, lr=0.05, batch_size=3, order=perm)
    got = nets[1].fit(x, y, epochs=2, lr=0.05, batch_size=3, order=make(perm))
    np.testing.assert_array_equal(got.loss, expected.loss)
    np.testing.assert_array_equal(nets[1].parameters, nets[0].parameters)


def test_callers_order_is_neither_modified_nor_kept(net_class):
    """The order is read once: the caller's array is unchanged after the fit, and
    changing it between epochs (from the callback) or after the fit changes nothing."""
    rng = np.random.default_rng(44)
    x, y, _ = random_weighted_data(rng, 9, [3, 4, 2], "squared_error")
    start = make_net(net_class, [3, 4, 2], seed=45, loss="squared_error", l2=0.1)
    perm = rng.permutation(9)
    original = perm.copy()
    untouched = copy.deepcopy(start)
    expected = untouched.fit(x, y, epochs=3, lr=0.05, batch_size=2, order=original.copy())

    def scramble(epoch, history):
        perm[:] = perm[::-1].copy()  # in place, between epochs

    net = copy.deepcopy(start)
    history = net.fit(x, y, epochs=3, lr=0.05, batch_size=2, order=perm, callback=scramble)
    np.testing.assert_array_equal(history.loss, expected.loss)
    np.testing.assert_array_equal(net.parameters, untouched.parameters)
    mine = original.copy()
    copy.deepcopy(start).fit(x, y, epochs=2, lr=0.05, batch_size=2, order=mine, shuffle=True, seed=3)
    np.testing.assert_array_equal(mine, original)
    # After the fit: the array the net was given, changed, leaves its later training alone.
    perm[:] = 0
    continued = [n.fit(x, y, epochs=1, shuffle=False, batch_size=2).loss for n in (net, untouched)]
    np.testing.assert_array_equal(continued[0], continued[1])


def order_with(index, value):
    """A permutation of range(8) with entry ``index`` replaced by ``value``."""
    order = np.arange(8)[::-1].copy()
    order[index] = value
    return order


# (id, order, exception): orders for 8 samples that are refused with a message naming order.
REFUSED_ORDERS = [
    ("repeated", order_with(2, 0), ValueError),
    ("out-of-range", order_with(2, 8), ValueError),
    ("negative", order_with(2, -1), ValueError),
    ("short", np.arange(7), ValueError),
    ("long", np.arange(9) % 8, ValueError),
    ("empty", np.zeros(0, dtype=np.intp), ValueError),
    ("column", np.arange(8)[:, np.newaxis], (TypeError, ValueError)),
    ("scalar", 3, (TypeError, ValueError)),
    ("floats", np.arange(8, dtype=np.float64), TypeError),
    ("float-list", [float(i) for i in range(8)], TypeError),
    ("bools", np.ones(8, dtype=bool), TypeError),
    ("bool-list", [True] * 4 + [False] * 4, TypeError),
    ("complex", np.arange(8).astype(np.complex128), (TypeError, ValueError)),
    ("strings", [str(i) for i in range(8)], (TypeError, ValueError)),
]


@pytest.mark.parametrize("order, error", [(o, e) for _, o, e in REFUSED_ORDERS], ids=[i for i, _, _ in REFUSED_ORDERS])
def test_bad_orders_are_refused(net_class, order, error):
    """Not a permutation of the rows, not 1-D of the right length, or not integers:
    refused before anything changes."""
    x, y = np.random.default_rng(46).standard_normal((8, 2)), np.zeros((8, 1))
    net = net_class([2, 3, 1], seed=0, loss="squared_error")
    before = net.parameters
    with pytest.raises(error, match="order"):
        net.fit(x, y, epochs=1, lr=0.01, batch_size=3, order=order)
    np.testing.assert_array_equal(net.parameters, before)
    assert net.optimizer is None


@pytest.mark.parametrize("batch_size", ORDER_BATCH_SIZES)
def test_an_order_per_epoch_is_one_epoch_fits_in_those_orders(net_class, dtype, batch_size):
    """A 2-D order: epoch i visits the samples in row i, as fit(epochs=1, order=row i)
    calls in turn do (the optimizer continuing), to the bit."""
    rng = np.random.default_rng(48)
    layers = [4, 6, 3]
    x, y, w = random_weighted_data(rng, 11, layers, "binary_log_loss", soft=True)
    orders = np.stack([rng.permutation(11) for _ in range(3)])
    net = make_net(net_class, layers, x=x, seed=49, loss="binary_log_loss", l2=0.3, dtype=dtype)
    stepped = copy.deepcopy(net)
    history = net.fit(x, y, epochs=3, batch_size=batch_size, order=orders, sample_weight=w,
                      optimizer=OPTIMIZERS["adam-sklearn"](0.05, adam_eps(dtype)))
    optimizer = OPTIMIZERS["adam-sklearn"](0.05, adam_eps(dtype))
    epochs = [stepped.fit(x, y, epochs=1, batch_size=batch_size, order=row, sample_weight=w, optimizer=optimizer)
              for row in orders]
    np.testing.assert_array_equal(history.loss, np.concatenate([h.loss for h in epochs]))
    np.testing.assert_array_equal(history.epoch_loss, np.concatenate([h.epoch_loss for h in epochs]))
    np.testing.assert_array_equal(net.parameters, stepped.parameters)
    # The rows did matter: the first order for every epoch is another trajectory.
    other = make_net(net_class, layers, x=x, seed=49, loss="binary_log_loss", l2=0.3, dtype=dtype)
    other.fit(x, y, epochs=3, batch_size=batch_size, order=orders[0], sample_weight=w,
              optimizer=OPTIMIZERS["adam-sklearn"](0.05, adam_eps(dtype)))
    assert batch_size == 11 or not np.array_equal(other.parameters, net.parameters)


@pytest.mark.parametrize("orders, message", [
    (np.stack([np.arange(8)] * 2), r"order must have shape \(8,\), or \(3, 8\) for one order per epoch"),
    (np.stack([np.arange(8), order_with(2, 0), np.arange(8)]), r"order\[1\] must be a permutation"),
    (np.stack([np.arange(8), np.arange(8), order_with(5, 8)]), r"got 8 at index \(2, 5\)"),
])
def test_bad_orders_per_epoch_are_refused(net_class, orders, message):
    x, y = np.random.default_rng(46).standard_normal((8, 2)), np.zeros((8, 1))
    net = net_class([2, 3, 1], seed=0, loss="squared_error")
    with pytest.raises(ValueError, match=message):
        net.fit(x, y, epochs=3, lr=0.01, batch_size=3, order=orders)


def test_order_refuses_validation_fraction_but_takes_validation_data(net_class):
    """The split would leave order naming rows that are gone; validation data leave x whole."""
    x, y = np.random.default_rng(47).standard_normal((8, 2)), np.zeros((8, 1))
    net = net_class([2, 3, 1], seed=0, loss="squared_error")
    before = net.parameters
    with pytest.raises(ValueError, match="order.*validation_fraction"):
        net.fit(x, y, epochs=1, lr=0.01, order=np.arange(8), validation_fraction=0.25)
    np.testing.assert_array_equal(net.parameters, before)
    history = net.fit(x, y, epochs=1, lr=0.01, order=np.arange(8)[::-1], validation_data=(x[:3], y[:3]))
    assert history.val_loss.shape == (1,)


# -- parameters and loss_and_gradients --------------------------------------------------------


@pytest.mark.parametrize("bias", [True, False, [True, False, True], [False, True, False]],
                         ids=["all", "none", "first-and-last", "middle"])
def test_parameters_layout_is_per_layer_weights_then_bias(net_class, dtype, bias):
    """Layer after layer, the (fan_in, fan_out) weights in C order and then the bias; a
    copy of the net's dtype, and the gradient of loss_and_gradients in the same layout."""
    rng = np.random.default_rng(48)
    layers = [3, 4, 5, 2]
    x, y, _ = random_weighted_data(rng, 6, layers, "squared_error")
    net = make_net(net_class, layers, x=x, seed=49, bias=bias, loss="squared_error", l2=0.2, dtype=dtype)
    params = net.parameters
    assert params.dtype == dtype and params.shape == (net.n_params,)
    np.testing.assert_array_equal(params, layer_layout(net))
    # The gradient vector is the gradients() lists laid out the same way.
    weight_grads, bias_grads = net.gradients(x, y)
    laid_out = copy.deepcopy(net)
    laid_out.weights, laid_out.biases = weight_grads, bias_grads
    np.testing.assert_array_equal(net.loss_and_gradients(x, y)[1], laid_out.parameters)
    # A copy both ways: changing it changes nothing, training does not change it.
    params[:] = 7.0
    np.testing.assert_array_equal(net.parameters, layer_layout(net))
    kept = net.parameters
    snapshot = kept.copy()
    net.fit(x, y, epochs=1, lr=0.01)
    assert not np.array_equal(net.parameters, snapshot)
    np.testing.assert_array_equal(kept, snapshot)  # the copy read before the fit did not move with it


def test_parameters_setter_round_trips(net_class, dtype):
    """Assigning a vector sets weights and biases through the same layout; float64 values
    round to a float32 net's dtype; lists and other real dtypes are accepted."""
    rng = np.random.default_rng(50)
    net = net_class([3, 4, 2], dtype=dtype, bias=[True, False])
    vector = rng.standard_normal(net.n_params)
    net.parameters = vector
    np.testing.assert_array_equal(net.parameters, vector.astype(dtype))
    np.testing.assert_array_equal(net.weights[0].reshape(-1), vector[:12].astype(dtype))
    np.testing.assert_array_equal(net.biases[0], vector[12:16].astype(dtype))
    np.testing.assert_array_equal(net.weights[1].reshape(-1), vector[16:].astype(dtype))
    for form in (vector.tolist(), vector.astype(np.float32), vector[::-1].copy()[::-1]):
        other = net_class([3, 4, 2], dtype=dtype, bias=[True, False])
        other.parameters = form
        np.testing.assert_array_equal(other.parameters, np.asarray(form).astype(dtype))


def parameters_with(index, value, n=26):
    """An ``n``-vector of finite values with entry ``index`` replaced by ``value``."""
    vector = np.linspace(-1, 1, n)
    vector[index] = value
    return vector


# (id, value, exception): vectors for a [3, 4, 2] net (26 parameters) that are refused.
REFUSED_PARAMETERS = [
    ("short", np.zeros(25), ValueError),
    ("long", np.zeros(27), ValueError),
    ("row", np.zeros((1, 26)), (TypeError, ValueError)),
    ("column", np.zeros((26, 1)), (TypeError, ValueError)),
    ("scalar", 0.5, (TypeError, ValueError)),
    ("nan", parameters_with(5, np.nan), ValueError),
    ("inf", parameters_with(20, np.inf), ValueError),
    ("minus-inf", parameters_with(0, -np.inf), ValueError),
    ("complex", np.zeros(26, dtype=np.complex128), (TypeError, ValueError)),
    ("strings", np.array(["0.5"] * 26), (TypeError, ValueError)),
    ("none", None, (TypeError, ValueError)),
    ("weights-and-biases", [np.zeros((3, 4)), np.zeros((4, 2))], (TypeError, ValueError)),
]


@pytest.mark.parametrize("value, error", [(v, e) for _, v, e in REFUSED_PARAMETERS],
                         ids=[i for i, _, _ in REFUSED_PARAMETERS])
def test_bad_parameters_are_refused(net_class, dtype, value, error):
    """Wrong length or shape, non-finite or non-real values: refused, naming parameters,
    and the net keeps its parameters."""
    net = net_class([3, 4, 2], dtype=dtype, seed=0)
    before = net.parameters
    with pytest.raises(error, match="parameters"):
        net.parameters = value
    np.testing.assert_array_equal(net.parameters, before)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("loss", ALL_LOSSES)
def test_loss_and_gradients_is_loss_and_flat_gradients(net_class, dtype, loss, weighted):
    """The pair is (loss(), gradients() laid out as parameters), to the bit, with l2."""
    rng = np.random.default_rng(51)
    layers = [3, 5, 3]
    x, y, w = random_weighted_data(rng, 7, layers, loss)
    w = w if weighted else None
    net = make_net(net_class, layers, x=x, seed=52, loss=loss, l2=0.4, dtype=dtype, bias=[True, False])
    value, gradient = net.loss_and_gradients(x, y, sample_weight=w)
    assert type(value) is float
    assert isinstance(gradient, np.ndarray) and gradient.dtype == dtype and gradient.shape == (net.n_params,)
    assert value == net.loss(x, y, sample_weight=w)
    laid_out = copy.deepcopy(net)
    laid_out.weights, laid_out.biases = net.gradients(x, y, sample_weight=w)
    np.testing.assert_array_equal(gradient, laid_out.parameters)


def test_scipy_lbfgs_fits_a_net(net_class, dtype):
    """parameters and loss_and_gradients are what scipy.optimize.minimize(jac=True,
    method="L-BFGS-B") takes: a few dozen iterations on a small regression lower the
    penalized loss well below where it started, and the minimizer's final value is the
    net's loss at its final point."""
    rng = np.random.default_rng(53)
    x = rng.standard_normal((40, 3))
    y = np.sin(x @ np.array([1.0, -0.5, 0.3]))[:, np.newaxis]
    net = make_net(net_class, [3, 8, 1], seed=54, activation="tanh", loss="squared_error", l2=1e-3, dtype=dtype)
    start = net.loss(x, y)

    def objective(theta):
        net.parameters = theta
        return net.loss_and_gradients(x, y)

    result = scipy.optimize.minimize(objective, net.parameters.astype(np.float64), jac=True,
                                     method="L-BFGS-B", options=dict(maxiter=60))
    assert result.nit > 5
    net.parameters = result.x
    assert net.loss(x, y) == pytest.approx(result.fun, rel=TOL[dtype])
    assert net.loss(x, y) < 0.2 * start


# -- saving, pickling, copying -------------------------------------------------------------------

STATEFUL_OPTIMIZERS = {
    "sgd-sklearn": lambda: nnfast.SGD(0.05, momentum=0.9, nesterov=True, style="sklearn"),
    "adam-sklearn": lambda: nnfast.Adam(0.01, eps=1e-3, style="sklearn"),
    "adam-torch": lambda: nnfast.Adam(0.01, eps=1e-3),
}

COPIES = {
    "save-load": lambda net, path: nnfast.io.load(nnfast.io.save(net, path)),
    "pickle": lambda net, path: pickle.loads(pickle.dumps(net)),
    "deepcopy": lambda net, path: copy.deepcopy(net),
}


@pytest.mark.parametrize("how", COPIES.keys())
@pytest.mark.parametrize("optimizer", STATEFUL_OPTIMIZERS.keys())
def test_l2_and_style_survive_copies(tmp_path, net_class, dtype, optimizer, how):
    """A trained net with l2 and its optimizer's style, saved and loaded (format version 3),
    pickled or deep-copied: the same l2, loss and style, and training continues to the bit."""
    rng = np.random.default_rng(55)
    x, y, _ = random_weighted_data(rng, 10, [3, 4, 2], "squared_error")
    net = make_net(net_class, [3, 4, 2], x=x, seed=56, loss="squared_error", l2=0.25, dtype=dtype)
    net.fit(x, y, epochs=2, batch_size=4, seed=1, optimizer=STATEFUL_OPTIMIZERS[optimizer]())
    twin = COPIES[how](net, tmp_path / "net.npz")
    assert type(twin) is net_class and twin.l2 == 0.25 and twin.loss_name == "squared_error"
    assert twin.loss(x, y) == net.loss(x, y)
    assert type(twin.optimizer) is type(net.optimizer) and twin.optimizer.style == net.optimizer.style
    assert repr(twin.optimizer) == repr(net.optimizer)
    histories = [n.fit(x, y, epochs=2, batch_size=4, seed=2) for n in (net, twin)]
    np.testing.assert_array_equal(histories[0].loss, histories[1].loss)
    np.testing.assert_array_equal(twin.parameters, net.parameters)


def test_file_is_version_3_with_l2_and_style(tmp_path, net_class):
    """The archive itself: format_version 3, and l2 and optimizer_style entries."""
    net = net_class([2, 3, 1], loss="binary_log_loss", l2=0.125, seed=0)
    net.fit(np.zeros((4, 2)), np.ones((4, 1)), epochs=1, optimizer=nnfast.SGD(0.1, momentum=0.5, style="sklearn"))
    path = nnfast.io.save(net, tmp_path / "net.npz")
    with np.load(path, allow_pickle=False) as archive:
        assert int(archive["format_version"]) == 3 == nnfast.io.FORMAT_VERSION
        assert float(archive["l2"]) == 0.125
        assert str(archive["optimizer_style"]) == "sklearn"
        assert str(archive["loss"]) == "binary_log_loss"


# -- agreement with scikit-learn ------------------------------------------------------------------

# nnfast's name of each scikit-learn hidden activation.
SK_ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}

# id -> the estimator, nnfast's loss, the outputs and the hidden activation.
SK_CASES = {
    "squared_error-1": dict(estimator="MLPRegressor", loss="squared_error", n_out=1, activation="tanh"),
    "squared_error-3": dict(estimator="MLPRegressor", loss="squared_error", n_out=3, activation="relu"),
    "poisson": dict(estimator="MLPRegressor", loss="poisson", n_out=2, activation="tanh"),
    "binary": dict(estimator="MLPClassifier", loss="binary_log_loss", n_out=1, activation="logistic"),
    "multilabel": dict(estimator="MLPClassifier", loss="binary_log_loss", n_out=3, activation="relu"),
    "multiclass": dict(estimator="MLPClassifier", loss="cross_entropy", n_out=3, activation="identity"),
}
SK_LAYERS = [4, 5, 3]  # the hidden layers; the output layer is the case's
ALPHA = 0.3


def sklearn_problem(case, n_samples, seed):
    """Data for ``SK_CASES[case]``: ``(x, y for scikit-learn's fit, y for nnfast, sample weights)``.

    Regression targets are N(0, 1) (1-D for one output, as scikit-learn
    wants) or Poisson counts; class labels cover every class (and both values
    of every multilabel column), so that scikit-learn's output layer has
    the intended width.
    """
    spec = SK_CASES[case]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_samples, SK_LAYERS[0]))
    k = spec["n_out"]
    if spec["loss"] == "squared_error":
        y = rng.standard_normal((n_samples, k))
        y_sk = y[:, 0] if k == 1 else y
    elif spec["loss"] == "poisson":
        y = y_sk = random_targets(rng, n_samples, k, "poisson")
    elif case == "binary":
        y_sk = np.arange(n_samples) % 2
        y = y_sk[:, np.newaxis].astype(np.float64)
    elif case == "multilabel":
        y_sk = rng.integers(0, 2, (n_samples, k))
        y_sk[:2] = [[0] * k, [1] * k]
        y = y_sk.astype(np.float64)
    else:
        y_sk = y = np.arange(n_samples) % k
    return x, y_sk, y, random_weights(rng, n_samples)


def sklearn_estimator(case, x, y_sk, net, **options):
    """A scikit-learn MLP for ``case``, set up by a one-iteration fit on ``(x, y_sk)`` and
    then given ``net``'s parameters (float64 copies), ready for ``_backprop`` or a warm start."""
    from sklearn import neural_network
    from sklearn.exceptions import ConvergenceWarning

    spec = SK_CASES[case]
    estimator = getattr(neural_network, spec["estimator"])
    kwargs = dict(hidden_layer_sizes=SK_LAYERS[1:], activation=spec["activation"], alpha=ALPHA, max_iter=1,
                  solver="sgd", random_state=0)
    kwargs.update(options)
    if spec["loss"] == "poisson":
        kwargs["loss"] = "poisson"
    model = estimator(**kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # one iteration does not converge
        model.fit(x, y_sk)
    assert model.n_outputs_ == spec["n_out"] and len(model.coefs_) == len(SK_LAYERS)
    model.coefs_ = [w.astype(np.float64) for w in net.weights]
    model.intercepts_ = [b.astype(np.float64) for b in net.biases]
    return model


def sklearn_net(net_class, case, x, seed, **kwargs):
    """An nnfast net of ``case``'s architecture and loss, with ``alpha`` as l2, off the ReLU kinks on ``x``."""
    spec = SK_CASES[case]
    return make_net(net_class, SK_LAYERS + [spec["n_out"]], x=x, seed=seed, loss=spec["loss"], l2=ALPHA,
                    activation=SK_ACTIVATIONS[spec["activation"]], **kwargs)


def sklearn_backprop(model, x, y_matrix, sample_weight):
    """scikit-learn's loss and gradients (``coefs_grads + intercept_grads``) at its parameters,
    from its private ``_backprop``."""
    n_layers = model.n_layers_
    coef_grads = [np.empty_like(w) for w in model.coefs_]
    intercept_grads = [np.empty_like(b) for b in model.intercepts_]
    loss, coef_grads, intercept_grads = model._backprop(
        x, y_matrix, sample_weight, [x] + [None] * (n_layers - 1), [None] * (n_layers - 1),
        coef_grads, intercept_grads)
    return float(loss), list(coef_grads) + list(intercept_grads)


def sklearn_targets(model, case, y_sk):
    """The target matrix scikit-learn's backprop reads: its label binarization for
    classifiers, the targets as a column or matrix for regressors."""
    if SK_CASES[case]["estimator"] == "MLPClassifier":
        return model._label_binarizer.transform(y_sk).astype(np.float64)
    return np.asarray(y_sk, dtype=np.float64).reshape(len(y_sk), -1)


def nnfast_loss_from_sklearn(case, sk_loss, net, sample_weight, n_samples):
    """What nnfast's loss must be given scikit-learn's: the same, except that for several
    squared_error outputs scikit-learn averages the data term over the outputs (the
    penalty it adds is ours)."""
    k = SK_CASES[case]["n_out"]
    if SK_CASES[case]["loss"] != "squared_error" or k == 1:
        return sk_loss
    reg = penalty(net.weights, ALPHA, normalizer(sample_weight, n_samples))
    return k * (sk_loss - reg) + reg


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("case", SK_CASES.keys())
def test_loss_and_gradients_match_scikit_learns_backprop(net_class, case, weighted):
    """One forward and backward pass with alpha (and sample weights): nnfast's loss and
    gradients are scikit-learn's within 1e-12 (its squared_error for several outputs
    divided by the outputs, as documented)."""
    pytest.importorskip("sklearn")
    x, y_sk, y, w = sklearn_problem(case, 12, seed=57)
    w = w if weighted else None
    net = sklearn_net(net_class, case, x, seed=58)
    model = sklearn_estimator(case, x, y_sk, net)
    sk_loss, sk_grads = sklearn_backprop(model, x, sklearn_targets(model, case, y_sk), w)
    loss = net.loss(x, y, sample_weight=w)
    assert loss == pytest.approx(nnfast_loss_from_sklearn(case, sk_loss, net, w, 12), rel=1e-12)
    if case == "squared_error-3":  # the factor is real: the two losses differ
        assert abs(loss - sk_loss) > 1e-3 * loss
    weight_grads, bias_grads = net.gradients(x, y, sample_weight=w)
    assert rel_error(flat(weight_grads + bias_grads), flat(sk_grads)) <= 1e-12
    # The prediction scikit-learn serves is our output through its output activation.
    served = model.predict_proba(x) if case in ("binary", "multiclass", "multilabel") else model.predict(x)
    if case == "binary":
        np.testing.assert_allclose(served[:, 1], net.predict_proba(x)[:, 0], rtol=1e-12)
    elif case == "multiclass" or case == "multilabel":
        np.testing.assert_allclose(served, net.predict_proba(x), rtol=1e-12)
    elif case == "poisson":
        np.testing.assert_allclose(served, np.exp(net.predict(x)), rtol=1e-12)
    else:
        np.testing.assert_allclose(served.reshape(12, -1), net.predict(x), rtol=1e-12)


# id -> (scikit-learn optimizer factory of (params, lr), nnfast optimizer factory of lr).
SK_OPTIMIZERS = {
    "sgd-momentum": (lambda params, lr: _sk_optimizers().SGDOptimizer(params, lr, "constant", 0.9, False, 0.5),
                     lambda lr: nnfast.SGD(lr, momentum=0.9, style="sklearn")),
    "sgd-nesterov": (lambda params, lr: _sk_optimizers().SGDOptimizer(params, lr, "constant", 0.9, True, 0.5),
                     lambda lr: nnfast.SGD(lr, momentum=0.9, nesterov=True, style="sklearn")),
    "adam": (lambda params, lr: _sk_optimizers().AdamOptimizer(params, lr, 0.9, 0.999, 1e-8),
             lambda lr: nnfast.Adam(lr, betas=(0.9, 0.999), eps=1e-8, style="sklearn")),
}


def _sk_optimizers():
    from sklearn.neural_network import _stochastic_optimizers

    return _stochastic_optimizers


def set_sklearn_lr(optimizer, lr):
    """Change a scikit-learn optimizer's rate for its next update (Adam recomputes its
    step size from learning_rate_init at every update; SGD reads learning_rate)."""
    if hasattr(optimizer, "beta_1"):
        optimizer.learning_rate_init = lr
    else:
        optimizer.learning_rate = lr


@pytest.mark.parametrize("optimizer", SK_OPTIMIZERS.keys())
@pytest.mark.parametrize("case", ["squared_error-1", "poisson", "multilabel", "multiclass"])
def test_two_updates_match_scikit_learns_optimizers(net_class, case, optimizer):
    """Two full-batch steps with alpha and weights, the learning rate changed between them:
    scikit-learn's _backprop and SGDOptimizer/AdamOptimizer against nnfast's fit with the
    sklearn style (lr reassigned between two fits): losses and updates within 1e-12."""
    pytest.importorskip("sklearn")
    x, y_sk, y, w = sklearn_problem(case, 12, seed=59)
    net = sklearn_net(net_class, case, x, seed=60)
    model = sklearn_estimator(case, x, y_sk, net)
    y_matrix = sklearn_targets(model, case, y_sk)
    make_sk, make_nnfast = SK_OPTIMIZERS[optimizer]
    learning_rates = (0.05, 0.02) if optimizer.startswith("sgd") else (0.01, 0.004)
    params = model.coefs_ + model.intercepts_  # the very arrays: update_params changes them in place
    sk_optimizer = make_sk(params, learning_rates[0])
    sk_losses = []
    for lr in learning_rates:
        set_sklearn_lr(sk_optimizer, lr)
        loss, grads = sklearn_backprop(model, x, y_matrix, w)
        sk_losses.append(loss)
        sk_optimizer.update_params(params, grads)
    start = flat(net.weights + net.biases)
    ours = make_nnfast(learning_rates[0])
    losses = list(net.fit(x, y, epochs=1, optimizer=ours, sample_weight=w).loss)
    ours.lr = learning_rates[1]
    losses += list(net.fit(x, y, epochs=1, sample_weight=w).loss)
    np.testing.assert_allclose(losses, sk_losses, rtol=1e-12)
    update = flat(net.weights + net.biases) - start
    expected = flat(model.coefs_ + model.intercepts_) - start
    assert rel_error(update, expected) <= 1e-12


# id -> (case, the solver's options, nnfast's optimizer factory).
SK_FITS = {
    "regressor-sgd-nesterov": ("squared_error-1", dict(solver="sgd", learning_rate_init=0.05, momentum=0.9,
                                                       nesterovs_momentum=True),
                               lambda: nnfast.SGD(0.05, momentum=0.9, nesterov=True, style="sklearn")),
    "poisson-adam": ("poisson", dict(solver="adam", learning_rate_init=0.01),
                     lambda: nnfast.Adam(0.01, style="sklearn")),
    "multiclass-adam": ("multiclass", dict(solver="adam", learning_rate_init=0.01, beta_1=0.8, epsilon=1e-6),
                        lambda: nnfast.Adam(0.01, betas=(0.8, 0.999), eps=1e-6, style="sklearn")),
    "multilabel-sgd": ("multilabel", dict(solver="sgd", learning_rate_init=0.1, momentum=0.5,
                                          nesterovs_momentum=False),
                       lambda: nnfast.SGD(0.1, momentum=0.5, style="sklearn")),
    "binary-sgd": ("binary", dict(solver="sgd", learning_rate_init=0.1, momentum=0.0),
                   lambda: nnfast.SGD(0.1, style="sklearn")),
}


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("fit", SK_FITS.keys())
def test_fit_matches_scikit_learns_fit(net_class, fit, weighted):
    """scikit-learn's own fit, warm-started from nnfast's parameters: 3 epochs of shuffled,
    uneven mini-batches (5 + 5 + 3) with alpha. Its shuffles are replayed through
    order= (scikit-learn reshuffles its previous order each epoch with a RandomState of
    random_state); its loss curve and final parameters are nnfast's within 1e-12."""
    pytest.importorskip("sklearn")
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.utils import shuffle

    case, solver, make_optimizer = SK_FITS[fit]
    x, y_sk, y, w = sklearn_problem(case, 13, seed=61)
    w = w if weighted else None
    net = sklearn_net(net_class, case, x, seed=62)
    model = sklearn_estimator(case, x, y_sk, net, warm_start=True, batch_size=5, shuffle=True,
                              tol=0.0, n_iter_no_change=100, **solver)
    model.set_params(max_iter=3, random_state=63)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x, y_sk, sample_weight=w)
    sk_curve = model.loss_curve_[-3:]
    random_state, order = np.random.RandomState(63), np.arange(13)
    optimizer, curve = make_optimizer(), []
    for _ in range(3):
        order = shuffle(order, random_state=random_state)
        history = net.fit(x, y, epochs=1, batch_size=5, order=order, optimizer=optimizer, sample_weight=w)
        curve.extend(history.epoch_loss)
    np.testing.assert_allclose(curve, sk_curve, rtol=1e-12)
    assert rel_error(flat(net.weights + net.biases), flat(model.coefs_ + model.intercepts_)) <= 1e-12
    assert optimizer.step_count == 9


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("net_class", NET_CLASSES, ids=NET_IDS)
def test_epoch_penalty_is_the_penalty_part_of_epoch_loss(net_class, dtype):
    """History.epoch_penalty: the batches' penalties averaged as epoch_loss averages the
    losses, so that epoch_loss - epoch_penalty is the data part; zeros without l2."""
    rng = np.random.default_rng(70)
    layers = [4, 6, 2]
    x, y, w = random_weighted_data(rng, 10, layers, "squared_error")
    net = net_class(layers, loss="squared_error", l2=0.7, dtype=dtype, seed=71)
    start = [np.asarray(v, dtype=np.float64) for v in net.weights]
    history = net.fit(x, y, epochs=3, lr=1e-3, batch_size=10, sample_weight=w)
    # One full batch per epoch: epoch 0's penalty is that of the initial weights.
    expected = penalty(start, 0.7, normalizer(w, 10))
    np.testing.assert_allclose(history.epoch_penalty[0], expected, rtol=TOL[np.dtype(dtype)])
    assert np.all(history.epoch_penalty > 0) and np.all(history.epoch_penalty < history.epoch_loss)
    other = net_class(layers, loss="squared_error", l2=0.7, dtype=dtype, seed=71)
    batched = other.fit(x, y, epochs=2, lr=1e-3, batch_size=3, order=np.arange(10)[::-1])
    reference = nnfast.reference.Net(layers, loss="squared_error", l2=0.7, dtype=dtype, seed=71)
    expected = reference.fit(x, y, epochs=2, lr=1e-3, batch_size=3, order=np.arange(10)[::-1])
    np.testing.assert_allclose(batched.epoch_penalty, expected.epoch_penalty, rtol=TOL[np.dtype(dtype)])
    plain = net_class(layers, loss="squared_error", dtype=dtype, seed=71).fit(x, y, epochs=2, lr=1e-3)
    assert np.all(plain.epoch_penalty == 0)
