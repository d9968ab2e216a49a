# Products of the matrices of tiny nets: every layer at most TINY_WIDTH wide,
# at most TINY_ROWS rows. At the seed's size (products of 3x3, 4x3 and 4x1)
# a product through ``matmul`` spends most of its instructions choosing a
# kernel (BLAS or loops, unrolled or blocked, which width), zeroing c and
# making second passes for the bias and the activation's derivative. Here
# a pass over the net chooses once (``is_tiny``), and each product is a copy
# whose width and depth are constants, so that the compiler unrolls it
# completely; only the number of rows stays a loop.
#
# Every entry is summed over the inner index in order, starting from the
# bias or 0, as ``matmul``'s kernels sum it: the same bits. (Weight
# gradients added to what the buffer holds still take ``matmul``: here the
# result overlaps no operand.)
from cython cimport floating

cdef enum:
    # The widest layer (input and output included) of a tiny net: the width
    # and depth of every product, except the weight gradients' depth (rows).
    # The same as nnfast._kernels.TINY_WIDTH, below which nets keep the baseline build.
    TINY_WIDTH = 4
    # The most rows a tiny pass takes; more rows give the blocked kernels
    # enough work to pay for their set-up.
    TINY_ROWS = 16


cdef inline bint is_tiny(Py_ssize_t max_width, Py_ssize_t rows) noexcept nogil:
    """Whether a pass over ``rows`` rows of a net whose widest layer is ``max_width`` takes the tiny products."""
    return max_width <= TINY_WIDTH and rows <= TINY_ROWS


# C, because only GCC's always_inline makes the compiler keep every constant
# (width, depth) copy inlined and fully unrolled; Cython's inline is a hint
# that GCC declines for this many copies.
cdef extern from *:
    """
    #include <stddef.h>
    #define NNFAST_TINY_WIDTH 4
    /* The three products of a pass, by LAYOUT: 0, c = start + a @ b; 1, c = a.T @ b (a
       stored (k, m)); 2, c = (a @ b.T) * factor (b stored (n, k)). The sum of each entry
       runs over p in order from start[j] (0 for layouts 1 and 2). N and K are constants
       in every copy, and so are the strides, so that it unrolls completely; c overlaps no
       operand (restrict), so that the operands can stay in registers from row to row. */
    #define NNFAST_TINY(T, S)                                                                   \\
    static inline __attribute__((always_inline)) void nnfast_fixed_product_##S(                \\
            const int LAYOUT, const ptrdiff_t N, const ptrdiff_t K, ptrdiff_t m,                \\
            const T* restrict a, const T* restrict b, const T* restrict start,                  \\
            const T* restrict factor, T* restrict c) {                                          \\
        const ptrdiff_t a_row = LAYOUT == 1 ? 1 : K, a_col = LAYOUT == 1 ? m : 1;               \\
        const ptrdiff_t b_row = LAYOUT == 2 ? 1 : N, b_col = LAYOUT == 2 ? K : 1;               \\
        ptrdiff_t i, j, p;                                                                      \\
        for (i = 0; i < m; i++)                                                                 \\
            for (j = 0; j < N; j++) {                                                           \\
                T total = LAYOUT == 0 ? start[j] : 0;                                           \\
                for (p = 0; p < K; p++)                                                         \\
                    total += a[i * a_row + p * a_col] * b[p * b_row + j * b_col];               \\
                c[i * N + j] = LAYOUT == 2 ? total * factor[i * N + j] : total;                 \\
            }                                                                                   \\
    }                                                                                           \\
    /* The copies for one width N: depth 1 to 4 a constant, else (a weight gradient's       \\
       depth, the rows) a loop. */                                                              \\
    static inline __attribute__((always_inline)) void nnfast_width_product_##S(                \\
            const int LAYOUT, const ptrdiff_t N, ptrdiff_t k, ptrdiff_t m, const T* a,          \\
            const T* b, const T* start, const T* factor, T* c) {                                \\
        switch (k) {                                                                            \\
        case 1: nnfast_fixed_product_##S(LAYOUT, N, 1, m, a, b, start, factor, c); break;       \\
        case 2: nnfast_fixed_product_##S(LAYOUT, N, 2, m, a, b, start, factor, c); break;       \\
        case 3: nnfast_fixed_product_##S(LAYOUT, N, 3, m, a, b, start, factor, c); break;       \\
        case 4: nnfast_fixed_product_##S(LAYOUT, N, 4, m, a, b, start, factor, c); break;       \\
        default: nnfast_fixed_product_##S(LAYOUT, N, k, m, a, b, start, factor, c);             \\
        }                                                                                       \\
    }                                                                                           \\
    /* One call per product, n (1 to 4) made a constant. */                                   \\
    static inline __attribute__((always_inline)) void nnfast_tiny_product_##S(                 \\
            const int LAYOUT, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const T* a, const T* b,    \\
            const T* start, const T* factor, T* c) {                                            \\
        switch (n) {                                                                            \\
        case 1: nnfast_width_product_##S(LAYOUT, 1, k, m, a, b, start, factor, c); break;       \\
        case 2: nnfast_width_product_##S(LAYOUT, 2, k, m, a, b, start, factor, c); break;       \\
        case 3: nnfast_width_product_##S(LAYOUT, 3, k, m, a, b, start, factor, c); break;       \\
        default: nnfast_width_product_##S(LAYOUT, 4, k, m, a, b, start, factor, c);             \\
        }                                                                                       \\
    }                                                                                           \\
    static void nnfast_tiny_affine_##S(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const T* x,       \\
                                       const T* weights, const T* bias, T* z) {                 \\
        static const T zeros[NNFAST_TINY_WIDTH] = {0};                                          \\
        nnfast_tiny_product_##S(0, m, n, k, x, weights, bias ? bias : zeros, NULL, z);          \\
    }                                                                                           \\
    static void nnfast_tiny_weight_gradient_##S(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,         \\
                                                const T* inputs, const T* delta, T* grad) {     \\
        nnfast_tiny_product_##S(1, m, n, k, inputs, delta, NULL, NULL, grad);                   \\
    }                                                                                           \\
    static void nnfast_tiny_backprop_##S(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const T* delta, \\
                                         const T* weights, const T* deriv, T* out) {            \\
        nnfast_tiny_product_##S(2, m, n, k, delta, weights, NULL, deriv, out);                  \\
    }
    NNFAST_TINY(double, d)
    NNFAST_TINY(float, s)
    """
    void tiny_affine_d "nnfast_tiny_affine_d"(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, const double* x,
                                              const double* weights, const double* bias, double* z) noexcept nogil
    void tiny_affine_s "nnfast_tiny_affine_s"(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, const float* x,
                                              const float* weights, const float* bias, float* z) noexcept nogil
    void tiny_weight_gradient_d "nnfast_tiny_weight_gradient_d"(
        Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, const double* inputs, const double* delta, double* grad) noexcept nogil
    void tiny_weight_gradient_s "nnfast_tiny_weight_gradient_s"(
        Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, const float* inputs, const float* delta, float* grad) noexcept nogil
    void tiny_backprop_d "nnfast_tiny_backprop_d"(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, const double* delta,
                                                  const double* weights, const double* deriv, double* out) noexcept nogil
    void tiny_backprop_s "nnfast_tiny_backprop_s"(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, const float* delta,
                                                  const float* weights, const float* deriv, float* out) noexcept nogil


