"""Row-major matrix products: nnfast's blocked kernels where their operands stay in cache, BLAS ``gemm`` beyond.

BLAS pays a call and packing overhead that dominates small products, and
wins once the operands outgrow the cache its blocking is made for;
``matmul`` picks by the shape and the machine (``crossover``). The products are
inline functions in ``_matmul.pxd``; this module exposes them to Python
for tests and benchmarks.
"""
from cython cimport floating

set_loops_cache_bytes()


def crossover():
    """What decides loops against BLAS in this build (see ``nnfast._machine``).

    Returns
    -------
    dict
        ``loops_cache_bytes``: BLAS takes a product (with m >= ``block_rows``)
        once what the blocked kernels read in one pass over a block of
        columns, ``m * d * itemsize + (d + m) * 2 * crossover_vector_bytes``
        bytes with ``d = min(k, depth_slice)``, exceeds it, and a @ b.T of
        fewer rows with k > 4 once b's ``n * k * itemsize`` bytes do;
        ``crossover_vector_bytes``: the vector width every build assumes
        there, so that all choose alike; ``vector_bytes``: this build's
        vector width.
    """
    return dict(loops_cache_bytes=loops_cache_bytes, vector_bytes=VECTOR_BYTES,
                crossover_vector_bytes=CROSSOVER_VECTOR_BYTES, block_rows=BLOCK_ROWS, depth_slice=DEPTH_SLICE)


def uses_blas_for(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, Py_ssize_t itemsize, bint trans_b=False):
    """Whether ``method="auto"`` (and every kernel) computes an (m, k) @ (k, n) product by
    BLAS; with ``trans_b``, one whose right operand is stored (n, k)."""
    return bool(uses_blas(trans_b, m, n, k, itemsize))


def matmul_into(const floating[:, ::1] a, const floating[:, ::1] b, floating[:, ::1] out,
                bint trans_a=False, bint trans_b=False, double beta=0.0, str method="auto",
                Py_ssize_t repeats=1):
    """Compute ``out = op(a) @ op(b) + beta * out`` in place (for tests and benchmarks).

    Parameters
    ----------
    a, b : ndarray, 2-D, C-contiguous, float32 or float64
        ``op(a)`` is ``a.T`` when ``trans_a`` is true, else ``a``; same for ``b``.
    out : ndarray, 2-D, C-contiguous, same dtype
        Modified in place.
    method : {"auto", "loops", "blas"}
        ``"auto"`` chooses as the kernels do (``uses_blas_for``).
    repeats : int, default 1
        Compute the product this many times in one call, so that a benchmark
        of a small product does not time this function's Python overhead.
        With ``beta`` other than 0 each repeat starts from the last one's result.
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
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    # Decided with the GIL: comparing Python strings needs it.
    cdef bint use_loops = method == "loops"
    cdef bint use_blas = method == "blas"
    cdef Py_ssize_t repeat
    with nogil:
        for repeat in range(repeats):
            if use_loops:
                loops_matmul(trans_a, trans_b, m, n, k, &a[0, 0], &b[0, 0], <floating>beta, &out[0, 0])
            elif use_blas:
                blas_matmul(trans_a, trans_b, m, n, k, &a[0, 0], &b[0, 0], <floating>beta, &out[0, 0])
            else:
                matmul(trans_a, trans_b, m, n, k, &a[0, 0], &b[0, 0], <floating>beta, &out[0, 0])
