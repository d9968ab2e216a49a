"""Forward and backward passes of a fully connected ReLU net over its flat parameter buffer.

Buffers (all owned by the caller):

- ``params``: the flat parameter vector, laid out as
  ``nnfast._layout.ParameterLayout`` says.
- ``workspace``: one scratch buffer carved as ``[grad | pre | act | out]``
  (``ParameterLayout.workspace_length``), one buffer per net instead of
  four. ``grad`` is the gradient, in the layout of ``params``. ``act``
  holds the hidden layers' activations and ``deriv`` the derivative of
  each activation at its input, computed in the forward pass so that
  backprop is one multiplication whatever the activation: hidden layer
  ``i``'s block starts at ``capacity * (sizes[1] + ... + sizes[i])`` and
  holds ``rows`` C-ordered rows. ``out`` holds the output layer, ``(rows,
  sizes[-1])``, and during backprop the gradient of the loss with respect
  to it. ``capacity`` follows from the buffer's length, so one workspace
  serves every batch size up to it.
"""
cimport numpy as cnp
from cython cimport floating
from libc.math cimport exp, fabs, log, log1p, tanh

from nnfast._arrays cimport NanBits, add_nan_bits, no_nan_bits
from nnfast._matmul cimport matmul, set_loops_cache_bytes
from nnfast._tiny cimport is_tiny, tiny_affine, tiny_backprop, tiny_weight_gradient

cnp.import_array()
set_loops_cache_bytes()


cdef Architecture read_architecture(cnp.ndarray table, int loss, double negative_slope,
                                    double l2) except *:
    """View ``table`` = [n_layers, n_params, sizes..., weight offsets..., bias offsets...,
    activation codes...] as a struct."""
    cdef Architecture arch
    cdef Py_ssize_t i
    cdef const Py_ssize_t* values = <const Py_ssize_t*>cnp.PyArray_DATA(table)
    if (cnp.PyArray_TYPE(table) != cnp.NPY_INTP or not cnp.PyArray_IS_C_CONTIGUOUS(table)
            or cnp.PyArray_SIZE(table) < 1 or cnp.PyArray_SIZE(table) != 3 + 4 * values[0]):
        raise ValueError("table must be a ParameterLayout.table")
    if loss < SSE or loss > BINARY_LOG_LOSS:
        raise ValueError(f"unknown loss code {loss}")
    arch.n_layers = values[0]
    arch.n_params = values[1]
    arch.sizes = &values[2]
    arch.weight_offsets = &values[3 + arch.n_layers]
    arch.bias_offsets = &values[3 + 2 * arch.n_layers]
    arch.activations = &values[3 + 3 * arch.n_layers]
    arch.hidden_width = 0
    arch.max_width = 0
    for i in range(1, arch.n_layers):
        arch.hidden_width += arch.sizes[i]
    for i in range(arch.n_layers + 1):
        arch.max_width = max(arch.max_width, arch.sizes[i])
    arch.loss = loss
    arch.negative_slope = negative_slope
    arch.l2 = l2
    return arch


cdef Workspace carve_workspace(const Architecture* arch, Py_ssize_t length,
                               bint with_gradient) noexcept nogil:
    """Offsets of grad, deriv, act and out in a workspace of ``length`` elements;
    without ``with_gradient`` there is no grad part (evaluation writes the
    gradient into its result) and deriv starts at 0."""
    cdef Workspace ws
    cdef Py_ssize_t start = arch.n_params if with_gradient else 0
    ws.capacity = (length - start) // (2 * arch.hidden_width + arch.sizes[arch.n_layers])
    ws.deriv = start
    ws.act = ws.deriv + ws.capacity * arch.hidden_width
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


cdef inline floating sigmoid(floating z) noexcept nogil:
    """1 / (1 + exp(-z)) without overflow for either sign of z.

    The divisor is a double whatever the dtype: Cython writes the literal 1 as
    the double 1.0, and without cdivision (the checked build) it would keep
    the divisor in a temporary of the dtype, rounding float32 differently.
    """
    cdef floating decay = exp(-fabs(z))
    cdef double divisor = 1.0 + decay
    return 1 / divisor if z >= 0 else decay / divisor


