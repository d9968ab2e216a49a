"""Optimizer updates over the flat parameter vector: SGD (momentum, Nesterov), Adam, AdamW.

The formulas are those of ``nnfast/optimizers.py`` (PyTorch's), written in
the same order of operations as ``nnfast.reference.optimizer_update``:
scalars are combined in double and rounded to the net's dtype once, as
NumPy does with a Python float and a float32 array.
"""
from cython cimport floating
from libc.math cimport pow, sqrt
from libc.string cimport memcpy

from nnfast._arrays cimport NanBits, add_nan_bits, no_nan_bits
from nnfast._status cimport STEP_OK, UPDATE_NOT_FINITE


cdef Hyperparameters read_hyperparameters(const double* values) noexcept nogil:
    """Unpack [code, momentum, nesterov, weight_decay, beta1, beta2, eps, style code]."""
    cdef Hyperparameters hyper
    hyper.code = <int>values[0]
    hyper.momentum = values[1]
    hyper.nesterov = values[2] != 0
    hyper.weight_decay = values[3]
    hyper.beta1 = values[4]
    hyper.beta2 = values[5]
    hyper.eps = values[6]
    hyper.sklearn_style = values[7] != 0
    return hyper


cdef int optimizer_update(const Hyperparameters* hyper, long long step, double lr, Py_ssize_t n,
                          floating* grad, floating* params, floating* first,
                          floating* second) noexcept nogil:
    """Apply update number ``step`` (from 1) with learning rate ``lr``, unless it
    would make a parameter NaN or infinite.

    ``first``/``second`` are the moment buffers (SGD's momentum is
    ``first``; unused buffers may be NULL). Returns STEP_OK, or
    UPDATE_NOT_FINITE with ``params`` and the buffers as they were, so a
    diverging fit keeps the last finite parameters: a first pass only
    checks, the second writes (a half-applied update could not be undone).
    Plain SGD instead applies in one pass and keeps the old parameters in
    ``grad``, to put them back if needed; ``grad`` is scratch afterwards.
    """
    if hyper.code == ADAM or hyper.code == ADAMW:
        if not adam_update(hyper, step, lr, n, grad, params, first, second, False):
            return UPDATE_NOT_FINITE
        adam_update(hyper, step, lr, n, grad, params, first, second, True)
    elif is_plain_sgd(hyper):
        if not plain_sgd_update(lr, n, grad, params):
            memcpy(params, grad, n * sizeof(floating))
            return UPDATE_NOT_FINITE
    else:
        if not sgd_update(hyper, lr, n, grad, params, first, False):
            return UPDATE_NOT_FINITE
        sgd_update(hyper, lr, n, grad, params, first, True)
    return STEP_OK


# Each update below is one branch-free loop per pass, so that the compiler
# vectorizes it: with apply false it only checks (returning whether every
# updated parameter is finite), with apply true it writes.

cdef bint plain_sgd_update(double lr, Py_ssize_t n, floating* grad, floating* params) noexcept nogil:
    """p = p - lr * g, swapping the old p into g; return whether every new p is finite."""
    # One pass instead of a check pass and an apply pass: it reads each
    # buffer once, and the old values it leaves in g restore p bit for bit.
    cdef Py_ssize_t i
    cdef floating rate = lr, old, p
    cdef NanBits bad = NanBits(0, 0)
    for i in range(n):
        old = params[i]
        p = old - rate * grad[i]
        params[i] = p
        grad[i] = old
        add_nan_bits(&bad, p)
    return no_nan_bits(&bad)


