"""Row-major matrix products: plain loops for small ones, BLAS ``gemm`` for the rest.

BLAS pays a call and packing overhead that dominates tiny products (the
seed's 4x3 @ 3x3), while plain loops fall far behind BLAS once layers are
a few dozen wide; ``matmul`` picks by the amount of work. The products are
inline functions in ``_matmul.pxd``; this module exposes them to Python
for tests and benchmarks.
"""
from cython cimport floating

blas_min_work = BLAS_MIN_WORK


def matmul_into(const floating[:, ::1] a, const floating[:, ::1] b, floating[:, ::1] out,
                bint trans_a=False, bint trans_b=False, double beta=0.0, str method="auto"):
    """Compute ``out = op(a) @ op(b) + beta * out`` in place (for tests and benchmarks).

    Parameters
    ----------
    a, b : ndarray, 2-D, C-contiguous, float32 or float64
        ``op(a)`` is ``a.T`` when ``trans_a`` is true, else ``a``; same for ``b``.
    out : ndarray, 2-D, C-contiguous, same dtype
        Modified in place.
    method : {"auto", "loops", "blas"}
        ``"auto"`` chooses as the kernels do (by ``BLAS_MIN_WORK``).
    """
    cdef Py_ssize_t m = a.shape[1] if trans_a else a.shape[0]
    cdef Py_ssize_t k = a.shape[0] if trans_a else a.shape[1]
    cdef Py_ssize_t n = b.shape[0] if trans_b else b.shape[1]
    if (b.shape[1] if trans_b else b.shape[0]) != k or out.shape[0] != m or out.shape[1] != n:
        raise ValueError("matmul_into: shapes of a, b and out do not match")
    if method not in ("auto", "loops", "blas"):
        raise ValueError(f"method must be 'auto', 'loops' or 'blas', got {method!r}")
    if m == 0 or n == 0 or k == 0:
        raise ValueError("matmul_into: empty operands are not supported")
    # Decided with the GIL: comparing Python strings needs it.
    cdef bint use_loops = method == "loops"
    cdef bint use_blas = method == "blas"
    with nogil:
        if use_loops:
            loops_matmul(trans_a, trans_b, m, n, k, &a[0, 0], &b[0, 0], <floating>beta, &out[0, 0])
        elif use_blas:
            blas_matmul(trans_a, trans_b, m, n, k, &a[0, 0], &b[0, 0], <floating>beta, &out[0, 0])
        else:
            matmul(trans_a, trans_b, m, n, k, &a[0, 0], &b[0, 0], <floating>beta, &out[0, 0])
