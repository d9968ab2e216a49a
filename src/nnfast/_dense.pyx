"""Forward and backward passes of a fully connected ReLU net over its flat parameter buffer.

Buffers (all owned by the caller):

- ``params``: the flat parameter vector, laid out as
  ``nnfast._layout.ParameterLayout`` says.
- ``workspace``: one scratch buffer carved as ``[grad | pre | act | out]``
  (``ParameterLayout.workspace_length``), so that a call acquires one
  buffer instead of four. ``grad`` is the gradient, in the layout of
  ``params``. ``pre``/``act`` hold the hidden pre-activations and ReLU
  outputs: hidden layer ``i``'s block starts at ``capacity * (sizes[1] +
  ... + sizes[i])`` and holds ``rows`` C-ordered rows. ``out`` holds the
  output layer, ``(rows, sizes[-1])``, and during backprop the gradient of
  the loss with respect to it. ``capacity`` follows from the buffer's
  length, so one workspace serves every batch size up to it.
"""
cimport numpy as cnp
from cython cimport floating

from nnfast._arrays cimport is_float32, matrix_data, vector_data
from nnfast._matmul cimport matmul

cnp.import_array()


cdef Architecture read_architecture(cnp.ndarray table, bint mean_loss) except *:
    """View ``table`` = [n_layers, n_params, sizes..., weight offsets..., bias offsets...] as a struct."""
    cdef Architecture arch
    cdef Py_ssize_t i
    cdef const Py_ssize_t* values = <const Py_ssize_t*>cnp.PyArray_DATA(table)
    if (cnp.PyArray_TYPE(table) != cnp.NPY_INTP or not cnp.PyArray_IS_C_CONTIGUOUS(table)
            or cnp.PyArray_SIZE(table) < 1 or cnp.PyArray_SIZE(table) != 3 + 3 * values[0]):
        raise ValueError("table must be a ParameterLayout.table")
    arch.n_layers = values[0]
    arch.n_params = values[1]
    arch.sizes = &values[2]
    arch.weight_offsets = &values[3 + arch.n_layers]
    arch.bias_offsets = &values[3 + 2 * arch.n_layers]
    arch.hidden_width = 0
    for i in range(1, arch.n_layers):
        arch.hidden_width += arch.sizes[i]
    arch.mean_loss = mean_loss
    return arch


cdef Workspace carve_workspace(const Architecture* arch, Py_ssize_t length) noexcept nogil:
    """Offsets of grad, pre, act and out in a workspace of ``length`` elements."""
    cdef Workspace ws
    ws.capacity = (length - arch.n_params) // (2 * arch.hidden_width + arch.sizes[arch.n_layers])
    ws.pre = arch.n_params
    ws.act = ws.pre + ws.capacity * arch.hidden_width
    ws.out = ws.act + ws.capacity * arch.hidden_width
    return ws


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
    cdef floating diff, loss
    cdef floating scale = 2.0 / size if arch.mean_loss else 2.0
    # Accumulate in double: a float32 running sum over a large batch drifts.
    cdef double total = 0
    for i in range(size):
        diff = out[i] - y[i]
        total += diff * diff
        if write_gradient:
            out[i] = scale * diff
    # The loss is a number of the net's dtype, as in the reference: a float32
    # sum beyond float32's range is infinite, and then so is its mean.
    loss = <floating>total
    return loss / size if arch.mean_loss else loss


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
            inputs = act + offset
        else:
            inputs = x
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


cdef forward_typed(floating* kind, cnp.ndarray table, cnp.ndarray params, cnp.ndarray x,
                   cnp.ndarray workspace, cnp.ndarray out, bint keep_pre_activations):
    cdef Architecture arch = read_architecture(table, False)
    cdef Py_ssize_t rows = cnp.PyArray_DIM(x, 0)
    cdef const floating* p = vector_data(params, kind, arch.n_params, False)
    cdef const floating* inputs = matrix_data(x, kind, -1, arch.sizes[0], False)
    cdef floating* outputs = matrix_data(out, kind, rows, arch.sizes[arch.n_layers], True)
    cdef floating* scratch = vector_data(workspace, kind, 0, True)
    cdef Workspace ws = carve_workspace(&arch, cnp.PyArray_SIZE(workspace))
    if ws.capacity < rows:
        raise ValueError(f"workspace holds {ws.capacity} rows, x has {rows}")
    with nogil:
        forward_pass(&arch, p, inputs, rows, ws.capacity,
                     scratch + (ws.pre if keep_pre_activations else ws.act), scratch + ws.act, outputs)


