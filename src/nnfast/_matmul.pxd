# The products are inline functions, compiled into each module that cimports
# them: at the seed's size a step does a dozen tiny products, and a call
# through another module's function table costs as much as one of them.
from cython cimport floating
from scipy.linalg.cython_blas cimport dgemm, sgemm

# Which products go to BLAS. nnfast's blocked kernels run at about BLAS's
# rate, on cores that add on pipes of their own, while what one pass over a
# block of columns reads (m rows of op(a) by one slice of the inner
# dimension, that slice of b's columns, and the column of c) stays in L2;
# past that, BLAS's packing and cache blocking win. Elsewhere they win only
# on products small enough for BLAS's call to matter. So BLAS takes a
# product when those bytes exceed ``loops_cache_bytes``, which
# ``nnfast._machine.loops_cache_bytes`` derives from the CPU's caches, its
# add pipes and the vector widths when the module is imported (``set_loops_cache_bytes``),
# never from a timing: a run is reproducible on a machine. Fewer rows than
# a block take BLAS only for a @ b.T with a large b (``uses_blas``). Every
# build decides as the AVX2 one does (``CROSSOVER_VECTOR_BYTES``), so that
# on one machine all builds send the same products to BLAS, and the same
# bits come out of each.
cdef extern from *:
    """
    /* Each module that cimports this has its own copy, set when it is imported. */
    static Py_ssize_t nnfast_loops_cache_bytes = 0;
    /* The blocked kernels' vectors: AVX's 32 bytes, SSE2's 16, or none. */
    #if defined(__GNUC__) && defined(__AVX__)
    #  define NNFAST_VECTOR_BYTES 32
    #elif defined(__GNUC__)
    #  define NNFAST_VECTOR_BYTES 16
    #else
    #  define NNFAST_VECTOR_BYTES 0
    #endif
    """
    Py_ssize_t loops_cache_bytes "nnfast_loops_cache_bytes"
    const Py_ssize_t VECTOR_BYTES "NNFAST_VECTOR_BYTES"


cdef inline int set_loops_cache_bytes() except -1:
    """Set this module's ``loops_cache_bytes`` from the machine; called once, at import."""
    global loops_cache_bytes
    from nnfast import _machine
    loops_cache_bytes = _machine.loops_cache_bytes(CROSSOVER_VECTOR_BYTES)
    return 0


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


