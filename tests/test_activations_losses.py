"""Activations and losses against their closed forms: values, reductions, labels and stability.

The gradients of every activation x loss are checked against central
differences in test_gradients.py, and the compiled net against the
reference in test_equivalence.py; here each formula of the docstrings is
checked on inputs chosen so that the expected value is known in closed form.
"""
import copy

import numpy as np
import pytest
from scipy.special import expit, log_softmax, logsumexp, softmax

from tests.conftest import ACTIVATIONS, TOL, activate, params_of

# Pre-activations from far negative to far positive, zero included.
Z = np.array([[-800.0, -30.0, -2.5, -1.0, -1e-3, 0.0, 1e-3, 0.5, 1.0, 3.0, 30.0, 800.0]])


def pass_through_net(net_class, activation, dtype=np.float64, negative_slope=0.01, n=Z.shape[1]):
    """A [n, n, 1] net whose hidden pre-activations are its inputs (W1 = I, no biases)."""
    net = net_class([n, n, 1], activation=activation, negative_slope=negative_slope, bias=False, dtype=dtype)
    net.weights = [np.eye(n), np.ones((n, 1))]
    return net


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_activation_values(net_class, activation, dtype):
    """forward's hidden layer is the activation of the pre-activations, without overflow at +-800."""
    slope = 0.2
    net = pass_through_net(net_class, activation, dtype, slope)
    output, (hidden,) = net.forward(Z)
    expected = activate(activation, Z, slope)
    assert hidden.dtype == dtype and np.all(np.isfinite(hidden))
    # float32: the inputs are rounded to float32 first, then the activation.
    np.testing.assert_allclose(hidden, expected, rtol=4 * np.finfo(dtype).eps, atol=0)
    total = hidden.astype(np.float64).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(output, total, rtol=0, atol=16 * np.finfo(dtype).eps * np.abs(hidden).sum())


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_activation_derivatives(net_class, activation):
    """The gradient w.r.t. W2 is the activation; w.r.t. W1, the inputs times its derivative.

    With W1 = I and W2 = 1, one sample and sse against 0, d loss / d out =
    2 out and d loss / d W1[j, i] = 2 out * x_j * act'(x_i). ReLU passes the
    gradient at exactly 0 (the seed's grad_h[h < 0] = 0); so does leaky ReLU.
    """
    slope = 0.2
    z = Z[:, 2:-2]  # |z| <= 3: away from saturation, where formulas for the derivative may round differently
    assert 0.0 in z
    n = z.shape[1]
    net = pass_through_net(net_class, activation, negative_slope=slope, n=n)
    net_out = net.predict(z)[0, 0]
    (grad_w1, grad_w2), _ = net.gradients(z, np.zeros(1))
    a = activate(activation, z[0], slope)
    derivative = {
        "relu": np.where(z[0] >= 0, 1.0, 0.0),
        "leaky_relu": np.where(z[0] >= 0, 1.0, slope),
        "tanh": 1 - np.tanh(z[0]) ** 2,
        "sigmoid": expit(z[0]) * (1 - expit(z[0])),
        "identity": np.ones(n),
    }[activation]
    expected_w1 = 2 * net_out * np.outer(z[0], derivative)
    np.testing.assert_allclose(grad_w2[:, 0], 2 * net_out * a, rtol=1e-12, atol=1e-15 * abs(net_out))
    np.testing.assert_allclose(grad_w1, expected_w1, rtol=1e-12, atol=1e-15 * np.abs(expected_w1).max())


