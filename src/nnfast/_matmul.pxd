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


cdef inline void narrow_matmul(bint trans_a, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                               const floating* a, const floating* b, floating* c) noexcept nogil:
    """c += op(a) @ b for n <= 4 columns, each entry summed over k in order in a register.

    The same order of additions as the row-update loops, so the same bits.
    """
    cdef Py_ssize_t i, p
    cdef floating scale, c0, c1 = 0, c2 = 0, c3 = 0
    cdef const floating* row
    for i in range(m):
        c0 = c[i * n]
        if n > 1:
            c1 = c[i * n + 1]
        if n > 2:
            c2 = c[i * n + 2]
        if n > 3:
            c3 = c[i * n + 3]
        for p in range(k):
            scale = a[p * m + i] if trans_a else a[i * k + p]
            row = b + p * n
            c0 += scale * row[0]
            if n > 1:
                c1 += scale * row[1]
            if n > 2:
                c2 += scale * row[2]
            if n > 3:
                c3 += scale * row[3]
        c[i * n] = c0
        if n > 1:
            c[i * n + 1] = c1
        if n > 2:
            c[i * n + 2] = c2
        if n > 3:
            c[i * n + 3] = c3


cdef inline void narrow_widths(bint trans_a, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                               const floating* a, const floating* b, floating* c) noexcept nogil:
    """narrow_matmul with the width n (1 to 4) made a constant."""
    if n == 1:
        narrow_matmul(trans_a, m, 1, k, a, b, c)
    elif n == 2:
        narrow_matmul(trans_a, m, 2, k, a, b, c)
    elif n == 3:
        narrow_matmul(trans_a, m, 3, k, a, b, c)
    else:
        narrow_matmul(trans_a, m, 4, k, a, b, c)


cdef inline void dot_matmul(bint trans_a, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                            const floating* a, const floating* b, floating* c) noexcept nogil:
    """c += op(a) @ b.T, one dot product of length k per entry."""
    cdef Py_ssize_t i, j, p
    cdef floating total
    for i in range(m):
        for j in range(n):
            total = 0
            for p in range(k):
                total += (a[p * m + i] if trans_a else a[i * k + p]) * b[j * k + p]
            c[i * n + j] += total


cdef inline void loops_matmul(bint trans_a, bint trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                       const floating* a, const floating* b, floating beta, floating* c) noexcept nogil:
    """c = op(a) @ op(b) + beta * c, with a stored (m, k) or (k, m) and b (k, n) or (n, k)."""
    cdef Py_ssize_t i, j, p
    cdef floating scale
    if beta == 0:
        # Like BLAS, beta == 0 means c is output only: stale NaNs must not leak in.
        for i in range(m * n):
            c[i] = 0
    elif beta != 1:
        for i in range(m * n):
            c[i] *= beta
    if not trans_b and n <= 4:
        # Rows of c this short leave a vectorized inner loop all set-up and no
        # work. A constant flag here and a constant width in narrow_widths let
        # the compiler fold each call into its own fully unrolled copy.
        if trans_a:
            narrow_widths(True, m, n, k, a, b, c)
        else:
            narrow_widths(False, m, n, k, a, b, c)
    elif not trans_b:
        # Inner loop runs along rows of b and c, contiguous and vectorizable.
        for i in range(m):
            for p in range(k):
                scale = a[p * m + i] if trans_a else a[i * k + p]
                for j in range(n):
                    c[i * n + j] += scale * b[p * n + j]
    elif trans_a or k > 4:
        dot_matmul(trans_a, m, n, k, a, b, c)
    # a @ b.T with short rows, as backprop meets it through a narrow layer:
    # a constant k lets each copy unroll its dot products.
    elif k == 1:
        dot_matmul(False, m, n, 1, a, b, c)
    elif k == 2:
        dot_matmul(False, m, n, 2, a, b, c)
    elif k == 3:
        dot_matmul(False, m, n, 3, a, b, c)
    else:
        dot_matmul(False, m, n, 4, a, b, c)


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