cdef void activation_forward(int kind, floating slope, Py_ssize_t n, floating* values,
                             floating* derivative) noexcept nogil:
    """Replace the pre-activations ``values`` by their activations and, unless
    ``derivative`` is NULL, store the activation's derivative there.

    ReLU passes the gradient where z >= 0 (the seed's grad_h[h < 0] = 0);
    NaN stays NaN. One loop per activation, so that each can vectorize.
    """
    cdef Py_ssize_t i
    cdef floating z, a
    cdef bint keep = derivative != NULL
    if kind == RELU and keep:
        for i in range(n):
            z = values[i]
            derivative[i] = 0 if z < 0 else 1
            values[i] = 0 if z < 0 else z
    elif kind == RELU:
        for i in range(n):
            z = values[i]
            values[i] = 0 if z < 0 else z
    elif kind == LEAKY_RELU and keep:
        for i in range(n):
            z = values[i]
            derivative[i] = slope if z < 0 else 1
            values[i] = slope * z if z < 0 else z
    elif kind == LEAKY_RELU:
        for i in range(n):
            z = values[i]
            values[i] = slope * z if z < 0 else z
    elif kind == TANH:
        for i in range(n):
            a = tanh(values[i])
            values[i] = a
            if keep:
                derivative[i] = 1 - a * a
    elif kind == SIGMOID:
        for i in range(n):
            a = sigmoid(values[i])
            values[i] = a
            if keep:
                derivative[i] = a * (1 - a)
    elif keep:
        for i in range(n):
            derivative[i] = 1


cdef void forward_pass(const Architecture* arch, const floating* params, const floating* x,
                       Py_ssize_t rows, Py_ssize_t capacity, floating* deriv, floating* act,
                       floating* out) noexcept nogil:
    """Run the net on ``x`` (rows, sizes[0]); fill ``act``, ``out`` and, unless it
    is NULL (prediction), ``deriv``."""
    cdef Py_ssize_t layer, offset = 0
    cdef Py_ssize_t last = arch.n_layers - 1
    cdef Py_ssize_t fan_in, fan_out
    cdef const floating* inputs = x
    cdef const floating* bias
    cdef floating* z
    cdef bint tiny = is_tiny(arch.max_width, rows)
    for layer in range(arch.n_layers):
        fan_in = arch.sizes[layer]
        fan_out = arch.sizes[layer + 1]
        bias = params + arch.bias_offsets[layer] if arch.bias_offsets[layer] >= 0 else NULL
        z = out if layer == last else act + offset
        if tiny:
            tiny_affine(rows, fan_out, fan_in, inputs, params + arch.weight_offsets[layer], bias, z)
        else:
            affine_forward(rows, fan_in, fan_out, inputs, params + arch.weight_offsets[layer], bias, z)
        if layer < last:
            activation_forward(arch.activations[layer], <floating>arch.negative_slope,
                               rows * fan_out, z, deriv + offset if deriv != NULL else NULL)
            inputs = z
            offset += capacity * fan_out


cdef double total_weight(const floating* weights, Py_ssize_t rows) noexcept nogil:
    """What the averaging losses divide by: the sum of ``weights[:rows]`` (in
    double, in order), or ``rows`` if ``weights`` is NULL; 1 if every weight
    is 0, so that such rows have loss 0 and gradient 0."""
    cdef Py_ssize_t i
    cdef double total = 0
    if weights == NULL:
        return rows
    for i in range(rows):
        total += weights[i]
    return total if total != 0 else 1


