"""Where each layer's parameters live in a net's single flat buffer.

All weights and biases of a net sit in one contiguous vector, layer after
layer: ``W0 (row-major, fan_in x fan_out), b0, W1, b1, ...``. An update is
then one loop, a gradient is one vector of the same layout, and the
kernels find each layer through the offset arrays below.
"""
import numpy as np


class ParameterLayout:
    """Offsets of every weight matrix and bias vector in the flat buffer.

    Parameters
    ----------
    layers : tuple of int
        Layer sizes, input first.
    bias : bool
        Whether every layer has a bias vector.

    Attributes
    ----------
    sizes : ndarray of intp, shape (n_layers + 1,)
        The layer sizes, as the kernels read them.
    weight_offsets, bias_offsets : ndarray of intp, shape (n_layers,)
        Start of each layer's weights and biases; a bias offset is -1 where
        the layer has no bias.
    n_params : int
        Length of the flat buffer.
    table : ndarray of intp
        ``[n_layers, n_params, sizes..., weight offsets..., bias offsets...]``,
        the form in which the kernels read all of the above.
    hidden_width : int
        The sum of the hidden layer sizes.
    """

    def __init__(self, layers, bias):
        self.sizes = np.asarray(layers, dtype=np.intp)
        n_layers = len(layers) - 1
        self.weight_offsets = np.empty(n_layers, dtype=np.intp)
        self.bias_offsets = np.full(n_layers, -1, dtype=np.intp)
        offset = 0
        for layer in range(n_layers):
            fan_in, fan_out = layers[layer], layers[layer + 1]
            self.weight_offsets[layer] = offset
            offset += fan_in * fan_out
            if bias:
                self.bias_offsets[layer] = offset
                offset += fan_out
        self.n_params = offset
        # Everything the kernels need, in one array (one memoryview per call):
        # [n_layers, n_params, sizes..., weight offsets..., bias offsets...].
        self.table = np.concatenate(
            [[n_layers, offset], self.sizes, self.weight_offsets, self.bias_offsets]
        ).astype(np.intp)
        self.hidden_width = sum(layers[1:-1])
        self.weight_shapes = [(layers[i], layers[i + 1]) for i in range(n_layers)]
        self.bias_shapes = [(layers[i + 1],) for i in range(n_layers)] if bias else []

    def workspace_length(self, capacity):
        """Length of the kernels' scratch buffer for batches of up to ``capacity`` rows.

        The kernels carve it as ``[grad | pre | act | out]``: the gradient
        (n_params), the hidden pre-activations and ReLU outputs (capacity *
        hidden_width each) and the output layer (capacity * sizes[-1]);
        ``src/nnfast/_dense.pyx`` reads the same order.
        """
        return self.n_params + capacity * (2 * self.hidden_width + int(self.sizes[-1]))

    def weight_views(self, flat):
        """Views of ``flat`` shaped like each layer's weight matrix."""
        return [
            flat[start : start + rows * cols].reshape(rows, cols)
            for start, (rows, cols) in zip(self.weight_offsets, self.weight_shapes)
        ]

    def bias_views(self, flat):
        """Views of ``flat`` shaped like each layer's bias vector (empty without biases)."""
        return [flat[start : start + n] for start, (n,) in zip(self.bias_offsets, self.bias_shapes)]


def initialize(layout, params, seed):
    """Fill ``params`` in place with a fresh, seeded initialization.

    Weights feeding a ReLU layer are He-normal, ``N(0, 2 / fan_in)``; the
    output layer's are LeCun-normal, ``N(0, 1 / fan_in)``, which keeps the
    scale of an identity output; biases are zero. Values are drawn in
    float64 and then rounded, so float32 and float64 nets built with the
    same seed start from the same point.
    """
    rng = np.random.default_rng(seed)
    params[:] = 0
    weights = layout.weight_views(params)
    for layer, view in enumerate(weights):
        fan_in = view.shape[0]
        gain = 1.0 if layer == len(weights) - 1 else 2.0
        view[:] = rng.standard_normal(view.shape) * np.sqrt(gain / fan_in)
