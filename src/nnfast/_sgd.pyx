"""The plain SGD update over the flat parameter vector."""
from cython cimport floating

from nnfast._status cimport STEP_OK, UPDATE_NOT_FINITE


cdef int sgd_update(Py_ssize_t n, floating lr, const floating* grad, floating* params) noexcept nogil:
    """params -= lr * grad, unless that makes a parameter NaN or infinite.

    Returns STEP_OK, or UPDATE_NOT_FINITE with ``params`` untouched, so a
    diverging fit keeps the last finite parameters.
    """
    cdef Py_ssize_t i
    cdef floating updated
    # A read-only pass first: a half-applied update could not be undone exactly.
    for i in range(n):
        updated = params[i] - lr * grad[i]
        if updated - updated != 0:
            return UPDATE_NOT_FINITE
    for i in range(n):
        params[i] = params[i] - lr * grad[i]
    return STEP_OK
