"""Forward and backward passes of a fully connected ReLU net over its flat parameter buffer.

Buffers (all owned by the caller):

- ``params``/``grad``: the flat parameter vector and its gradient, laid out
  as ``nnfast._layout.ParameterLayout`` says.
- ``pre``/``act``: hidden pre-activations and ReLU outputs. Hidden layer
  ``i``'s block starts at ``capacity * (sizes[1] + ... + sizes[i])`` and
  holds ``rows`` C-ordered rows, where ``capacity`` is the buffer length
  divided by the total hidden width (so one buffer serves every batch
  size up to its capacity).
- ``out``: the output layer, ``(rows, sizes[-1])``; during backprop it
  holds the gradient of the loss with respect to the output.
"""
from cython cimport floating

from nnfast._matmul cimport matmul


cdef Architecture read_architecture(const Py_ssize_t[::1] table, bint mean_loss) noexcept:
    """View ``table`` = [n_layers, sizes..., weight offsets..., bias offsets...] as a struct."""
    cdef Architecture arch
    cdef Py_ssize_t i
    arch.n_layers = table[0]
    arch.sizes = &table[1]
    arch.weight_offsets = &table[2 + arch.n_layers]
    arch.bias_offsets = &table[2 + 2 * arch.n_layers]
    arch.hidden_width = 0
    for i in range(1, arch.n_layers):
        arch.hidden_width += arch.sizes[i]
    arch.mean_loss = mean_loss
    return arch


cdef Py_ssize_t workspace_capacity(const Architecture* arch, Py_ssize_t length,
                                   Py_ssize_t rows) noexcept nogil:
    """Rows that a hidden buffer of ``length`` elements holds (``rows`` if there is no hidden layer)."""
    return length // arch.hidden_width if arch.hidden_width else rows


cdef inline void affine_forward(Py_ssize_t rows, Py_ssize_t fan_in, Py_ssize_t fan_out,
                                const floating* inputs, const floating* weights,
                                const floating* bias, floating* z) noexcept nogil:
    """z = inputs @ weights (+ bias, when bias is not NULL)."""
    cdef Py_ssize_t i, j
    if bias == NULL:
        matmul(False, False, rows, fan_out, fan_in, inputs, weights, 0, z)
        return
    for i in range(rows):
        for j in range(fan_out):
            z[i * fan_out + j] = bias[j]
    matmul(False, False, rows, fan_out, fan_in, inputs, weights, 1, z)


cdef inline void relu_forward(Py_ssize_t n, const floating* z, floating* a) noexcept nogil:
    """a = np.maximum(z, 0); NaN stays NaN. ``a`` may be ``z``."""
    cdef Py_ssize_t i
    for i in range(n):
        a[i] = 0 if z[i] < 0 else z[i]


cdef inline void relu_backward(Py_ssize_t n, const floating* z, floating* grad) noexcept nogil:
    """grad[z < 0] = 0, the seed's mask: the gradient passes where z >= 0."""
    cdef Py_ssize_t i
    for i in range(n):
        if z[i] < 0:
            grad[i] = 0


cdef void forward_pass(const Architecture* arch, const floating* params, const floating* x,
                       Py_ssize_t rows, Py_ssize_t capacity, floating* pre, floating* act,
                       floating* out) noexcept nogil:
    """Run the net on ``x`` (rows, sizes[0]); fill ``pre``, ``act`` and ``out``.

    With ``pre == act`` the ReLU runs in place and the pre-activations are
    not kept (enough for prediction, not for backprop).
    """
    cdef Py_ssize_t layer, offset = 0
    cdef Py_ssize_t last = arch.n_layers - 1
    cdef Py_ssize_t fan_in, fan_out
    cdef const floating* inputs = x
    cdef const floating* bias
    cdef floating* z
    for layer in range(arch.n_layers):
        fan_in = arch.sizes[layer]
        fan_out = arch.sizes[layer + 1]
        bias = params + arch.bias_offsets[layer] if arch.bias_offsets[layer] >= 0 else NULL
        z = out if layer == last else pre + offset
        affine_forward(rows, fan_in, fan_out, inputs, params + arch.weight_offsets[layer], bias, z)
        if layer < last:
            relu_forward(rows * fan_out, z, act + offset)
            inputs = act + offset
            offset += capacity * fan_out


cdef double loss_and_output_gradient(const Architecture* arch, floating* out, const floating* y,
                                     Py_ssize_t rows, bint write_gradient) noexcept nogil:
    """Return the loss of ``out`` against ``y``; with ``write_gradient``, overwrite
    ``out`` by the loss's gradient with respect to it.

    sse: sum((out - y)**2), gradient 2 (out - y).
    mse: the same divided by rows * n_out, gradient 2 (out - y) / (rows * n_out).
    """
    cdef Py_ssize_t i, size = rows * arch.sizes[arch.n_layers]
    cdef floating diff
    cdef floating scale = 2.0 / size if arch.mean_loss else 2.0
    # Accumulate in double: a float32 running sum over a large batch drifts.
    cdef double total = 0
    for i in range(size):
        diff = out[i] - y[i]
        total += diff * diff
        if write_gradient:
            out[i] = scale * diff
    return total / size if arch.mean_loss else total