# The blocked kernels hold a block of c in vector registers while they run
# through the inner dimension, so that every entry of c is summed over p in
# order, starting from what c holds: the additions of the plain row-update
# loop, in its order, whatever the block shape, the build or the CPU. Blocks
# cut rows and columns of c, never the sum over p. They are C, because
# GCC's vector types are what keeps a block in registers; Cython's arrays
# stay in memory.
cdef extern from *:
    """
    #include <stddef.h>
    #if NNFAST_VECTOR_BYTES
    /* The inner dimension in slices: the slice of b that a column block
       reads stays in L1 while every row block of a passes over it. */
    #  define NNFAST_DEPTH_SLICE 256

    #  define NNFAST_BLOCK(T, NAME, VEC)                                                      \\
    /* c[:ROWS, :VECS * lanes] += op(a)[:ROWS, :depth] @ b[:depth, :VECS * lanes], or =       \\
       with overwrite (c is then not read: 0 + the first product, as a zeroed c would give);  \\
       row r, step p of op(a) is a[r * a_row + p * a_col]. ROWS and VECS are constants. */    \\
    static inline __attribute__((always_inline)) void NAME(                                   \\
            const int ROWS, const int VECS, int overwrite, ptrdiff_t depth, const T* a,       \\
            ptrdiff_t a_row, ptrdiff_t a_col, const T* b, ptrdiff_t ldb, T* c, ptrdiff_t ldc) {\\
        enum { lanes = sizeof(VEC) / sizeof(T) };                                             \\
        VEC acc[12][8], b_row[8];                                                             \\
        int r, v;                                                                             \\
        ptrdiff_t p;                                                                          \\
        for (r = 0; r < ROWS; r++)                                                            \\
            for (v = 0; v < VECS; v++)                                                        \\
                acc[r][v] = overwrite ? (VEC){0} : *(const VEC*)(c + r * ldc + v * lanes);    \\
        for (p = 0; p < depth; p++) {                                                         \\
            for (v = 0; v < VECS; v++)                                                        \\
                b_row[v] = *(const VEC*)(b + p * ldb + v * lanes);                            \\
            for (r = 0; r < ROWS; r++) {                                                      \\
                T scale = a[r * a_row + p * a_col];                                           \\
                for (v = 0; v < VECS; v++)                                                    \\
                    acc[r][v] += scale * b_row[v];                                            \\
            }                                                                                 \\
        }                                                                                     \\
        for (r = 0; r < ROWS; r++)                                                            \\
            for (v = 0; v < VECS; v++)                                                        \\
                *(VEC*)(c + r * ldc + v * lanes) = acc[r][v];                                 \\
    }

    #  define NNFAST_TAIL(T, NAME, BLOCK, VEC, FIRST)                                         \\
    /* The last columns, at most a vector VEC wide, after FIRST: as they are when they        \\
       are exactly a vector, else b's copied into a vector-wide panel padded with zeros       \\
       (on the stack), c's into a block-sized buffer and back; the padding's sums are         \\
       thrown away. */                                                                        \\
    static void NAME(ptrdiff_t m, ptrdiff_t width, int overwrite, ptrdiff_t depth,            \\
            const T* a, ptrdiff_t a_row, ptrdiff_t a_col, const T* b, ptrdiff_t ldb,          \\
            T* c, ptrdiff_t ldc) {                                                            \\
        enum { L = sizeof(VEC) / sizeof(T) };                                                 \\
        T panel[NNFAST_DEPTH_SLICE * L], rows_of_c[4 * L];                                    \\
        ptrdiff_t i, r, p, j, rows;                                                           \\
        FIRST                                                                                 \\
        if (width == L) {                                                                     \\
            for (i = 0; i + 12 <= m; i += 12)                                                 \\
                BLOCK(12, 1, overwrite, depth, a + i * a_row, a_row, a_col, b, ldb, c + i * ldc, ldc);\\
            for (; i + 4 <= m; i += 4)                                                        \\
                BLOCK(4, 1, overwrite, depth, a + i * a_row, a_row, a_col, b, ldb, c + i * ldc, ldc);\\
            for (; i < m; i++)                                                                \\
                BLOCK(1, 1, overwrite, depth, a + i * a_row, a_row, a_col, b, ldb, c + i * ldc, ldc);\\
            return;                                                                           \\
        }                                                                                     \\
        for (p = 0; p < depth; p++)                                                           \\
            for (j = 0; j < L; j++)                                                           \\
                panel[p * L + j] = j < width ? b[p * ldb + j] : 0;                            \\
        for (i = 0; i < m; i += rows) {                                                       \\
            rows = m - i < 4 ? m - i : 4;                                                     \\
            for (r = 0; r < rows; r++)                                                        \\
                for (j = 0; j < L; j++)                                                       \\
                    rows_of_c[r * L + j] = j < width && !overwrite ? c[(i + r) * ldc + j] : 0;\\
            if (rows == 4)                                                                    \\
                BLOCK(4, 1, 0, depth, a + i * a_row, a_row, a_col, panel, L, rows_of_c, L);   \\
            else                                                                              \\
                for (r = 0; r < rows; r++)                                                    \\
                    BLOCK(1, 1, 0, depth, a + (i + r) * a_row, a_row, a_col, panel, L,        \\
                          rows_of_c + r * L, L);                                              \\
            for (r = 0; r < rows; r++)                                                        \\
                for (j = 0; j < width; j++)                                                   \\
                    c[(i + r) * ldc + j] = rows_of_c[r * L + j];                              \\
        }                                                                                     \\
    }

    #  if NNFAST_VECTOR_BYTES == 32
    /* Columns left over that fit in 16 bytes take SSE-wide vectors: an output of 4
       floats or 2 doubles, common in small nets, would otherwise be padded to twice
       its width. */
    #    define NNFAST_HALF(T, S)                                                             \\
    typedef T nnfast_half_##S __attribute__((vector_size(16), aligned(sizeof(T))));           \\
    NNFAST_BLOCK(T, nnfast_half_block_##S, nnfast_half_##S)                                   \\
    NNFAST_TAIL(T, nnfast_half_tail_##S, nnfast_half_block_##S, nnfast_half_##S, )
    #    define NNFAST_HALF_TAIL(S)                                                           \\
    if (width * (ptrdiff_t)sizeof(*b) <= 16) {                                                \\
        nnfast_half_tail_##S(m, width, overwrite, depth, a, a_row, a_col, b, ldb, c, ldc);    \\
        return;                                                                               \\
    }
    #  else
    #    define NNFAST_HALF(T, S)
    #    define NNFAST_HALF_TAIL(S)
    #  endif

    #  define NNFAST_BLOCKED(T, S)                                                            \\
    typedef T nnfast_vec_##S __attribute__((vector_size(NNFAST_VECTOR_BYTES), aligned(sizeof(T))));\\
    enum { nnfast_lanes_##S = NNFAST_VECTOR_BYTES / sizeof(T) };                              \\
    NNFAST_BLOCK(T, nnfast_block_##S, nnfast_vec_##S)                                         \\
    NNFAST_HALF(T, S)                                                                         \\
    NNFAST_TAIL(T, nnfast_tail_##S, nnfast_block_##S, nnfast_vec_##S, NNFAST_HALF_TAIL(S))    \\
                                                                                              \\
    /* The rows of one column block VECS vectors wide, 6 at a time and then 4: 6 rows \\
       by 2 vectors are 12 independent sums, enough to keep both FMA pipes busy, in 15 of \\
       16 registers. The rows left over, fewer than 4, are the caller's.        */ \\
    static inline __attribute__((always_inline)) void nnfast_rows_##S(                  \\
            const int VECS, ptrdiff_t m, int overwrite, ptrdiff_t depth, const T* a,         \\
            ptrdiff_t a_row, ptrdiff_t a_col, const T* b, ptrdiff_t ldb, T* c, ptrdiff_t ldc) { \\
        ptrdiff_t i = 0;                                                                     \\
        if (VECS == 1)                                                                       \\
            for (; i + 12 <= m; i += 12)                                                     \\
                nnfast_block_##S(12, 1, overwrite, depth, a + i * a_row, a_row, a_col, b, ldb, \\
                                 c + i * ldc, ldc);                                          \\
        for (; i + 6 <= m; i += 6)                                                           \\
            nnfast_block_##S(6, VECS, overwrite, depth, a + i * a_row, a_row, a_col, b, ldb, \\
                             c + i * ldc, ldc);                                              \\
        if (i + 4 <= m) {                                                                    \\
            nnfast_block_##S(4, VECS, overwrite, depth, a + i * a_row, a_row, a_col, b, ldb, \\
                             c + i * ldc, ldc);                                              \\
        }                                                                                    \\
    }                                                                                        \\
                                                                                              \\
    /* c[:m, :n] += op(a)[:m, :depth] @ b[:depth, :n]. Blocks of 6 or 4 rows by 2 vectors; \\
       the last rows one at a time, 8 vectors wide where they can, so that a row has  \\
       enough independent sums in flight. */                                               \\
    static void nnfast_slice_##S(ptrdiff_t m, ptrdiff_t n, int overwrite, ptrdiff_t depth, const T* a, \\
            ptrdiff_t a_row, ptrdiff_t a_col, const T* b, ptrdiff_t ldb, T* c, ptrdiff_t ldc) { \\
        const ptrdiff_t L = nnfast_lanes_##S;                                                \\
        ptrdiff_t i, j, rows = m - m % 6 + (m % 6 >= 4 ? 4 : 0);                            \\
        T packed[NNFAST_DEPTH_SLICE * 2 * nnfast_lanes_##S] __attribute__((aligned(64)));  \\
        ptrdiff_t p, q;                                                                      \\
        for (j = 0; j + 2 * L <= n; j += 2 * L) {                                            \\
            if (rows >= 8 && ldb != 2 * L) {                                                 \\
                /* Rows of b far apart in memory make half the loads straddle cache \\
                   lines; a copy side by side costs one pass, shared by m / 6 blocks. */ \\
                for (p = 0; p < depth; p++)                                                  \\
                    for (q = 0; q < 2 * L; q++)                                              \\
                        packed[p * 2 * L + q] = b[p * ldb + j + q];                          \\
                nnfast_rows_##S(2, m, overwrite, depth, a, a_row, a_col, packed, 2 * L, c + j, ldc); \\
            } else                                                                           \\
                nnfast_rows_##S(2, m, overwrite, depth, a, a_row, a_col, b + j, ldb, c + j, ldc); \\
        }                                                                                    \\
        if (j + L <= n) {                                                                    \\
            nnfast_rows_##S(1, m, overwrite, depth, a, a_row, a_col, b + j, ldb, c + j, ldc); \\
            j += L;                                                                          \\
        }                                                                                    \\
        if (j < n && rows > 0)                                                               \\
            nnfast_tail_##S(rows, n - j, overwrite, depth, a, a_row, a_col, b + j, ldb, c + j, ldc);    \\
        for (i = rows; i < m; i++) {                                                         \\
            const T* a_i = a + i * a_row;                                                    \\
            T* c_i = c + i * ldc;                                                            \\
            for (j = 0; j + 8 * L <= n; j += 8 * L)                                          \\
                nnfast_block_##S(1, 8, overwrite, depth, a_i, a_row, a_col, b + j, ldb, c_i + j, ldc);  \\
            for (; j + 2 * L <= n; j += 2 * L)                                               \\
                nnfast_block_##S(1, 2, overwrite, depth, a_i, a_row, a_col, b + j, ldb, c_i + j, ldc);  \\
            for (; j + L <= n; j += L)                                                       \\
                nnfast_block_##S(1, 1, overwrite, depth, a_i, a_row, a_col, b + j, ldb, c_i + j, ldc);  \\
            if (j < n)                                                                       \\
                nnfast_tail_##S(1, n - j, overwrite, depth, a_i, a_row, a_col, b + j, ldb, c_i + j, ldc); \\
        }                                                                                    \\
    }                                                                                        \\
                                                                                              \\
    /* c += op(a) @ b, or c = with overwrite; a stored (m, k), or (k, m) with trans_a;     \\
       b stored (k, n). */                                                                   \\
    static void nnfast_blocked_##S(int trans_a, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,       \\
                                   const T* a, const T* b, T* c, int overwrite) {            \\
        ptrdiff_t a_row = trans_a ? 1 : k, a_col = trans_a ? m : 1, p, depth;               \\
        for (p = 0; p < k; p += depth) {                                                     \\
            depth = k - p < NNFAST_DEPTH_SLICE ? k - p : NNFAST_DEPTH_SLICE;                 \\
            nnfast_slice_##S(m, n, overwrite && p == 0, depth, a + p * a_col, a_row, a_col,   \\
                             b + p * n, n, c, n);                                            \\
        }                                                                                    \\
    }                                                                                        \\
                                                                                              \\
    /* c += a @ b.T (or = with overwrite), a stored (m, k), b stored (n, k): each slice of b is copied, \\
       transposed, into a buffer on the stack (16 KB), then multiplied as above. */         \\
    static void nnfast_blocked_bt_##S(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const T* a,     \\
                                      const T* b, T* c, int overwrite) {                     \\
        T panel[NNFAST_DEPTH_SLICE * 2 * nnfast_lanes_##S];                                  \\
        const ptrdiff_t width = 2 * nnfast_lanes_##S;                                        \\
        ptrdiff_t p, depth, j, cols, q, jj;                                                  \\
        for (p = 0; p < k; p += depth) {                                                     \\
            depth = k - p < NNFAST_DEPTH_SLICE ? k - p : NNFAST_DEPTH_SLICE;                 \\
            for (j = 0; j < n; j += cols) {                                                  \\
                cols = n - j < width ? n - j : width;                                        \\
                for (jj = 0; jj < cols; jj++)                                                \\
                    for (q = 0; q < depth; q++)                                              \\
                        panel[q * cols + jj] = b[(j + jj) * k + p + q];                      \\
                nnfast_slice_##S(m, cols, overwrite && p == 0, depth, a + p, k, 1, panel,    \\
                                 cols, c + j, n);                                            \\
            }                                                                                \\
        }                                                                                    \\
    }
    #else
    /* Without GCC's vector types: the same sums, in the same order, plainly. */
    #  define NNFAST_BLOCKED(T, S)                                                         \\
    static void nnfast_blocked_##S(int trans_a, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,       \\
                                   const T* a, const T* b, T* c, int overwrite) {            \\
        ptrdiff_t i, p, j;                                                                   \\
        if (overwrite)                                                                       \\
            for (i = 0; i < m * n; i++)                                                      \\
                c[i] = 0;                                                                    \\
        for (i = 0; i < m; i++)                                                              \\
            for (p = 0; p < k; p++) {                                                        \\
                T scale = trans_a ? a[p * m + i] : a[i * k + p];                             \\
                for (j = 0; j < n; j++)                                                      \\
                    c[i * n + j] += scale * b[p * n + j];                                    \\
            }                                                                                \\
    }                                                                                        \\
    static void nnfast_blocked_bt_##S(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const T* a,     \\
                                      const T* b, T* c, int overwrite) {                     \\
        ptrdiff_t i, p, j;                                                                   \\
        if (overwrite)                                                                       \\
            for (i = 0; i < m * n; i++)                                                      \\
                c[i] = 0;                                                                    \\
        for (i = 0; i < m; i++)                                                              \\
            for (j = 0; j < n; j++)                                                          \\
                for (p = 0; p < k; p++)                                                      \\
                    c[i * n + j] += a[i * k + p] * b[j * k + p];                             \\
    }
    #endif
    NNFAST_BLOCKED(double, d)
    NNFAST_BLOCKED(float, s)
    """
    void blocked_d "nnfast_blocked_d"(bint trans_a, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                                      const double* a, const double* b, double* c, bint overwrite) noexcept nogil
    void blocked_s "nnfast_blocked_s"(bint trans_a, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                                      const float* a, const float* b, float* c, bint overwrite) noexcept nogil
    void blocked_bt_d "nnfast_blocked_bt_d"(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                                            const double* a, const double* b, double* c, bint overwrite) noexcept nogil
    void blocked_bt_s "nnfast_blocked_bt_s"(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                                            const float* a, const float* b, float* c, bint overwrite) noexcept nogil

