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
    bias : list of bool
        Whether each layer has a bias vector.
    activations : list of int
        Activation code of each layer's output (the last one is the
        identity); the kernels read them from ``table``.

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
        ``[n_layers, n_params, sizes..., weight offsets..., bias offsets...,
        activation codes...]``, the form in which the kernels read all of
        the above.
    hidden_width : int
        The sum of the hidden layer sizes.
    """

    def __init__(self, layers, bias, activations):
        self.sizes = np.asarray(layers, dtype=np.intp)
        n_layers = len(layers) - 1
        self.weight_offsets = np.empty(n_layers, dtype=np.intp)
        self.bias_offsets = np.full(n_layers, -1, dtype=np.intp)
        offset = 0
        for layer in range(n_layers):
            fan_in, fan_out = layers[layer], layers[layer + 1]
            self.weight_offsets[layer] = offset
            offset += fan_in * fan_out
            if bias[layer]:
                self.bias_offsets[layer] = offset
                offset += fan_out
        self.n_params = offset
        # Everything the kernels need about the architecture, in one array:
        # [n_layers, n_params, sizes..., weight offsets..., bias offsets...,
        #  activation codes...].
        self.table = np.concatenate(
            [[n_layers, offset], self.sizes, self.weight_offsets, self.bias_offsets, activations]
        ).astype(np.intp)
        self.hidden_width = sum(layers[1:-1])
        self.weight_shapes = [(layers[i], layers[i + 1]) for i in range(n_layers)]
        self.bias_shapes = [(layers[i + 1],) for i in range(n_layers) if bias[i]]

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
        """Views of ``flat`` shaped like the bias vector of each layer that has one."""
        starts = [start for start in self.bias_offsets if start >= 0]
        return [flat[start : start + n] for start, (n,) in zip(starts, self.bias_shapes)]


def _draw_weights(rng, scheme, fan_in, fan_out, std):
    """Draw a (fan_in, fan_out) weight matrix in float64."""
    if scheme == "he_normal":
        return rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)
    if scheme == "he_uniform":
        limit = np.sqrt(6.0 / fan_in)
        return rng.uniform(-limit, limit, (fan_in, fan_out))
    if scheme == "glorot_normal":
        return rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / (fan_in + fan_out))
    if scheme == "glorot_uniform":
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, (fan_in, fan_out))
    return rng.standard_normal((fan_in, fan_out)) * std  # "normal"


def initialize(layout, params, seed, init, init_std, activations):
    """Fill ``params`` in place with a fresh, seeded initialization; biases are zero.

    ``init`` names the weight distribution of every layer: ``"he_normal"``
    ``N(0, 2/fan_in)``, ``"he_uniform"`` ``U(+-sqrt(6/fan_in))``,
    ``"glorot_normal"`` ``N(0, 2/(fan_in+fan_out))``, ``"glorot_uniform"``
    ``U(+-sqrt(6/(fan_in+fan_out)))``, ``"normal"`` ``N(0, init_std**2)``;
    ``"auto"`` takes He normal for layers followed by a (leaky) ReLU and
    Glorot normal for the others, the output layer included. Values are
    drawn in float64 and then rounded, so float32 and float64 nets built
    with the same seed start from the same point.
    """
    rng = np.random.default_rng(seed)
    params[:] = 0
    for view, activation in zip(layout.weight_views(params), activations):
        scheme = init
        if init == "auto":
            scheme = "he_normal" if activation in ("relu", "leaky_relu") else "glorot_normal"
        view[:] = _draw_weights(rng, scheme, view.shape[0], view.shape[1], init_std)
