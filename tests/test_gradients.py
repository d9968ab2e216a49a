"""Gradients: central differences on the reference, the compiled net against them, one net by hand."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nnfast.reference
from tests.conftest import (
    central_differences,
    ACTIVATIONS,
    LOSSES,
    NET_CLASSES,
    NET_IDS,
    activation_options,
    flat,
    make_net,
    params_of,
    random_data,
    rel_error,
)


def assert_gradients_match_central_differences(net, x, y):
    """The net's float64 gradient equals the central-difference gradient of its loss.

    Pre-activations must be away from the (leaky) ReLU kink, where the loss
    is not differentiable (``make_net`` with ``x`` sees to it). Within one
    linear region the loss is quadratic in each single weight for sse/mse,
    so central differences are exact up to rounding (~1e-16 * loss / eps);
    for the smooth activations and the cross-entropy losses the truncation
    error is ~eps**2 times a third derivative, far below 1e-6 as well.
    """
    numeric = central_differences(net, x, y)
    assert np.abs(numeric).max() > 0  # a zero gradient would make the check vacuous
    analytic = flat(net.gradients(x, y))
    assert rel_error(analytic, numeric) < 1e-6, rel_error(analytic, numeric)


@pytest.mark.parametrize("net_class", NET_CLASSES, ids=NET_IDS)
@given(layers=st.lists(st.integers(1, 6), min_size=2, max_size=4), n_samples=st.integers(1, 6),
       bias=st.booleans(), loss=st.sampled_from(LOSSES), soft=st.booleans(), seed=st.integers(0, 2**32 - 1),
       data=st.data())
def test_gradients_match_central_differences(net_class, layers, n_samples, bias, loss, soft, seed, data):
    """float64 gradients equal the central-difference gradient of the loss, for random
    architectures, activations (one or per layer), slopes, losses and targets.

    Inputs are random and pre-activations are kept away from the ReLU kink.
    """
    if loss == "cross_entropy":
        layers = layers[:-1] + [max(layers[-1], 2)]
    options = data.draw(activation_options(len(layers) - 2))
    rng = np.random.default_rng(seed)
    x, y = random_data(rng, n_samples, layers, loss, soft)
    net = make_net(net_class, layers, x=x, seed=seed, bias=bias, loss=loss, **options)
    before = params_of(net)
    numeric = central_differences(net, x, y)
    assert rel_error(flat(net.gradients(x, y)), numeric) < 1e-6
    # The perturbations went through the setters and were undone exactly.
    np.testing.assert_array_equal(params_of(net), before)


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_every_activation_and_loss_matches_central_differences(net_class, activation, loss):
    """Each activation x loss: the gradient is the central-difference gradient, on a two-hidden-layer net."""
    layers = [3, 5, 4, 3]
    x, y = random_data(np.random.default_rng(1), 6, layers, loss)
    net = make_net(net_class, layers, x=x, seed=4, activation=activation, loss=loss, negative_slope=0.1)
    assert_gradients_match_central_differences(net, x, y)


@pytest.mark.parametrize("options", [
    dict(activation=["tanh", "leaky_relu", "sigmoid"], negative_slope=0.3, bias=[True, False, True, False]),
    dict(activation=["identity", "relu", "tanh"], bias=[False, False, True, True], loss="cross_entropy"),
    dict(activation=["sigmoid", "sigmoid", "leaky_relu"], negative_slope=0.0, bias=[False, True, False, True],
         loss="binary_cross_entropy"),
    dict(activation="leaky_relu", negative_slope=2.0, loss="mse"),
], ids=["mixed-sse", "mixed-cross-entropy", "mixed-binary-cross-entropy", "steep-leaky-mse"])
def test_per_layer_options_match_central_differences(net_class, options):
    """Per-hidden-layer activations and per-layer biases: the gradient of every parameter that exists."""
    layers = [4, 5, 3, 4, 2]
    x, y = random_data(np.random.default_rng(2), 7, layers, options.get("loss", "sse"))
    net = make_net(net_class, layers, x=x, seed=6, **options)
    assert len(net.biases) == sum(net.bias)
    assert_gradients_match_central_differences(net, x, y)


@pytest.mark.parametrize("loss, soft", [("cross_entropy", True), ("binary_cross_entropy", True)],
                         ids=["cross-entropy-probabilities", "binary-cross-entropy-soft"])
def test_soft_targets_match_central_differences(net_class, loss, soft):
    """Class probabilities (cross_entropy) and soft targets in (0, 1) (binary_cross_entropy)."""
    layers = [3, 6, 4]
    x, y = random_data(np.random.default_rng(3), 5, layers, loss, soft)
    assert_gradients_match_central_differences(make_net(net_class, layers, x=x, seed=7, loss=loss), x, y)


def test_cross_entropy_with_unnormalized_probabilities_matches_central_differences(net_class):
    """Rows of target probabilities that do not sum to 1 are still differentiated right
    (the loss is linear in the targets: sum_k y_k * (logsumexp - z_k))."""
    layers = [3, 4, 3]
    rng = np.random.default_rng(4)
    x = rng.standard_normal((5, 3))
    y = rng.uniform(0, 1, (5, 3))  # rows sum to anything in (0, 3)
    net = make_net(net_class, layers, x=x, seed=8, loss="cross_entropy", activation="tanh")
    assert_gradients_match_central_differences(net, x, y)


def test_central_differences_detect_a_wrong_gradient():
    """The check above is sensitive: scaling one gradient entry by 1.01 is caught."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((4, 3)), rng.standard_normal((4, 2))
    ref = make_net(nnfast.reference.Net, [3, 4, 2], x=x, seed=1)
    numeric = central_differences(ref, x, y)
    analytic = flat(ref.gradients(x, y))
    assert rel_error(analytic, numeric) < 1e-6
    analytic[np.argmax(np.abs(analytic))] *= 1.01
    assert rel_error(analytic, numeric) > 1e-3


