"""Optimizer updates over the flat parameter vector: SGD (momentum, Nesterov), Adam, AdamW.

The formulas are those of ``nnfast/optimizers.py`` (PyTorch's), written in
the same order of operations as ``nnfast.reference.optimizer_update``:
scalars are combined in double and rounded to the net's dtype once, as
NumPy does with a Python float and a float32 array.
"""
from cython cimport floating
from libc.math cimport pow, sqrt

from nnfast._status cimport STEP_OK, UPDATE_NOT_FINITE


cdef Hyperparameters read_hyperparameters(const double* values) noexcept nogil:
    """Unpack [code, momentum, nesterov, weight_decay, beta1, beta2, eps]."""
    cdef Hyperparameters hyper
    hyper.code = <int>values[0]
    hyper.momentum = values[1]
    hyper.nesterov = values[2] != 0
    hyper.weight_decay = values[3]
    hyper.beta1 = values[4]
    hyper.beta2 = values[5]
    hyper.eps = values[6]
    return hyper


cdef int optimizer_update(const Hyperparameters* hyper, long long step, double lr, Py_ssize_t n,
                          const floating* grad, floating* params, floating* first,
                          floating* second) noexcept nogil:
    """Apply update number ``step`` (from 1) with learning rate ``lr``, unless it
    would make a parameter NaN or infinite.

    ``first``/``second`` are the moment buffers (SGD's momentum is
    ``first``; unused buffers may be NULL). Returns STEP_OK, or
    UPDATE_NOT_FINITE with ``params`` and the buffers untouched, so a
    diverging fit keeps the last finite parameters.
    """
    cdef Py_ssize_t i
    cdef int apply
    cdef bint adam = hyper.code == ADAM or hyper.code == ADAMW
    cdef floating rate = lr
    cdef floating shrink = 1 - lr * hyper.weight_decay
    cdef floating decay = hyper.weight_decay
    cdef floating momentum = hyper.momentum
    cdef floating beta1 = hyper.beta1, beta2 = hyper.beta2, eps = hyper.eps
    cdef floating keep1 = 1 - hyper.beta1, keep2 = 1 - hyper.beta2
    cdef floating step_size = 0, correction2 = 1
    cdef floating g, p, m, v
    if adam:
        step_size = lr / (1 - pow(hyper.beta1, step))
        correction2 = sqrt(1 - pow(hyper.beta2, step))
    # Pass 0 only checks, pass 1 writes: a half-applied update could not be undone.
    for apply in range(2):
        for i in range(n):
            g = grad[i]
            p = params[i]
            if hyper.code == ADAMW:
                p = p * shrink
            elif hyper.weight_decay != 0:
                g = g + decay * p
            if adam:
                m = beta1 * first[i] + keep1 * g
                v = beta2 * second[i] + keep2 * g * g
                p = p - step_size * (m / (<floating>sqrt(v) / correction2 + eps))
                if apply:
                    first[i] = m
                    second[i] = v
            else:
                if hyper.momentum != 0:
                    m = momentum * first[i] + g
                    g = g + momentum * m if hyper.nesterov else m
                    if apply:
                        first[i] = m
                p = p - rate * g
            if apply:
                params[i] = p
            elif p - p != 0:
                return UPDATE_NOT_FINITE
    return STEP_OK