cdef double loss_sum(const Architecture* arch, floating* out, const floating* y,
                     const floating* weights, Py_ssize_t rows, double normalizer,
                     bint write_gradient, double total) noexcept nogil:
    """Return ``total`` plus the loss of the outputs ``out`` against ``y`` summed
    over the ``rows`` rows, each row's term times its weight (``weights``, or
    1 if NULL), in double. With ``write_gradient``, overwrite ``out`` by the
    gradient with respect to it of the loss over all the rows of which these
    are some, whose ``total_weight`` is ``normalizer``. ``mean_loss`` turns
    the sum over all rows into the loss; carrying ``total`` from one block of
    rows to the next adds in the order one call over all rows would.

    With W the normalizer, k the outputs and w a row's weight: sse:
    sum(w (out - y)**2), gradient 2 w (out - y); mse: both divided by W k;
    squared_error: half the sum, over W, gradient w (out - y) / W.
    cross_entropy: sum over rows of w sum_j y_j (lse - out_j) / W, lse the
    row's log-sum-exp; gradient w (softmax * sum_j y_j - y) / W.
    binary_cross_entropy: sum of w (max(z, 0) - z y + log1p(exp(-|z|))) / (W k);
    gradient w (sigmoid(z) - y) / (W k); binary_log_loss: the same over W
    instead of W k. poisson: sum of
    w (exp(z) - y z + y log y - y) / W; gradient w (exp(z) - y) / W. As
    nnfast.reference computes them; a weight of 1 changes no bit.
    """
    cdef Py_ssize_t i, k, n_out = arch.sizes[arch.n_layers], size = rows * n_out
    cdef double denominator = normalizer if arch.loss == BINARY_LOG_LOSS else normalizer * n_out
    cdef floating diff, top, log_sum_exp, target_sum, decay, mean, weight = 1
    cdef floating scale = (2.0 / (normalizer * n_out) if arch.loss == MSE else
                           1.0 / normalizer if arch.loss == SQUARED_ERROR else 2.0)
    cdef floating* row
    cdef const floating* target
    # Accumulate in double: a float32 running sum over a large batch drifts.
    if (arch.loss == SSE or arch.loss == MSE or arch.loss == SQUARED_ERROR) and weights == NULL:
        # Unweighted, one loop over every element: the weight 1 would change
        # no bit, and at the seed's size the loop per row costs more than
        # the arithmetic.
        for k in range(size):
            diff = out[k] - y[k]
            total += diff * diff
            if write_gradient:
                out[k] = scale * diff
    elif arch.loss == SSE or arch.loss == MSE or arch.loss == SQUARED_ERROR:
        for i in range(rows):
            if weights != NULL:
                weight = weights[i]
            for k in range(i * n_out, (i + 1) * n_out):
                diff = out[k] - y[k]
                total += weight * (diff * diff)
                if write_gradient:
                    out[k] = scale * (weight * diff)
    elif arch.loss == CROSS_ENTROPY:
        for i in range(rows):
            if weights != NULL:
                weight = weights[i]
            row = out + i * n_out
            target = y + i * n_out
            top = row[0]
            for k in range(1, n_out):
                if row[k] > top:
                    top = row[k]
            log_sum_exp = 0
            for k in range(n_out):
                log_sum_exp += exp(row[k] - top)
            log_sum_exp = top + log(log_sum_exp)
            target_sum = 0
            for k in range(n_out):
                total += weight * (target[k] * (log_sum_exp - row[k]))
                target_sum += target[k]
            if write_gradient:
                for k in range(n_out):
                    row[k] = weight * (exp(row[k] - log_sum_exp) * target_sum - target[k]) / <floating>normalizer
    elif arch.loss == POISSON:
        for i in range(rows):
            if weights != NULL:
                weight = weights[i]
            for k in range(i * n_out, (i + 1) * n_out):
                mean = exp(out[k])
                total += weight * (mean - y[k] * out[k] + (y[k] * log(y[k]) if y[k] > 0 else 0) - y[k])
                if write_gradient:
                    out[k] = weight * (mean - y[k]) / <floating>normalizer
    else:
        for i in range(rows):
            if weights != NULL:
                weight = weights[i]
            for k in range(i * n_out, (i + 1) * n_out):
                decay = exp(-fabs(out[k]))
                total += weight * ((out[k] if out[k] > 0 else 0) - out[k] * y[k] + log1p(decay))
                if write_gradient:
                    out[k] = weight * (sigmoid(out[k]) - y[k]) / <floating>denominator
    return total


