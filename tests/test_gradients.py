"""Gradients: central differences on the reference, the compiled net against them, one net by hand."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import flat, make_pair, params_of, rel_error


def set_flat_params(net, vector):
    """Assign a flat (weights, then biases) vector through the public setters."""
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


def central_differences(net, x, y, eps=1e-6):
    """d loss / d parameter by central differences over the flat parameter vector."""
    base = params_of(net)
    grad = np.empty_like(base)
    for i in range(len(base)):
        shifted = base.copy()
        shifted[i] += eps
        set_flat_params(net, shifted)
        plus = net.loss(x, y)
        shifted[i] -= 2 * eps
        set_flat_params(net, shifted)
        minus = net.loss(x, y)
        grad[i] = (plus - minus) / (2 * eps)
    set_flat_params(net, base)
    return grad


@given(layers=st.lists(st.integers(1, 6), min_size=2, max_size=4), n_samples=st.integers(1, 6),
       bias=st.booleans(), loss=st.sampled_from(["sse", "mse"]), seed=st.integers(0, 2**32 - 1))
def test_gradients_match_central_differences(layers, n_samples, bias, loss, seed):
    """Both nets' float64 gradients equal the central-difference gradient of their loss.

    Inputs are random and pre-activations are kept away from the ReLU kink,
    where the loss is not differentiable. Within one linear region the loss
    is quadratic in each single parameter, so central differences are exact
    up to rounding (~1e-16 * loss / eps).
    """
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((n_samples, layers[0])), rng.standard_normal((n_samples, layers[-1]))
    fast, ref = make_pair(layers, x=x, seed=seed, bias=bias, loss=loss)
    numeric = central_differences(ref, x, y)
    assert rel_error(flat(ref.gradients(x, y)), numeric) < 1e-6
    assert rel_error(flat(fast.gradients(x, y)), numeric) < 1e-6
    # The perturbations went through the setters and were undone exactly.
    np.testing.assert_array_equal(params_of(ref), params_of(fast))


def test_central_differences_detect_a_wrong_gradient():
    """The check above is sensitive: scaling one gradient entry by 1.01 is caught."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((4, 3)), rng.standard_normal((4, 2))
    _, ref = make_pair([3, 4, 2], x=x, seed=1)
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