cdef bint sgd_update(const Hyperparameters* hyper, double lr, Py_ssize_t n, const floating* grad,
                     floating* params, floating* first, bint apply) noexcept nogil:
    """g = g + wd p; b = momentum b + g; g = g + momentum b (Nesterov) or b; p = p - lr g.
    In the sklearn style, v = momentum v - lr g; p = p + (momentum v - lr g (Nesterov) or v)."""
    cdef Py_ssize_t i
    cdef floating rate = lr, decay = hyper.weight_decay, momentum = hyper.momentum
    cdef floating g, b, p
    cdef bint nesterov = hyper.nesterov, has_momentum = hyper.momentum != 0
    cdef bint sklearn_style = hyper.sklearn_style and has_momentum
    cdef NanBits bad = NanBits(0, 0)
    for i in range(n):
        g = grad[i] + decay * params[i] if decay != 0 else grad[i]
        if sklearn_style:
            b = momentum * first[i] - rate * g
            p = params[i] + (momentum * b - rate * g if nesterov else b)
            if apply:
                first[i] = b
                params[i] = p
            add_nan_bits(&bad, p)
            continue
        if has_momentum:
            b = momentum * first[i] + g
            g = g + momentum * b if nesterov else b
            if apply:
                first[i] = b
        p = params[i] - rate * g
        if apply:
            params[i] = p
        add_nan_bits(&bad, p)
    return no_nan_bits(&bad)


cdef bint adam_update(const Hyperparameters* hyper, long long step, double lr, Py_ssize_t n,
                      const floating* grad, floating* params, floating* first, floating* second,
                      bint apply) noexcept nogil:
    """Adam (L2 weight decay) or AdamW (decoupled): see nnfast/optimizers.py."""
    cdef Py_ssize_t i
    cdef bint decoupled = hyper.code == ADAMW
    # Multiplying by 1 and adding 0 * p are exact, so one loop body serves
    # both (and stays free of branches).
    cdef floating shrink = 1 - lr * hyper.weight_decay if decoupled else 1
    cdef floating decay = 0 if decoupled else hyper.weight_decay
    cdef floating beta1 = hyper.beta1, beta2 = hyper.beta2, eps = hyper.eps
    cdef floating keep1 = 1 - hyper.beta1, keep2 = 1 - hyper.beta2
    cdef floating step_size = lr / (1 - pow(hyper.beta1, step))
    cdef floating correction2 = sqrt(1 - pow(hyper.beta2, step))
    cdef floating g, p, m, v
    cdef NanBits bad = NanBits(0, 0)
    if hyper.sklearn_style:
        return sklearn_adam_update(hyper, step, lr, n, grad, params, first, second, apply)
    if apply:
        for i in range(n):
            p = params[i] * shrink
            g = grad[i] + decay * p
            m = beta1 * first[i] + keep1 * g
            v = beta2 * second[i] + keep2 * g * g
            first[i] = m
            second[i] = v
            params[i] = p - step_size * (m / (<floating>sqrt(v) / correction2 + eps))
        return True
    for i in range(n):
        p = params[i] * shrink
        g = grad[i] + decay * p
        m = beta1 * first[i] + keep1 * g
        v = beta2 * second[i] + keep2 * g * g
        p = p - step_size * (m / (<floating>sqrt(v) / correction2 + eps))
        add_nan_bits(&bad, p)
    return no_nan_bits(&bad)


cdef bint sklearn_adam_update(const Hyperparameters* hyper, long long step, double lr, Py_ssize_t n,
                              const floating* grad, floating* params, floating* first,
                              floating* second, bint apply) noexcept nogil:
    """Adam in scikit-learn's form: p = p + (-lr_t m) / (sqrt(v) + eps), with
    lr_t = lr sqrt(1 - beta2**t) / (1 - beta1**t); L2 weight decay as Adam's."""
    cdef Py_ssize_t i
    cdef floating decay = hyper.weight_decay
    cdef floating beta1 = hyper.beta1, beta2 = hyper.beta2, eps = hyper.eps
    cdef floating keep1 = 1 - hyper.beta1, keep2 = 1 - hyper.beta2
    cdef floating minus_step = -(lr * sqrt(1 - pow(hyper.beta2, step)) / (1 - pow(hyper.beta1, step)))
    cdef floating g, p, m, v
    cdef NanBits bad = NanBits(0, 0)
    for i in range(n):
        g = grad[i] + decay * params[i]
        m = beta1 * first[i] + keep1 * g
        v = beta2 * second[i] + keep2 * g * g
        p = params[i] + (minus_step * m) / (<floating>sqrt(v) + eps)
        if apply:
            first[i] = m
            second[i] = v
            params[i] = p
        add_nan_bits(&bad, p)
    return no_nan_bits(&bad)