def test_leaky_relu_with_slope_zero_is_relu(net_class, dtype):
    """negative_slope=0 gives exactly a ReLU net: forward, gradients and training."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((9, 3)), rng.standard_normal((9, 2))
    relu = net_class([3, 6, 5, 2], activation="relu", dtype=dtype, seed=1)
    leaky = net_class([3, 6, 5, 2], activation="leaky_relu", negative_slope=0.0, dtype=dtype, seed=1)
    np.testing.assert_array_equal(leaky.forward(x)[1][0], relu.forward(x)[1][0])
    np.testing.assert_array_equal(leaky.predict(x), relu.predict(x))
    for got, expected in zip(leaky.gradients(x, y)[0] + leaky.gradients(x, y)[1],
                             relu.gradients(x, y)[0] + relu.gradients(x, y)[1]):
        np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(leaky.fit(x, y, epochs=3, lr=0.01).loss, relu.fit(x, y, epochs=3, lr=0.01).loss)
    np.testing.assert_array_equal(params_of(leaky), params_of(relu))
    # ...and a non-zero slope does change things (the slope is used).
    other = net_class([3, 6, 5, 2], activation="leaky_relu", negative_slope=0.1, dtype=dtype, seed=1)
    assert not np.array_equal(other.predict(x), relu.predict(x))


def test_leaky_relu_with_slope_one_is_identity(net_class):
    """negative_slope=1 gives exactly the identity."""
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((7, 3)), rng.standard_normal((7, 2))
    leaky = net_class([3, 5, 2], activation="leaky_relu", negative_slope=1.0, init="he_normal", seed=2)
    identity = net_class([3, 5, 2], activation="identity", init="he_normal", seed=2)
    np.testing.assert_array_equal(params_of(leaky), params_of(identity))
    np.testing.assert_array_equal(leaky.predict(x), identity.predict(x))
    for got, expected in zip(leaky.gradients(x, y)[0], identity.gradients(x, y)[0]):
        np.testing.assert_array_equal(got, expected)


def test_per_layer_activations_apply_in_order(net_class):
    """activation=[a, b, c]: hidden layer i uses the i-th name."""
    names = ["leaky_relu", "tanh", "sigmoid"]  # each one tells itself apart on these inputs
    n = 4
    net = net_class([n, n, n, n, 1], activation=names, negative_slope=0.5, bias=False)
    net.weights = [np.eye(n), np.eye(n), np.eye(n), np.ones((n, 1))]
    x = np.array([[-2.0, -0.5, 0.5, 2.0]])
    _, hidden = net.forward(x)
    a = x
    for name, h in zip(names, hidden):
        a = activate(name, a, 0.5)
        np.testing.assert_allclose(h, a, rtol=1e-15, atol=0)


# -- losses --------------------------------------------------------------------


def logits_net(net_class, logits, dtype=np.float64, loss="cross_entropy"):
    """A bias-free [n, k] net whose outputs on ``np.eye(n)`` are ``logits`` (W = logits).

    Its weight gradient on ``x = np.eye(n)`` is the gradient w.r.t. the outputs.
    """
    logits = np.asarray(logits, dtype=np.float64)
    net = net_class(list(logits.shape), loss=loss, bias=False, dtype=dtype)
    net.weights = [logits]
    return net, np.eye(logits.shape[0])


LOGITS = np.array([[2.0, -1.0, 0.5], [0.0, 0.0, 0.0], [-3.0, 4.0, 1.0], [1.0, 1.0, -2.0]])


def test_sse_and_mse_reductions(net_class):
    """sse sums the squared errors over all outputs and samples; mse divides by the number of elements."""
    y = np.array([[1.0, 0.0, -1.0], [2.0, 0.5, 0.0], [0.0, 0.0, 0.0], [1.0, -1.0, 3.0]])
    squares = np.square(LOGITS - y)
    for loss, expected, grad in [("sse", squares.sum(), 2 * (LOGITS - y)),
                                 ("mse", squares.sum() / 12, 2 * (LOGITS - y) / 12)]:
        net, x = logits_net(net_class, LOGITS, loss=loss)
        assert net.loss(x, y) == pytest.approx(expected, rel=1e-13)
        np.testing.assert_allclose(net.gradients(x, y)[0][0], grad, rtol=1e-14)


def test_cross_entropy_is_the_mean_over_samples_of_the_negative_log_softmax(net_class):
    """CrossEntropyLoss: mean over samples (not over elements) of -log softmax(z)[label]."""
    labels = np.array([0, 2, 1, 1])
    net, x = logits_net(net_class, LOGITS)
    per_sample = -log_softmax(LOGITS, axis=1)[np.arange(4), labels]
    assert net.loss(x, labels) == pytest.approx(per_sample.mean(), rel=1e-14)
    one_hot = np.eye(3)[labels]
    np.testing.assert_allclose(net.gradients(x, labels)[0][0], (softmax(LOGITS, axis=1) - one_hot) / 4, rtol=1e-13)
    # The mean over samples: each sample's loss on its own averages to the total.
    singles = [net.loss(x[i : i + 1], labels[i : i + 1]) for i in range(4)]
    np.testing.assert_allclose(singles, per_sample, rtol=1e-14)


def test_cross_entropy_with_class_probabilities(net_class):
    """Soft labels: the mean over samples of -sum_k p_k log softmax(z)_k, gradient (softmax - p) / n."""
    p = np.array([[0.7, 0.2, 0.1], [1 / 3, 1 / 3, 1 / 3], [0.0, 0.5, 0.5], [0.0, 0.0, 1.0]])
    net, x = logits_net(net_class, LOGITS)
    expected = -(p * log_softmax(LOGITS, axis=1)).sum(axis=1).mean()
    assert net.loss(x, p) == pytest.approx(expected, rel=1e-14)
    np.testing.assert_allclose(net.gradients(x, p)[0][0], (softmax(LOGITS, axis=1) - p) / 4, rtol=1e-13, atol=1e-16)


def test_binary_cross_entropy_is_the_mean_over_elements(net_class):
    """BCEWithLogitsLoss: mean over all n * k elements of -[t log s(z) + (1 - t) log(1 - s(z))]."""
    t = np.array([[1.0, 0.0, 0.3], [0.5, 1.0, 0.0], [0.0, 1.0, 1.0], [0.9, 0.1, 0.0]])
    net, x = logits_net(net_class, LOGITS, loss="binary_cross_entropy")
    s = expit(LOGITS)
    expected = -(t * np.log(s) + (1 - t) * np.log(1 - s)).mean()
    assert net.loss(x, t) == pytest.approx(expected, rel=1e-14)
    np.testing.assert_allclose(net.gradients(x, t)[0][0], (s - t) / 12, rtol=1e-13, atol=1e-17)
    # One output and a 1-D target: the mean over samples.
    net1, x1 = logits_net(net_class, LOGITS[:, :1], loss="binary_cross_entropy")
    assert net1.loss(x1, t[:, 0]) == pytest.approx(-(t[:, 0] * np.log(s[:, 0])
                                                    + (1 - t[:, 0]) * np.log(1 - s[:, 0])).mean(), rel=1e-14)


EXTREME = np.array([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 1000.0], [0.0, 0.0, -1000.0]])


def test_cross_entropy_is_stable_at_extreme_logits(net_class, dtype):
    """Logits of +-1000: finite losses and gradients, equal to the log-sum-exp closed form."""
    labels = np.array([1, 0, 2])
    net, x = logits_net(net_class, EXTREME, dtype)
    # Per sample: logsumexp(z) - z[label] = 2000, 2000 + log 2, 1000 + log 2.
    expected = np.mean([2000.0, 2000.0 + np.log(2), 1000.0 + np.log(2)])
    np.testing.assert_allclose((logsumexp(EXTREME, axis=1) - EXTREME[np.arange(3), labels]).mean(), expected)
    loss = net.loss(x, labels)
    assert np.isfinite(loss) and loss == pytest.approx(expected, rel=TOL[dtype])
    grad = net.gradients(x, labels)[0][0]
    expected_grad = (softmax(EXTREME, axis=1) - np.eye(3)[labels]) / 3
    assert np.all(np.isfinite(grad))
    np.testing.assert_allclose(grad, expected_grad, rtol=TOL[dtype], atol=np.finfo(dtype).eps)
    # Confidently right: a loss of exp(-2000) ~ 0, not a NaN from inf - inf.
    assert net.loss(x[:1], [0]) == pytest.approx(0.0, abs=1e-300)
    assert net.train_step(x, labels, 1e-3) == pytest.approx(expected, rel=TOL[dtype])
    assert np.all(np.isfinite(params_of(net)))


def test_binary_cross_entropy_is_stable_at_extreme_logits(net_class, dtype):
    """Logits of +-1000: BCEWithLogits' max(z, 0) - z t + log(1 + exp(-|z|)), finite, no log(0)."""
    t = np.array([[0.0, 1.0, 0.5], [0.0, 1.0, 0.25], [0.0, 0.0, 0.0]])
    net, x = logits_net(net_class, EXTREME, dtype, loss="binary_cross_entropy")
    elementwise = np.maximum(EXTREME, 0) - EXTREME * t + np.log1p(np.exp(-np.abs(EXTREME)))
    # Spelled out (exp(-1000) terms are 0):
    log2 = np.log(2)
    np.testing.assert_allclose(elementwise, [[1000, 1000, log2], [0, 0, 750], [log2, log2, 0]], atol=1e-12)
    loss = net.loss(x, t)
    assert np.isfinite(loss) and loss == pytest.approx(elementwise.mean(), rel=TOL[dtype])
    grad = net.gradients(x, t)[0][0]
    assert np.all(np.isfinite(grad))
    np.testing.assert_allclose(grad, (expit(EXTREME) - t) / 9, rtol=TOL[dtype], atol=np.finfo(dtype).eps)
    # Confidently right: exactly 0 where the logit is -1000 and the target 0, not a log(0).
    assert net.loss(x[1:2], [[0.0, 1.0, 1.0]]) == pytest.approx(0.0, abs=1e-300)