cdef enum:
    # Rows of c in a block of the blocked kernels, and the slice of the
    # inner dimension they walk at a time (NNFAST_DEPTH_SLICE in the C).
    BLOCK_ROWS = 4
    DEPTH_SLICE = 256
    # Products of at most this many multiply-adds (the seed's are 36 and 12)
    # take the unrolled loops: a block would be mostly set-up.
    TINY_WORK = 64
    # The vector width the crossover assumes in every build: the AVX2 build's.
    CROSSOVER_VECTOR_BYTES = 32


cdef inline void unrolled_matmul(bint trans_a, bint trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                                 const floating* a, const floating* b, floating beta,
                                 floating* c) noexcept nogil:
    """loops_matmul for products with at most 4 columns in c (or 4 steps in a @ b.T) and
    few rows, or with both operands transposed: one dot product per entry."""
    cdef Py_ssize_t i
    if beta == 0:
        # Like BLAS, beta == 0 means c is output only: stale NaNs must not leak in.
        for i in range(m * n):
            c[i] = 0
    elif beta != 1:
        for i in range(m * n):
            c[i] *= beta
    if not trans_b:
        # Rows of c this short leave a vectorized inner loop all set-up and no
        # work. A constant flag here and a constant width in narrow_widths let
        # the compiler fold each call into its own fully unrolled copy.
        if trans_a:
            narrow_widths(True, m, n, k, a, b, c)
        else:
            narrow_widths(False, m, n, k, a, b, c)
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


