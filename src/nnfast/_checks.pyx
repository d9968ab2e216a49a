"""Input scans for the validation layer: one compiled pass instead of several NumPy calls."""
cimport numpy as cnp
from cython cimport floating

from nnfast._arrays cimport all_finite, is_float32, vector_data

cnp.import_array()


cdef Py_ssize_t first_non_finite_typed(floating* kind, cnp.ndarray values) except -2:
    cdef Py_ssize_t i, found = -1, size = cnp.PyArray_SIZE(values)
    cdef const floating* flat = vector_data(values, kind, 0, False)
    with nogil:
        if all_finite(flat, size):  # the usual case, found by a faster loop
            return -1
        for i in range(size):
            # x - x is 0 for every finite x and NaN for NaN and +-inf.
            if flat[i] - flat[i] != 0:
                found = i
                break
    return found


def first_non_finite(cnp.ndarray values):
    """Return the flat index of the first NaN or infinity in ``values``, or -1.

    Parameters
    ----------
    values : ndarray of float32 or float64, C-contiguous, any shape
        Not modified.
    """
    if is_float32(values):
        return first_non_finite_typed(<float*>NULL, values)
    return first_non_finite_typed(<double*>NULL, values)


cdef extern from *:
    """
    #if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
    /* libgcc's CPU model also checks that the OS saves the AVX registers. */
    static int nnfast_cpu_has_avx2(void) { __builtin_cpu_init(); return __builtin_cpu_supports("avx2"); }
    static int nnfast_cpu_has_avx512f(void) { __builtin_cpu_init(); return __builtin_cpu_supports("avx512f"); }
    #else
    static int nnfast_cpu_has_avx2(void) { return 0; }
    static int nnfast_cpu_has_avx512f(void) { return 0; }
    #endif
    """
    int nnfast_cpu_has_avx2() nogil
    int nnfast_cpu_has_avx512f() nogil


def cpu_has_avx2():
    """Return whether this CPU (and OS) can run the AVX2 build of the kernels."""
    return bool(nnfast_cpu_has_avx2())


def cpu_has_avx512f():
    """Return whether this CPU (and OS) runs AVX-512F, as OpenBLAS's SkylakeX kernels need."""
    return bool(nnfast_cpu_has_avx512f())
