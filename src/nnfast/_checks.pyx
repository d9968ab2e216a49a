"""Input scans for the validation layer: one compiled pass instead of several NumPy calls."""
from cython cimport floating


def first_non_finite(const floating[::1] values):
    """Return the index of the first NaN or infinity in ``values``, or -1.

    Parameters
    ----------
    values : ndarray of float32 or float64, shape (n,), C-contiguous
        Not modified.
    """
    cdef Py_ssize_t i, found = -1
    cdef floating value
    with nogil:
        for i in range(values.shape[0]):
            value = values[i]
            # x - x is 0 for every finite x and NaN for NaN and +-inf.
            if value - value != 0:
                found = i
                break
    return found