cdef double l2_penalty(const Architecture* arch, const floating* params, floating* grad,
                       double normalizer) noexcept nogil:
    """Return 0.5 l2 sum(W**2) / normalizer over every weight (no bias), in
    double; unless ``grad`` is NULL, add l2 W / normalizer to the weight
    gradients there. 0 without a penalty."""
    cdef Py_ssize_t layer, i, start, end
    cdef double squares = 0
    cdef floating l2 = arch.l2, divisor = normalizer
    if arch.l2 == 0:
        return 0
    for layer in range(arch.n_layers):
        start = arch.weight_offsets[layer]
        end = start + arch.sizes[layer] * arch.sizes[layer + 1]
        for i in range(start, end):
            squares += <double>params[i] * params[i]
            if grad != NULL:
                grad[i] += l2 * params[i] / divisor
    return 0.5 * arch.l2 * squares / normalizer


cdef double mean_loss(const Architecture* arch, floating total, double normalizer) noexcept nogil:
    """The loss of rows whose ``total_weight`` is ``normalizer`` from ``loss_sum``'s
    total over them, rounded to the net's dtype first as the reference does
    (a float32 sum beyond float32's range is infinite, and then so is its mean)."""
    cdef floating half = 0.5
    if arch.loss == SSE:
        return total
    if arch.loss == SQUARED_ERROR:
        return total * half / <floating>normalizer
    if arch.loss == CROSS_ENTROPY or arch.loss == POISSON or arch.loss == BINARY_LOG_LOSS:
        return total / <floating>normalizer
    return total / <floating>(normalizer * arch.sizes[arch.n_layers])


cdef double loss_and_output_gradient(const Architecture* arch, floating* out, const floating* y,
                                     const floating* weights, Py_ssize_t rows,
                                     bint write_gradient) noexcept nogil:
    """Return the loss of the outputs ``out`` (rows, sizes[-1]) against ``y``, rows
    weighted by ``weights`` (NULL: unweighted); with ``write_gradient``,
    overwrite ``out`` by the loss's gradient with respect to it."""
    cdef double normalizer = total_weight(weights, rows)
    return mean_loss(arch, <floating>loss_sum(arch, out, y, weights, rows, normalizer,
                                              write_gradient, 0), normalizer)


cdef double accuracy(const Architecture* arch, const floating* out, const floating* y,
                     Py_ssize_t rows) noexcept nogil:
    """The fraction of rows whose largest output is the largest target
    (cross_entropy), or of elements on the right side of 0.5 (binary)."""
    cdef Py_ssize_t i, k, n_out = arch.sizes[arch.n_layers], best, truth
    cdef Py_ssize_t right = 0
    if arch.loss == CROSS_ENTROPY:
        for i in range(rows):
            best = truth = 0
            for k in range(1, n_out):
                if out[i * n_out + k] > out[i * n_out + best]:
                    best = k
                if y[i * n_out + k] > y[i * n_out + truth]:
                    truth = k
            right += best == truth
        return right / <double>rows
    for i in range(rows * n_out):
        right += (out[i] >= 0) == (y[i] >= 0.5)
    return right / <double>(rows * n_out)


cdef inline const floating* layer_inputs(const Architecture* arch, Py_ssize_t layer,
                                         const floating* x, const floating* act,
                                         Py_ssize_t capacity) noexcept nogil:
    """The inputs of ``layer`` in the forward pass: ``x``, or a block of ``act``."""
    cdef Py_ssize_t i, offset = 0
    if layer == 0:
        return x
    for i in range(1, layer):
        offset += capacity * arch.sizes[i]
    return act + offset