cdef inline void loops_matmul(bint trans_a, bint trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                       const floating* a, const floating* b, floating beta, floating* c) noexcept nogil:
    """c = op(a) @ op(b) + beta * c, with a stored (m, k) or (k, m) and b (k, n) or (n, k),
    by nnfast's own kernels."""
    cdef Py_ssize_t i
    cdef bint unrolled = m < BLOCK_ROWS or m * n * k <= TINY_WORK
    if trans_b and k <= 4 and unrolled or trans_a and trans_b or not trans_b and n <= 4 and unrolled:
        unrolled_matmul(trans_a, trans_b, m, n, k, a, b, beta, c)
        return
    if beta != 0 and beta != 1:
        for i in range(m * n):
            c[i] *= beta
    if floating is double:
        if trans_b:
            blocked_bt_d(m, n, k, a, b, c, beta == 0)
        else:
            blocked_d(trans_a, m, n, k, a, b, c, beta == 0)
    else:
        if trans_b:
            blocked_bt_s(m, n, k, a, b, c, beta == 0)
        else:
            blocked_s(trans_a, m, n, k, a, b, c, beta == 0)


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


cdef inline bint uses_blas(bint trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                           Py_ssize_t itemsize) noexcept nogil:
    """Whether ``matmul`` gives a product of op(a) (m, k) @ op(b) (k, n) to BLAS (see
    loops_cache_bytes)."""
    cdef Py_ssize_t depth = k if k < DEPTH_SLICE else DEPTH_SLICE
    if m < BLOCK_ROWS:
        # The blocked a @ b.T first copies b, transposed, which for so few rows costs more
        # than the product (1 x 1000 x 1000: 2.3x BLAS's time); BLAS reads b where it is.
        return trans_b and k > 4 and n * k * itemsize > loops_cache_bytes
    # A pass over one block of columns: the slice of op(a), the slice of b
    # and the column of c, the latter two two vectors wide.
    return m * depth * itemsize + (depth + m) * 2 * CROSSOVER_VECTOR_BYTES > loops_cache_bytes


cdef inline void matmul(bint trans_a, bint trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                 const floating* a, const floating* b, floating beta, floating* c) noexcept nogil:
    """c = op(a) @ op(b) + beta * c for C-contiguous operands, by loops or BLAS."""
    if uses_blas(trans_b, m, n, k, sizeof(floating)):
        blas_matmul(trans_a, trans_b, m, n, k, a, b, beta, c)
    else:
        loops_matmul(trans_a, trans_b, m, n, k, a, b, beta, c)