cdef void backward_pass(const Architecture* arch, const floating* params, const floating* x,
                        Py_ssize_t rows, Py_ssize_t capacity, const floating* pre, floating* act,
                        const floating* grad_out, floating* grad) noexcept nogil:
    """Backpropagate ``grad_out`` (rows, sizes[-1]) and write the full gradient into ``grad``.

    Uses ``pre`` and ``act`` from ``forward_pass`` on the same rows; ``act``
    is overwritten (each hidden block receives the gradient with respect to
    that layer's pre-activation once its activations are no longer needed).
    """
    cdef Py_ssize_t layer, i, j
    cdef Py_ssize_t fan_in, fan_out, offset = capacity * arch.hidden_width
    cdef const floating* delta = grad_out
    cdef const floating* inputs
    cdef floating* grad_bias
    cdef floating* grad_inputs
    for layer in range(arch.n_layers - 1, -1, -1):
        fan_in = arch.sizes[layer]
        fan_out = arch.sizes[layer + 1]
        if layer > 0:
            offset -= capacity * fan_in
        inputs = act + offset if layer > 0 else x
        # grad_W = inputs.T @ delta
        matmul(True, False, fan_in, fan_out, rows, inputs, delta, 0, grad + arch.weight_offsets[layer])
        if arch.bias_offsets[layer] >= 0:
            # grad_b = delta.sum(axis=0), row after row as NumPy sums it.
            grad_bias = grad + arch.bias_offsets[layer]
            for j in range(fan_out):
                grad_bias[j] = 0
            for i in range(rows):
                for j in range(fan_out):
                    grad_bias[j] += delta[i * fan_out + j]
        if layer > 0:
            # delta = (delta @ W.T) masked by the ReLU, written over the
            # activations that the weight gradient above has just used.
            grad_inputs = act + offset
            matmul(False, True, rows, fan_in, fan_out, delta, params + arch.weight_offsets[layer],
                   0, grad_inputs)
            relu_backward(rows * fan_in, pre + offset, grad_inputs)
            delta = grad_inputs


def forward_into(const Py_ssize_t[::1] table, const floating[::1] params,
                 const floating[:, ::1] x, floating[::1] pre, floating[::1] act,
                 floating[:, ::1] out):
    """Run the net on ``x``, writing the hidden layers into ``pre``/``act`` and the output into ``out``.

    Parameters
    ----------
    table : ndarray of intp
        ``ParameterLayout.table``.
    params : ndarray, shape (n_params,)
    x : ndarray, shape (rows, sizes[0])
    pre, act : ndarray, shape (>= rows * hidden_width,)
        Modified: pre-activations and ReLU outputs of the hidden layers. May
        be the same array, which then ends up holding the ReLU outputs.
    out : ndarray, shape (rows, sizes[-1])
        Modified: the network's output.
    """
    cdef Architecture arch = read_architecture(table, False)
    cdef Py_ssize_t rows = x.shape[0]
    cdef Py_ssize_t capacity = workspace_capacity(&arch, act.shape[0], rows)
    with nogil:
        forward_pass(&arch, &params[0], &x[0, 0], rows, capacity, &pre[0], &act[0], &out[0, 0])


def loss_value(const Py_ssize_t[::1] table, bint mean_loss, const floating[::1] params,
               const floating[:, ::1] x, const floating[:, ::1] y, floating[::1] hidden,
               floating[:, ::1] out):
    """Return the loss of the net on ``(x, y)``.

    ``hidden`` (>= rows * hidden_width) and ``out`` (rows, sizes[-1]) are scratch.
    """
    cdef Architecture arch = read_architecture(table, mean_loss)
    cdef Py_ssize_t rows = x.shape[0]
    cdef Py_ssize_t capacity = workspace_capacity(&arch, hidden.shape[0], rows)
    cdef double loss
    with nogil:
        forward_pass(&arch, &params[0], &x[0, 0], rows, capacity, &hidden[0], &hidden[0], &out[0, 0])
        loss = loss_and_output_gradient(&arch, &out[0, 0], &y[0, 0], rows, False)
    return loss


def gradients_into(const Py_ssize_t[::1] table, bint mean_loss, const floating[::1] params,
                   const floating[:, ::1] x, const floating[:, ::1] y, floating[::1] pre,
                   floating[::1] act, floating[:, ::1] out, floating[::1] grad):
    """Write the gradient of the loss on ``(x, y)`` into ``grad`` and return the loss.

    ``pre``, ``act`` (>= rows * hidden_width each) and ``out`` (rows,
    sizes[-1]) are scratch; ``grad`` (n_params,) is overwritten.
    """
    cdef Architecture arch = read_architecture(table, mean_loss)
    cdef Py_ssize_t rows = x.shape[0]
    cdef Py_ssize_t capacity = workspace_capacity(&arch, act.shape[0], rows)
    cdef double loss
    with nogil:
        forward_pass(&arch, &params[0], &x[0, 0], rows, capacity, &pre[0], &act[0], &out[0, 0])
        loss = loss_and_output_gradient(&arch, &out[0, 0], &y[0, 0], rows, True)
        backward_pass(&arch, &params[0], &x[0, 0], rows, capacity, &pre[0], &act[0],
                      &out[0, 0], &grad[0])
    return loss
