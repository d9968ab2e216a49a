# The products are inline functions, compiled into each module that cimports
# them: at the seed's size a step does a dozen tiny products, and a call
# through another module's function table costs as much as one of them.
from cython cimport floating
from scipy.linalg.cython_blas cimport dgemm, sgemm

# Multiply-adds (m * n * k) from which BLAS beats the plain loops. From
# `python bench/report.py --matmul`: BLAS won every measured product shape
# from 12 x 12 x 12 = 1728 on; below 512 the loops won them all.
cdef enum:
    BLAS_MIN_WORK = 1728
    SMALL_N = 4


cdef inline void loops_matmul(bint trans_a, bint trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                       const floating* a, const floating* b, floating beta, floating* c) noexcept nogil:
    """c = op(a) @ op(b) + beta * c, with a stored (m, k) or (k, m) and b (k, n) or (n, k)."""
    cdef Py_ssize_t i, j, p
    cdef floating scale, total
    if beta == 0:
        # Like BLAS, beta == 0 means c is output only: stale NaNs must not leak in.
        for i in range(m * n):
            c[i] = 0
    elif beta != 1:
        for i in range(m * n):
            c[i] *= beta
    if not trans_b and n <= SMALL_N:
        # Rows of c this short leave a vectorized inner loop all set-up and no
        # work; a dot product per entry, kept in a register, adds in the same
        # order and so gives the same bits.
        for i in range(m):
            for j in range(n):
                total = c[i * n + j]
                for p in range(k):
                    total += (a[p * m + i] if trans_a else a[i * k + p]) * b[p * n + j]
                c[i * n + j] = total
    elif not trans_b:
        # Inner loop runs along rows of b and c, contiguous and vectorizable.
        for i in range(m):
            for p in range(k):
                scale = a[p * m + i] if trans_a else a[i * k + p]
                for j in range(n):
                    c[i * n + j] += scale * b[p * n + j]
    else:
        for i in range(m):
            for j in range(n):
                total = 0
                for p in range(k):
                    total += (a[p * m + i] if trans_a else a[i * k + p]) * b[j * k + p]
                c[i * n + j] += total


cdef inline void blas_matmul(bint trans_a, bint trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                      const floating* a, const floating* b, floating beta, floating* c) noexcept nogil:
    """c = op(a) @ op(b) + beta * c through Fortran (column-major) gemm."""
    # A row-major (m, n) matrix is a column-major (n, m) one, so compute
    # c.T = op(b).T @ op(a).T: swap the operands, keep the transpose flags.
    cdef char trans_b_flag = b"T" if trans_b else b"N"
    cdef char trans_a_flag = b"T" if trans_a else b"N"
    cdef int m_ = <int>m, n_ = <int>n, k_ = <int>k
    cdef int lda = m_ if trans_a else k_
    cdef int ldb = k_ if trans_b else n_
    cdef floating one = 1
    if floating is double:
        dgemm(&trans_b_flag, &trans_a_flag, &n_, &m_, &k_, &one, <double*>b, &ldb,
              <double*>a, &lda, &beta, c, &n_)
    else:
        sgemm(&trans_b_flag, &trans_a_flag, &n_, &m_, &k_, &one, <float*>b, &ldb,
              <float*>a, &lda, &beta, c, &n_)


cdef inline void matmul(bint trans_a, bint trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                 const floating* a, const floating* b, floating beta, floating* c) noexcept nogil:
    """c = op(a) @ op(b) + beta * c for C-contiguous operands, by loops or BLAS."""
    if m * n * k >= BLAS_MIN_WORK:
        blas_matmul(trans_a, trans_b, m, n, k, a, b, beta, c)
    else:
        loops_matmul(trans_a, trans_b, m, n, k, a, b, beta, c)