cdef inline floating* backprop_to_inputs(Py_ssize_t rows, Py_ssize_t fan_in, Py_ssize_t fan_out,
                                         const floating* delta, const floating* weights,
                                         const floating* deriv, floating* inputs, bint tiny) noexcept nogil:
    """Write (delta @ weights.T) * f'(z), the gradient with respect to the layer's
    pre-activations, over its ``inputs`` (whose derivative block is ``deriv``);
    ``tiny``: by the tiny products (see ``nnfast._tiny``)."""
    cdef Py_ssize_t i
    if tiny:
        tiny_backprop(rows, fan_in, fan_out, delta, weights, deriv, inputs)
        return inputs
    matmul(False, True, rows, fan_in, fan_out, delta, weights, 0, inputs)
    for i in range(rows * fan_in):
        inputs[i] *= deriv[i]
    return inputs


cdef void backward_pass(const Architecture* arch, const floating* params, const floating* x,
                        Py_ssize_t rows, Py_ssize_t capacity, const floating* deriv,
                        floating* act, const floating* grad_out, floating* grad,
                        bint accumulate) noexcept nogil:
    """Backpropagate ``grad_out`` (rows, sizes[-1]) and write the full gradient into
    ``grad``, or with ``accumulate`` add it to what ``grad`` holds.

    Uses ``deriv`` and ``act`` from ``forward_pass`` on the same rows; ``act``
    is overwritten (each hidden block receives the gradient with respect to
    that layer's pre-activation once its activations are no longer needed).
    """
    cdef Py_ssize_t layer, i, j, fan_in, fan_out
    cdef const floating* delta = grad_out
    cdef const floating* inputs
    cdef floating* grad_bias
    cdef floating* grad_weights
    cdef bint tiny = is_tiny(arch.max_width, rows)
    for layer in range(arch.n_layers - 1, -1, -1):
        fan_in = arch.sizes[layer]
        fan_out = arch.sizes[layer + 1]
        inputs = layer_inputs(arch, layer, x, act, capacity)
        grad_weights = grad + arch.weight_offsets[layer]
        # grad_W (+)= inputs.T @ delta
        if tiny and not accumulate:
            tiny_weight_gradient(fan_in, fan_out, rows, inputs, delta, grad_weights)
        else:
            matmul(True, False, fan_in, fan_out, rows, inputs, delta, 1 if accumulate else 0, grad_weights)
        if arch.bias_offsets[layer] >= 0:
            # grad_b (+)= delta.sum(axis=0), row after row as NumPy sums it.
            grad_bias = grad + arch.bias_offsets[layer]
            if not accumulate:
                for j in range(fan_out):
                    grad_bias[j] = 0
            for i in range(rows):
                for j in range(fan_out):
                    grad_bias[j] += delta[i * fan_out + j]
        if layer > 0:
            # Over the activations that the weight gradient above has just used.
            delta = backprop_to_inputs(rows, fan_in, fan_out, delta, params + arch.weight_offsets[layer],
                                       deriv + (inputs - act), <floating*>inputs, tiny)


cdef inline double largest_magnitude(const floating* values, Py_ssize_t n) noexcept nogil:
    """max |values[i]|, or NaN if one is NaN."""
    cdef Py_ssize_t i
    cdef double largest = 0, magnitude
    for i in range(n):
        magnitude = fabs(values[i])
        if not magnitude <= largest:
            largest = magnitude
    return largest


cdef inline bint update_cannot_overflow(double rate, const floating* inputs, Py_ssize_t fan_in,
                                        const floating* delta, Py_ssize_t fan_out) noexcept nogil:
    """Whether every ``old - rate * (inputs[i] * delta[j])`` and ``old - rate * delta[j]``
    is finite for every finite ``old``.

    A step of magnitude below half an ulp of the largest finite number cannot
    carry a finite number past it: 2**969 in float64, 2**103 in float32, with
    a margin here for the rounding of the products. NaN or infinite inputs or
    deltas fail the test.
    """
    cdef double bound = fabs(rate) * largest_magnitude(delta, fan_out) * max(largest_magnitude(inputs, fan_in), 1.0)
    if floating is double:
        return bound < 2.0 ** 960
    return bound < 2.0 ** 100


