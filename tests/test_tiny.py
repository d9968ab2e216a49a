"""Tiny nets (every layer at most 4 wide, at most 16 rows) take their own products
(src/nnfast/_tiny.pxd): they must give the bits of the sums taken in order."""
import numpy as np
import pytest

import nnfast
from tests.conftest import DTYPES

# Nets up to the tiny width, and one wider (the general kernels) to check the check.
LAYERS = [(1, 1), (3, 3, 1), (2, 4, 3), (4, 1, 4, 2), (4, 4, 4, 4), (5, 3, 2)]
# Up to the tiny rows, and past them (the blocked kernels: the same sums).
ROWS = [1, 3, 4, 7, 16, 17]


def in_order(a, b, start):
    """start + a @ b, each entry summed over the inner index in order, in the dtype."""
    total = np.broadcast_to(start, (a.shape[0], b.shape[1])).copy()
    for p in range(a.shape[1]):
        total = total + a[:, p:p + 1] * b[p]
    return total


def in_order_gradients(weights, biases, x, y):
    """The sse gradients of a ReLU net, every product and bias sum taken in order."""
    inputs, derivs = [x], []
    for layer, (w, b) in enumerate(zip(weights, biases)):
        z = in_order(inputs[-1], w, b if b is not None else np.zeros(w.shape[1], w.dtype))
        if layer < len(weights) - 1:
            derivs.append(np.where(z < 0, 0, 1).astype(w.dtype))
            inputs.append(np.where(z < 0, 0, z).astype(w.dtype))
        else:
            out = z
    delta = (out - y) * w.dtype.type(2)
    weight_grads, bias_grads = [None] * len(weights), [None] * len(weights)
    for layer in range(len(weights) - 1, -1, -1):
        weight_grads[layer] = in_order(inputs[layer].T, delta, np.zeros(delta.shape[1], delta.dtype))
        if biases[layer] is not None:
            bias_grads[layer] = in_order(np.ones((1, delta.shape[0]), delta.dtype), delta,
                                         np.zeros(delta.shape[1], delta.dtype))[0]
        if layer > 0:
            delta = in_order(delta, weights[layer].T, np.zeros(weights[layer].shape[0], delta.dtype))
            delta = delta * derivs[layer - 1]
    return weight_grads, bias_grads


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("rows", ROWS)
@pytest.mark.parametrize("layers", LAYERS, ids=lambda layers: "-".join(map(str, layers)))
def test_tiny_gradients_are_the_sums_in_order(layers, rows, bias, dtype):
    """gradients() of a tiny net equal, to the bit, the products summed in order."""
    # A draw where ReLU cuts every path gives all-zero gradients, which tell
    # nothing: draw again (seeds are fixed, so the test is deterministic).
    for seed in range(20):
        rng = np.random.default_rng([rows, len(layers), seed])
        net = nnfast.Net(layers, bias=bias, dtype=dtype, seed=1)
        net.weights = [rng.standard_normal(w.shape) for w in net.weights]
        if bias:
            # Biases of both signs, so that some pre-activations are negative and ReLU cuts them.
            net.biases = [rng.standard_normal(b.shape) for b in net.biases]
        x = rng.standard_normal((rows, layers[0])).astype(dtype)
        y = rng.standard_normal((rows, layers[-1])).astype(dtype)
        biases = net.biases if bias else [None] * len(net.weights)
        want_weights, want_biases = in_order_gradients(net.weights, biases, x, y)
        if all(np.any(g != 0) for g in want_weights):
            break
    else:
        pytest.fail("no draw gave a nonzero gradient in every layer")
    got_weights, got_biases = net.gradients(x, y)
    for layer, (got, want) in enumerate(zip(got_weights, want_weights)):
        np.testing.assert_array_equal(got, want, err_msg=f"weight gradient of layer {layer}")
    for layer, (got, want) in enumerate(zip(got_biases, want_biases)):
        if want is not None:
            np.testing.assert_array_equal(got, want, err_msg=f"bias gradient of layer {layer}")