# In each: m rows of the result, n <= TINY_WIDTH columns, depth k; the result
# overlaps no operand.

cdef inline void tiny_affine(Py_ssize_t rows, Py_ssize_t fan_out, Py_ssize_t fan_in, const floating* x,
                             const floating* weights, const floating* bias, floating* z) noexcept nogil:
    """z = bias + x @ weights (0 + without a bias), x (rows, fan_in), weights (fan_in, fan_out)."""
    if floating is double:
        tiny_affine_d(rows, fan_out, fan_in, x, weights, bias, z)
    else:
        tiny_affine_s(rows, fan_out, fan_in, x, weights, bias, z)


cdef inline void tiny_weight_gradient(Py_ssize_t fan_in, Py_ssize_t fan_out, Py_ssize_t rows,
                                      const floating* inputs, const floating* delta,
                                      floating* grad) noexcept nogil:
    """grad = inputs.T @ delta, inputs (rows, fan_in), delta (rows, fan_out)."""
    if floating is double:
        tiny_weight_gradient_d(fan_in, fan_out, rows, inputs, delta, grad)
    else:
        tiny_weight_gradient_s(fan_in, fan_out, rows, inputs, delta, grad)


cdef inline void tiny_backprop(Py_ssize_t rows, Py_ssize_t fan_in, Py_ssize_t fan_out,
                               const floating* delta, const floating* weights, const floating* deriv,
                               floating* out) noexcept nogil:
    """out = (delta @ weights.T) * deriv, delta (rows, fan_out), weights (fan_in, fan_out)."""
    if floating is double:
        tiny_backprop_d(rows, fan_in, fan_out, delta, weights, deriv, out)
    else:
        tiny_backprop_s(rows, fan_in, fan_out, delta, weights, deriv, out)