# A [2, 2, 1] net worked out by hand. Weights are (fan_in, fan_out), a layer is x @ W + b.
HAND_W1 = np.array([[1.0, -1.0], [2.0, 1.0]])
HAND_B1 = np.array([0.0, 1.0])
HAND_W2 = np.array([[1.0], [-2.0]])
HAND_B2 = np.array([1.0])
HAND_X = np.array([[1.0, 2.0], [-2.0, 0.0], [2.0, -1.0]])
HAND_Y = np.array([[3.0], [-3.0], [0.0]])
# Forward, sample by sample:
#   z1 = x @ W1 + b1:    s1: (1+4+0, -1+2+1) = (5, 2)
#                        s2: (-2+0+0, 2+0+1) = (-2, 3)
#                        s3: (2-2+0, -2-1+1) = (0, -2)
#   h = relu(z1):        (5, 2), (0, 3), (0, 0)
#   out = h @ W2 + b2:   5-4+1 = 2,   0-6+1 = -5,   0-0+1 = 1
#   out - y:             2-3 = -1,  -5+3 = -2,    1-0 = 1
#   sse = 1 + 4 + 1 = 6;  mse = 6 / 3 = 2
HAND_HIDDEN = np.array([[5.0, 2.0], [0.0, 3.0], [0.0, 0.0]])
HAND_OUT = np.array([[2.0], [-5.0], [1.0]])
HAND_SSE = 6.0
# Backward (sse), g = 2 (out - y) = (-2, -4, 2):
#   dW2 = h.T @ g = (5*-2 + 0*-4 + 0*2, 2*-2 + 3*-4 + 0*2) = (-10, -16)
#   db2 = -2 - 4 + 2 = -4
#   g @ W2.T = g * (1, -2):  s1 (-2, 4), s2 (-4, 8), s3 (2, -4)
#   ReLU mask, blocked where z1 < 0 (passes at z1 == 0, s3's first unit):
#                            s1 (-2, 4), s2 (0, 8),  s3 (2, 0)
#   dW1 = x.T @ delta: row 0: 1*(-2, 4) - 2*(0, 8) + 2*(2, 0) = (2, -12)
#                      row 1: 2*(-2, 4) + 0*(0, 8) - 1*(2, 0) = (-6, 8)
#   db1 = (-2 + 0 + 2, 4 + 8 + 0) = (0, 12)
HAND_GRAD_W = [np.array([[2.0, -12.0], [-6.0, 8.0]]), np.array([[-10.0], [-16.0]])]
HAND_GRAD_B = [np.array([0.0, 12.0]), np.array([-4.0])]