cdef inline void restore_layers(const Architecture* arch, floating* params, const floating* saved,
                                Py_ssize_t first) noexcept nogil:
    """Copy the weights and biases of layers ``first`` onwards from ``saved`` into ``params``."""
    cdef Py_ssize_t layer, i, start, end
    for layer in range(first, arch.n_layers):
        start = arch.weight_offsets[layer]
        end = start + arch.sizes[layer] * arch.sizes[layer + 1]
        for i in range(start, end):
            params[i] = saved[i]
        if arch.bias_offsets[layer] >= 0:
            for i in range(arch.bias_offsets[layer], arch.bias_offsets[layer] + arch.sizes[layer + 1]):
                params[i] = saved[i]


cdef bint backward_sgd_one_row(const Architecture* arch, floating* params, const floating* x,
                               Py_ssize_t capacity, const floating* deriv, floating* act,
                               const floating* grad_out, floating* saved, double lr) noexcept nogil:
    """Backpropagate one sample and apply plain SGD, ``p = p - lr * g``, as each
    layer's gradient is found; return whether every new parameter is finite,
    and if one is not, put every parameter back as it was.

    Arguments as for ``backward_pass`` with one row; ``saved``, laid out as
    ``params``, is scratch. With one row a weight gradient is an outer
    product, ``g[i, j] = inputs[i] * delta[j]``: computing and applying it
    in one pass saves writing the gradient and reading it back. The
    gradient's entries are the products ``backward_pass`` computes, and the
    updates round as ``optimizer_update``'s, so the results are the same.

    A layer's old values go to ``saved``: backprop to the layer below reads
    them, and they undo the step. The first layer has no layer below, and
    when ``update_cannot_overflow`` rules out a non-finite result (parameters
    are finite, by the net's invariant) it is updated without a copy: at
    batch 1 its weights are most of the memory a step moves.
    """
    cdef Py_ssize_t layer, i, j, fan_in, fan_out
    cdef floating rate = lr, scale, old, new
    cdef const floating* delta = grad_out
    cdef const floating* inputs
    cdef floating* weights
    cdef floating* old_weights
    cdef NanBits bad = NanBits(0, 0)
    cdef bint keep_old
    for layer in range(arch.n_layers - 1, -1, -1):
        fan_in = arch.sizes[layer]
        fan_out = arch.sizes[layer + 1]
        inputs = layer_inputs(arch, layer, x, act, capacity)
        weights = params + arch.weight_offsets[layer]
        old_weights = saved + arch.weight_offsets[layer]
        keep_old = True
        if layer == 0:
            if not no_nan_bits(&bad):
                # A layer above went wrong: the first is left untouched.
                restore_layers(arch, params, saved, 1)
                return False
            keep_old = not update_cannot_overflow(lr, inputs, fan_in, delta, fan_out)
        if keep_old:
            for i in range(fan_in):
                scale = inputs[i]
                for j in range(fan_out):
                    old = weights[i * fan_out + j]
                    new = old - rate * (scale * delta[j])
                    weights[i * fan_out + j] = new
                    old_weights[i * fan_out + j] = old
                    add_nan_bits(&bad, new)
        else:
            for i in range(fan_in):
                scale = inputs[i]
                for j in range(fan_out):
                    weights[i * fan_out + j] = weights[i * fan_out + j] - rate * (scale * delta[j])
        if arch.bias_offsets[layer] >= 0:
            for j in range(fan_out):
                old = params[arch.bias_offsets[layer] + j]
                new = old - rate * delta[j]
                params[arch.bias_offsets[layer] + j] = new
                saved[arch.bias_offsets[layer] + j] = old
                add_nan_bits(&bad, new)
        if layer > 0:
            # With the weights from before the update, over the inputs it has just used.
            delta = backprop_to_inputs(1, fan_in, fan_out, delta, old_weights, deriv + (inputs - act),
                                       <floating*>inputs, is_tiny(arch.max_width, 1))
    if no_nan_bits(&bad):
        return True
    restore_layers(arch, params, saved, 0)
    return False