def test_cross_entropy_labels_equal_one_hot_targets(net_class, dtype):
    """Integer labels (any integer dtype, or integral floats) mean exactly their one-hot matrix."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((10, 3))
    labels = rng.integers(0, 4, 10)
    one_hot = np.eye(4)[labels]
    net = net_class([3, 5, 4], loss="cross_entropy", dtype=dtype, seed=3)
    forms = [labels, labels.astype(np.int32), labels.astype(np.uint8), labels.astype(np.float64), labels.tolist()]
    for form in forms:
        assert net.loss(x, form) == net.loss(x, one_hot)
        for got, expected in zip(net.gradients(x, form)[0], net.gradients(x, one_hot)[0]):
            np.testing.assert_array_equal(got, expected)
    a, b = copy.deepcopy(net), copy.deepcopy(net)
    assert a.train_step(x, labels, 0.1) == b.train_step(x, one_hot, 0.1)
    np.testing.assert_array_equal(params_of(a), params_of(b))
    np.testing.assert_array_equal(a.fit(x, labels, epochs=3, lr=0.1, batch_size=4, seed=1).loss,
                                  b.fit(x, one_hot, epochs=3, lr=0.1, batch_size=4, seed=1).loss)
    np.testing.assert_array_equal(params_of(a), params_of(b))


def test_classification_losses_of_zero_logits(net_class):
    """Zero outputs: cross_entropy is log(k) per sample, binary_cross_entropy log(2) per element."""
    x = np.zeros((5, 3))
    ce = net_class([3, 4], loss="cross_entropy", bias=False)
    assert ce.loss(x, [0, 1, 2, 3, 0]) == pytest.approx(np.log(4), rel=1e-15)
    bce = net_class([3, 2], loss="binary_cross_entropy", bias=False)
    assert bce.loss(x, np.ones((5, 2))) == pytest.approx(np.log(2), rel=1e-15)