def forward_into(cnp.ndarray table, cnp.ndarray params, cnp.ndarray x, cnp.ndarray workspace,
                 cnp.ndarray out, bint keep_pre_activations):
    """Run the net on ``x`` and write its output into ``out``.

    Parameters
    ----------
    table : ndarray of intp
        ``ParameterLayout.table``.
    params : ndarray of float32 or float64, shape (n_params,)
        All arrays share this dtype.
    x : ndarray, shape (rows, sizes[0])
    workspace : ndarray, shape (>= ParameterLayout.workspace_length(rows),)
        Modified: its ``act`` part receives the hidden ReLU outputs, and with
        ``keep_pre_activations`` its ``pre`` part the pre-activations
        (otherwise the ReLU runs in place, which is all prediction needs).
    out : ndarray, shape (rows, sizes[-1])
        Modified: the network's output.
    """
    if is_float32(params):
        forward_typed(<float*>NULL, table, params, x, workspace, out, keep_pre_activations)
    else:
        forward_typed(<double*>NULL, table, params, x, workspace, out, keep_pre_activations)


cdef double backprop_typed(floating* kind, cnp.ndarray table, bint mean_loss, cnp.ndarray params,
                           cnp.ndarray x, cnp.ndarray y, cnp.ndarray workspace,
                           bint gradients) except? -1:
    cdef Architecture arch = read_architecture(table, mean_loss)
    cdef Py_ssize_t rows = cnp.PyArray_DIM(x, 0)
    cdef const floating* p = vector_data(params, kind, arch.n_params, False)
    cdef const floating* inputs = matrix_data(x, kind, -1, arch.sizes[0], False)
    cdef const floating* targets = matrix_data(y, kind, rows, arch.sizes[arch.n_layers], False)
    cdef floating* scratch = vector_data(workspace, kind, 0, True)
    cdef Workspace ws = carve_workspace(&arch, cnp.PyArray_SIZE(workspace))
    cdef double loss
    if ws.capacity < rows:
        raise ValueError(f"workspace holds {ws.capacity} rows, x has {rows}")
    with nogil:
        forward_pass(&arch, p, inputs, rows, ws.capacity, scratch + ws.pre, scratch + ws.act,
                     scratch + ws.out)
        loss = loss_and_output_gradient(&arch, scratch + ws.out, targets, rows, gradients)
        if gradients:
            backward_pass(&arch, p, inputs, rows, ws.capacity, scratch + ws.pre, scratch + ws.act,
                          scratch + ws.out, scratch)
    return loss


def loss_value(cnp.ndarray table, bint mean_loss, cnp.ndarray params, cnp.ndarray x,
               cnp.ndarray y, cnp.ndarray workspace):
    """Return the loss of the net on ``(x, y)``; ``workspace`` is scratch.

    Arrays as for ``forward_into``; ``y`` has shape (rows, sizes[-1]).
    """
    if is_float32(params):
        return backprop_typed(<float*>NULL, table, mean_loss, params, x, y, workspace, False)
    return backprop_typed(<double*>NULL, table, mean_loss, params, x, y, workspace, False)


def gradients_into(cnp.ndarray table, bint mean_loss, cnp.ndarray params, cnp.ndarray x,
                   cnp.ndarray y, cnp.ndarray workspace):
    """Write the gradient of the loss on ``(x, y)`` into the workspace's ``grad`` part
    (its first n_params elements) and return the loss; the rest is scratch.

    Arrays as for ``forward_into``; ``y`` has shape (rows, sizes[-1]).
    """
    if is_float32(params):
        return backprop_typed(<float*>NULL, table, mean_loss, params, x, y, workspace, True)
    return backprop_typed(<double*>NULL, table, mean_loss, params, x, y, workspace, True)