def hand_net(net_class, loss):
    net = net_class([2, 2, 1], loss=loss)
    net.weights = [HAND_W1, HAND_W2]
    net.biases = [HAND_B1, HAND_B2]
    return net


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_hand_worked_net_forward_and_loss(net_class, dtype):
    """Forward pass and both losses of the hand-worked net (exact: small integers)."""
    for loss, expected in [("sse", HAND_SSE), ("mse", HAND_SSE / 3)]:
        net = net_class([2, 2, 1], loss=loss, dtype=dtype)
        net.weights, net.biases = [HAND_W1, HAND_W2], [HAND_B1, HAND_B2]
        output, hidden = net.forward(HAND_X)
        np.testing.assert_array_equal(output, HAND_OUT)
        assert len(hidden) == 1
        np.testing.assert_array_equal(hidden[0], HAND_HIDDEN)
        np.testing.assert_array_equal(net.predict(HAND_X), HAND_OUT)
        assert net.loss(HAND_X, HAND_Y) == expected


@pytest.mark.parametrize("loss, scale", [("sse", 1.0), ("mse", 1 / 3)])
def test_hand_worked_net_gradients(net_class, loss, scale):
    """Gradients of the hand-worked net, including the pass-through at a zero pre-activation."""
    net = hand_net(net_class, loss)
    weight_grads, bias_grads = net.gradients(HAND_X, HAND_Y)
    for got, expected in zip(weight_grads + bias_grads, HAND_GRAD_W + HAND_GRAD_B):
        np.testing.assert_allclose(got, scale * expected, rtol=1e-15, atol=0)


def test_hand_worked_net_train_step(net_class):
    """train_step returns the loss before the step and applies params -= lr * gradient."""
    net = hand_net(net_class, "sse")
    assert net.train_step(HAND_X, HAND_Y, 0.125) == HAND_SSE
    # lr = 1/8 keeps every update exact in binary.
    np.testing.assert_array_equal(net.weights[0], HAND_W1 - 0.125 * HAND_GRAD_W[0])
    np.testing.assert_array_equal(net.weights[1], HAND_W2 - 0.125 * HAND_GRAD_W[1])
    np.testing.assert_array_equal(net.biases[0], HAND_B1 - 0.125 * HAND_GRAD_B[0])
    np.testing.assert_array_equal(net.biases[1], HAND_B2 - 0.125 * HAND_GRAD_B[1])


def test_gradients_of_a_net_without_hidden_layer(net_class):
    """[2, 1] linear net: dW = x.T @ 2(xW + b - y), db = sum 2(xW + b - y)."""
    net = net_class([2, 1])
    net.weights, net.biases = [np.array([[1.0], [-1.0]])], [np.array([0.5])]
    x, y = np.array([[1.0, 2.0], [3.0, 0.0]]), np.array([1.0, 1.0])
    # out = (1 - 2 + 0.5, 3 + 0.5) = (-0.5, 3.5); 2 (out - y) = (-3, 5)
    weight_grads, bias_grads = net.gradients(x, y)
    np.testing.assert_array_equal(weight_grads[0], [[1 * -3 + 3 * 5], [2 * -3 + 0 * 5]])
    np.testing.assert_array_equal(bias_grads[0], [2.0])
    assert net.forward(x)[1] == []


def test_gradients_without_bias_are_weights_only(net_class):
    """With bias=False, gradients returns an empty bias list and weight-shaped arrays."""
    net = net_class([3, 4, 2], bias=False, seed=0)
    weight_grads, bias_grads = net.gradients(np.ones((5, 3)), np.zeros((5, 2)))
    assert bias_grads == []
    assert [g.shape for g in weight_grads] == [(3, 4), (4, 2)]
    assert net.biases == []
