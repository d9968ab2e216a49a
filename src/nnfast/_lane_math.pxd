# The arithmetic of nnfast._lanes: one training step of LANES tiny nets at
# once, every value a vector of LANES lanes (one per net).
#
# C with GCC's vector extensions, because a loop over the lanes in Cython
# leaves GCC unsure of aliasing and control flow, and it then vectorizes
# few of them. A vector type of LANES elements is lowered to whatever the
# build has (four SSE2 registers of doubles, two AVX2 ones, one AVX-512
# one), and its operations are elementwise IEEE operations: each lane
# rounds exactly as the scalar code of nnfast._dense and nnfast._optim does
# for its net (no FMA, no reassociation), in the same order, which the
# comments name. Comparisons give lane masks (all bits set where true), and
# select() takes a or b lane by lane.
#
# Every vector argument points at LANES-aligned scratch of nnfast._lanes,
# LANES values per element; the per-lane scalars (rates, losses, flags) are
# plain arrays of LANES.
from cython cimport floating

cdef enum:
    # Members per block: 8 values of either dtype, a 64-byte line in float64.
    LANES = 8

cdef extern from *:
    """
    #include <math.h>
    #include <stddef.h>
    #include <string.h>
    #define NNFAST_LANES 8
    /* The codes of nnfast/_dense.pxd, which nnfast._lanes checks at import. */
    enum { NNFAST_LANE_RELU = 0, NNFAST_LANE_LEAKY_RELU = 1, NNFAST_LANE_TANH = 2,
           NNFAST_LANE_SIGMOID = 3, NNFAST_LANE_SSE = 0, NNFAST_LANE_MSE = 1,
           NNFAST_LANE_SQUARED_ERROR = 5 };

    /* The build's own vector width: wider generic vectors are lowered badly (spilled). A lane
       vector of LANES values is CHUNKS such vectors; every loop over c below runs over them. */
    #if defined(__AVX2__)
    #define NNFAST_VECTOR_BYTES 32
    #else
    #define NNFAST_VECTOR_BYTES 16
    #endif
    #define NNFAST_LANE_MATH(T, S, I)                                                               \
    typedef T V##S __attribute__((vector_size(NNFAST_VECTOR_BYTES)));                              \
    typedef I M##S __attribute__((vector_size(NNFAST_VECTOR_BYTES)));                              \
    enum { CHUNKS_##S = NNFAST_LANES * sizeof(T) / NNFAST_VECTOR_BYTES };                           \
    static inline V##S nnfast_select_##S(M##S mask, V##S a, V##S b) {                              \
        return (V##S)(((M##S)a & mask) | ((M##S)b & ~mask));                                        \
    }                                                                                               \
    static inline V##S nnfast_load_##S(const T* values, ptrdiff_t c) {                             \
        V##S v; memcpy(&v, values + c * (NNFAST_VECTOR_BYTES / sizeof(T)), sizeof v); return v;     \
    }                                                                                               \
    static inline M##S nnfast_flags_##S(const unsigned char* flags, ptrdiff_t c) {                 \
        M##S m; ptrdiff_t l, n = NNFAST_VECTOR_BYTES / sizeof(T);                                   \
        for (l = 0; l < n; l++) m[l] = flags[c * n + l] ? -1 : 0;                                   \
        return m;                                                                                   \
    }                                                                                               \
    /* The products' one sum, lane by lane: total = start + a[0] * b[0] + a[1] * b[1] + ..., over   \
       n terms in order, a and b stepping by the given strides (in vectors); the result             \
       C vectors at c_out. */                                                                       \
    static inline __attribute__((always_inline)) void nnfast_lane_dot_##S(                          \
            const V##S* a, ptrdiff_t a_step, const V##S* b, ptrdiff_t b_step, ptrdiff_t n,          \
            const V##S* start, V##S* out) {                                                         \
        enum { C = CHUNKS_##S };                                                                    \
        V##S total[C];                                                                              \
        ptrdiff_t k, c;                                                                             \
        for (c = 0; c < C; c++)                                                                     \
            total[c] = start ? start[c] : (V##S){0};                                                \
        for (k = 0; k < n; k++)                                                                     \
            for (c = 0; c < C; c++)                                                                 \
                total[c] += a[k * a_step + c] * b[k * b_step + c];                                  \
        for (c = 0; c < C; c++)                                                                     \
            out[c] = total[c];                                                                      \
    }                                                                                               \
    /* nnfast._dense.sigmoid, as Cython writes it: its constants are doubles, so in float32  \
       the divisions round in double first. */                                                      \
    static inline T nnfast_sigmoid_##S(T z) {                                                      \
        T decay = exp(-fabs(z));                                                                    \
        return z >= 0 ? 1.0 / (1.0 + decay) : decay / (1.0 + decay);                                \
    }
    #define NNFAST_LANE_LAYER(T, S, NI, NO)                                                         \
    /* One layer of nnfast._dense.forward_pass and backward_pass with its widths NI and NO known    \
       at compile time, so that the products unroll (as nnfast._tiny's do) and only the loop over   \
       rows is left: the same sums in the same order as with any widths. */                         \
    static void nnfast_lane_layer_forward_##S##_##NI##_##NO(ptrdiff_t rows, const V##S* inputs,     \
                                                            const V##S* w, const V##S* bias, V##S* z) {\
        enum { C = CHUNKS_##S };                                                                    \
        ptrdiff_t i, j;                                                                             \
        for (i = 0; i < rows; i++)                                                                  \
            for (j = 0; j < NO; j++)                                                                \
                nnfast_lane_dot_##S(inputs + i * NI * C, C, w + j * C, NO * C, NI,                  \
                                    bias ? bias + j * C : NULL, z + (i * NO + j) * C);              \
    }                                                                                               \
    /* grad_w[p, j] = 0 + the sum over rows in order of inputs[r, p] * delta[r, j], and grad_b[j]   \
       = 0 + the sum of delta[r, j] (where grad_b is given): a row of grad_w at a time, its NO      \
       sums in registers. Then, where delta_in is given, the delta over the layer's inputs,         \
       (0 + the sum over j of delta[r, j] * w[p, j]) * deriv[r, p], which may overwrite the         \
       inputs: they are used by then. */                                                            \
    static void nnfast_lane_layer_backward_##S##_##NI##_##NO(                                       \
            ptrdiff_t rows, const V##S* inputs, const V##S* delta, const V##S* w, const V##S* deriv,\
            V##S* grad_w, V##S* grad_b, V##S* delta_in) {                                           \
        enum { C = CHUNKS_##S };                                                                    \
        V##S total[NO * C];                                                                         \
        ptrdiff_t r, p, j, c;                                                                       \
        for (p = 0; p < NI; p++) {                                                                  \
            for (c = 0; c < NO * C; c++)                                                            \
                total[c] = (V##S){0};                                                               \
            for (r = 0; r < rows; r++)                                                              \
                for (j = 0; j < NO; j++)                                                            \
                    for (c = 0; c < C; c++)                                                         \
                        total[j * C + c] += inputs[(r * NI + p) * C + c] * delta[(r * NO + j) * C + c];\
            for (c = 0; c < NO * C; c++)                                                            \
                grad_w[p * NO * C + c] = total[c];                                                  \
        }                                                                                           \
        if (grad_b) {                                                                               \
            for (c = 0; c < NO * C; c++)                                                            \
                total[c] = (V##S){0};                                                               \
            for (r = 0; r < rows; r++)                                                              \
                for (c = 0; c < NO * C; c++)                                                        \
                    total[c] += delta[r * NO * C + c];                                              \
            for (c = 0; c < NO * C; c++)                                                            \
                grad_b[c] = total[c];                                                               \
        }                                                                                           \
        if (delta_in)                                                                               \
            for (r = 0; r < rows; r++)                                                              \
                for (p = 0; p < NI; p++) {                                                          \
                    nnfast_lane_dot_##S(delta + r * NO * C, C, w + p * NO * C, C, NO, NULL, total); \
                    for (c = 0; c < C; c++)                                                         \
                        delta_in[(r * NI + p) * C + c] = total[c] * deriv[(r * NI + p) * C + c];    \
                }                                                                                   \
    }
    /* Every width from 1 to TINY_WIDTH = 4 (nnfast._lanes checks the nets against it). */
    #define NNFAST_LANE_LAYERS_OF(T, S, NI)                                                         \
        NNFAST_LANE_LAYER(T, S, NI, 1) NNFAST_LANE_LAYER(T, S, NI, 2)                               \
        NNFAST_LANE_LAYER(T, S, NI, 3) NNFAST_LANE_LAYER(T, S, NI, 4)
    #define NNFAST_LANE_TABLE_ROW(KIND, S, NI)                                                      \
        {nnfast_lane_layer_##KIND##_##S##_##NI##_1, nnfast_lane_layer_##KIND##_##S##_##NI##_2,      \
         nnfast_lane_layer_##KIND##_##S##_##NI##_3, nnfast_lane_layer_##KIND##_##S##_##NI##_4}
    #define NNFAST_LANE_TABLES(T, S)                                                                \
    typedef void (*nnfast_lane_forward_layer_##S)(ptrdiff_t, const V##S*, const V##S*, const V##S*, V##S*);\
    typedef void (*nnfast_lane_backward_layer_##S)(ptrdiff_t, const V##S*, const V##S*, const V##S*,\
                                                   const V##S*, V##S*, V##S*, V##S*);               \
    NNFAST_LANE_LAYERS_OF(T, S, 1) NNFAST_LANE_LAYERS_OF(T, S, 2)                                   \
    NNFAST_LANE_LAYERS_OF(T, S, 3) NNFAST_LANE_LAYERS_OF(T, S, 4)                                   \
    /* Indexed by [NI - 1][NO - 1]. */                                                              \
    static const nnfast_lane_forward_layer_##S nnfast_lane_forward_layers_##S[4][4] = {             \
        NNFAST_LANE_TABLE_ROW(forward, S, 1), NNFAST_LANE_TABLE_ROW(forward, S, 2),                 \
        NNFAST_LANE_TABLE_ROW(forward, S, 3), NNFAST_LANE_TABLE_ROW(forward, S, 4)};                \
    static const nnfast_lane_backward_layer_##S nnfast_lane_backward_layers_##S[4][4] = {           \
        NNFAST_LANE_TABLE_ROW(backward, S, 1), NNFAST_LANE_TABLE_ROW(backward, S, 2),               \
        NNFAST_LANE_TABLE_ROW(backward, S, 3), NNFAST_LANE_TABLE_ROW(backward, S, 4)};
    #define NNFAST_LANE_STEP(T, S)                                                                  \
    /* nnfast._dense.forward_pass with the tiny products: each layer's (its function of             \
       NNFAST_LANE_LAYER), then the activation and its derivative. */                               \
    static __attribute__((noinline)) void nnfast_lanes_forward_##S(                                                           \
            ptrdiff_t n_layers, const ptrdiff_t* sizes, const ptrdiff_t* weight_offsets,            \
            const ptrdiff_t* bias_offsets, const ptrdiff_t* activations, T slope, ptrdiff_t rows,   \
            const T* params_, const T* x_, T* act_, T* deriv_, const ptrdiff_t* hidden_offsets,     \
            T* out_) {                                                                              \
        enum { C = CHUNKS_##S };                                                                    \
        const V##S* params = (const V##S*)params_;                                                  \
        const V##S* inputs = (const V##S*)x_;                                                       \
        const V##S zero = {0}, one = zero + 1, slopes = zero + slope;                               \
        ptrdiff_t layer, k;                                                                         \
        for (layer = 0; layer < n_layers; layer++) {                                                \
            const ptrdiff_t fan_in = sizes[layer], fan_out = sizes[layer + 1];                      \
            const V##S* w = params + weight_offsets[layer] * C;                                     \
            const V##S* bias = bias_offsets[layer] >= 0 ? params + bias_offsets[layer] * C : NULL; \
            const int last = layer == n_layers - 1;                                                 \
            V##S* z = last ? (V##S*)out_ : (V##S*)act_ + hidden_offsets[layer] * C;                 \
            V##S* d = last ? NULL : (V##S*)deriv_ + hidden_offsets[layer] * C;                      \
            nnfast_lane_forward_layers_##S[fan_in - 1][fan_out - 1](rows, inputs, w, bias, z);      \
            if (last)                                                                               \
                break;                                                                              \
            /* nnfast._dense.activation_forward */                                                  \
            const ptrdiff_t n = rows * fan_out * C;                                                 \
            if (activations[layer] == NNFAST_LANE_RELU) {                                           \
                for (k = 0; k < n; k++) {                                                           \
                    const M##S negative = z[k] < zero;                                              \
                    d[k] = nnfast_select_##S(negative, zero, one);                                  \
                    z[k] = nnfast_select_##S(negative, zero, z[k]);                                 \
                }                                                                                   \
            } else if (activations[layer] == NNFAST_LANE_LEAKY_RELU) {                              \
                for (k = 0; k < n; k++) {                                                           \
                    const M##S negative = z[k] < zero;                                              \
                    d[k] = nnfast_select_##S(negative, slopes, one);                                \
                    z[k] = nnfast_select_##S(negative, slopes * z[k], z[k]);                        \
                }                                                                                   \
            } else if (activations[layer] == NNFAST_LANE_TANH) {                                    \
                T* values = (T*)z;                                                                  \
                T* derivative = (T*)d;                                                              \
                for (k = 0; k < n * (ptrdiff_t)(NNFAST_VECTOR_BYTES / sizeof(T)); k++) {            \
                    T a = tanh(values[k]);                                                          \
                    values[k] = a;                                                                  \
                    derivative[k] = 1.0 - a * a;                                                    \
                }                                                                                   \
            } else if (activations[layer] == NNFAST_LANE_SIGMOID) {                                 \
                T* values = (T*)z;                                                                  \
                T* derivative = (T*)d;                                                              \
                for (k = 0; k < n * (ptrdiff_t)(NNFAST_VECTOR_BYTES / sizeof(T)); k++) {            \
                    T a = nnfast_sigmoid_##S(values[k]);                                            \
                    values[k] = a;                                                                  \
                    derivative[k] = a * (1.0 - a);                                                  \
                }                                                                                   \
            } else {                                                                                \
                for (k = 0; k < n; k++)                                                             \
                    d[k] = one;                                                                     \
            }                                                                                       \
            inputs = z;                                                                             \
        }                                                                                           \
    }                                                                                               \
    /* nnfast._dense.total_weight, loss_sum (the gradient over out) and mean_loss for the      \
       squared-error losses, lane by lane; sums in double, as there. */                             \
    static __attribute__((noinline)) void nnfast_lanes_loss_##S(int loss, ptrdiff_t n_out, ptrdiff_t rows, T* out,           \
                                      const T* y, const T* w, double* loss_out,                     \
                                      double* normalizer_out) {                                     \
        double total[NNFAST_LANES], normalizer[NNFAST_LANES];                                       \
        T scale[NNFAST_LANES], diff, weight, rounded, half = 0.5;                                   \
        ptrdiff_t i, k, l;                                                                          \
        for (l = 0; l < NNFAST_LANES; l++) {                                                        \
            total[l] = 0;                                                                           \
            normalizer[l] = w ? 0 : rows;                                                           \
        }                                                                                           \
        if (w) {                                                                                    \
            for (i = 0; i < rows; i++)                                                              \
                for (l = 0; l < NNFAST_LANES; l++)                                                  \
                    normalizer[l] += w[i * NNFAST_LANES + l];                                       \
            for (l = 0; l < NNFAST_LANES; l++)                                                      \
                if (normalizer[l] == 0)                                                             \
                    normalizer[l] = 1;                                                              \
        }                                                                                           \
        for (l = 0; l < NNFAST_LANES; l++)                                                          \
            scale[l] = loss == NNFAST_LANE_MSE ? 2.0 / (normalizer[l] * n_out)                      \
                       : loss == NNFAST_LANE_SQUARED_ERROR ? 1.0 / normalizer[l] : 2.0;             \
        /* A loop for each case, whose lanes GCC vectorizes. */                                    \
        if (w) {                                                                                    \
            for (i = 0; i < rows; i++)                                                              \
                for (k = i * n_out; k < (i + 1) * n_out; k++)                                       \
                    for (l = 0; l < NNFAST_LANES; l++) {                                            \
                        diff = out[k * NNFAST_LANES + l] - y[k * NNFAST_LANES + l];                 \
                        weight = w[i * NNFAST_LANES + l];                                           \
                        total[l] += weight * (diff * diff);                                         \
                        out[k * NNFAST_LANES + l] = scale[l] * (weight * diff);                     \
                    }                                                                               \
        } else {                                                                                    \
            for (k = 0; k < rows * n_out; k++)                                                      \
                for (l = 0; l < NNFAST_LANES; l++) {                                                \
                    diff = out[k * NNFAST_LANES + l] - y[k * NNFAST_LANES + l];                     \
                    total[l] += diff * diff;                                                        \
                    out[k * NNFAST_LANES + l] = scale[l] * diff;                                    \
                }                                                                                   \
        }                                                                                           \
        /* mean_loss: the sum rounded to the dtype first. */                                        \
        for (l = 0; l < NNFAST_LANES; l++) {                                                        \
            rounded = total[l];                                                                     \
            loss_out[l] = loss == NNFAST_LANE_SSE ? rounded                                         \
                          : loss == NNFAST_LANE_SQUARED_ERROR ? rounded * half / (T)normalizer[l]   \
                          : rounded / (T)(normalizer[l] * n_out);                                   \
            normalizer_out[l] = normalizer[l];                                                      \
        }                                                                                           \
    }                                                                                               \
    /* nnfast._dense.backward_pass with the tiny products, a layer at a time (NNFAST_LANE_LAYER). */\
    static __attribute__((noinline)) void nnfast_lanes_backward_##S(                                                          \
            ptrdiff_t n_layers, const ptrdiff_t* sizes, const ptrdiff_t* weight_offsets,            \
            const ptrdiff_t* bias_offsets, ptrdiff_t rows, const T* params_, const T* x_,           \
            T* act_, const T* deriv_, const ptrdiff_t* hidden_offsets, const T* out_, T* grad_) {   \
        enum { C = CHUNKS_##S };                                                                    \
        const V##S* params = (const V##S*)params_;                                                  \
        const V##S* delta = (const V##S*)out_;                                                      \
        V##S* grad = (V##S*)grad_;                                                                  \
        ptrdiff_t layer;                                                                            \
        for (layer = n_layers - 1; layer >= 0; layer--) {                                           \
            V##S* inputs = layer == 0 ? (V##S*)x_ : (V##S*)act_ + hidden_offsets[layer - 1] * C;    \
            /* Below the first layer, the delta over its inputs replaces the activations. */        \
            nnfast_lane_backward_layers_##S[sizes[layer] - 1][sizes[layer + 1] - 1](                \
                rows, inputs, delta, params + weight_offsets[layer] * C,                            \
                layer > 0 ? (const V##S*)deriv_ + hidden_offsets[layer - 1] * C : NULL,             \
                grad + weight_offsets[layer] * C, bias_offsets[layer] >= 0 ? grad + bias_offsets[layer] * C : NULL,\
                layer > 0 ? inputs : NULL);                                                         \
            delta = inputs;                                                                         \
        }                                                                                           \
    }                                                                                               \
    /* nnfast._dense.l2_penalty, lane by lane: squares in double of (double)p * p, the          \
       gradient + l2 p / W. */                                                                      \
    static __attribute__((noinline)) void nnfast_lanes_l2_##S(ptrdiff_t n_layers, const ptrdiff_t* sizes,                    \
                                    const ptrdiff_t* weight_offsets, double l2, const T* params,    \
                                    T* grad, const double* normalizer, double* penalty) {           \
        double squares[NNFAST_LANES];                                                               \
        T divisor[NNFAST_LANES], rate = l2;                                                         \
        ptrdiff_t layer, e, l;                                                                      \
        for (l = 0; l < NNFAST_LANES; l++) {                                                        \
            squares[l] = 0;                                                                         \
            divisor[l] = normalizer[l];                                                             \
        }                                                                                           \
        for (layer = 0; layer < n_layers; layer++) {                                                \
            const ptrdiff_t start = weight_offsets[layer];                                          \
            for (e = start; e < start + sizes[layer] * sizes[layer + 1]; e++)                       \
                for (l = 0; l < NNFAST_LANES; l++) {                                                \
                    const T p = params[e * NNFAST_LANES + l];                                       \
                    squares[l] += (double)p * p;                                                    \
                    grad[e * NNFAST_LANES + l] += rate * p / divisor[l];                            \
                }                                                                                   \
        }                                                                                           \
        for (l = 0; l < NNFAST_LANES; l++)                                                          \
            penalty[l] = 0.5 * l2 * squares[l] / normalizer[l];                                     \
    }                                                                                               \
    /* nnfast._optim.sgd_update (plain SGD's one-pass update gives the same bits) in the lanes   \
       apply marks, in one pass: the old parameters go to grad and the old moments to saved, for   \
       nnfast._lanes to put back in lanes whose new values are not all finite (finite[l] = 0).     \
       Each lane's rule (decay, momentum, style) is chosen by masks; plain SGD everywhere takes    \
       a loop of its own. */                                                                        \
    static __attribute__((noinline)) void nnfast_lanes_sgd_##S(ptrdiff_t n, const T* rate_, const T* decay_,                 \
                                     const T* momentum_, const unsigned char* has_momentum_,         \
                                     int nesterov, int sklearn_style, T* grad_, T* params_,          \
                                     T* first_, T* saved_, const unsigned char* apply_,              \
                                     unsigned char* finite) {                                        \
        enum { C = CHUNKS_##S };                                                                    \
        V##S* grad = (V##S*)grad_;                                                                  \
        V##S* params = (V##S*)params_;                                                              \
        V##S* first = (V##S*)first_;                                                                \
        V##S* saved = (V##S*)saved_;                                                                \
        const V##S zero = {0};                                                                      \
        V##S rate[C], decay[C], momentum[C], bad[C];                                                \
        M##S has_decay[C], has_momentum[C], sklearn[C], apply[C];                        \
        ptrdiff_t e, c, l;                                                                          \
        for (c = 0; c < C; c++) {                                                                   \
            rate[c] = nnfast_load_##S(rate_, c);                                                    \
            decay[c] = nnfast_load_##S(decay_, c);                                                  \
            momentum[c] = nnfast_load_##S(momentum_, c);                                            \
            has_decay[c] = decay[c] != zero;                                                        \
            has_momentum[c] = nnfast_flags_##S(has_momentum_, c);                                   \
            sklearn[c] = sklearn_style ? has_momentum[c] : (M##S){0};                               \
            apply[c] = nnfast_flags_##S(apply_, c);                                                 \
            bad[c] = zero;                                                                          \
        }                                                                                           \
        int plain = 1;                                                                              \
        for (l = 0; l < NNFAST_LANES; l++)                                                          \
            plain &= !has_momentum_[l] && decay_[l] == 0;                                           \
        if (plain) {                                                                                \
            for (e = 0; e < n; e++)                                                                 \
                for (c = 0; c < C; c++) {                                                           \
                    const ptrdiff_t k = e * C + c;                                                  \
                    const V##S p = params[k], updated = p - rate[c] * grad[k];                      \
                    bad[c] += updated - updated;                                                    \
                    params[k] = nnfast_select_##S(apply[c], updated, p);                            \
                    grad[k] = p;                                                                    \
                }                                                                                   \
        } else {                                                                                    \
            for (e = 0; e < n; e++)                                                                 \
                for (c = 0; c < C; c++) {                                                           \
                    const ptrdiff_t k = e * C + c;                                                  \
                    const V##S p = params[k], old = first[k];                                       \
                    const V##S g = nnfast_select_##S(has_decay[c], grad[k] + decay[c] * p, grad[k]); \
                    /* scikit-learn's form: b = momentum b - lr g; p + (momentum b - lr g, or b). */ \
                    const V##S b_sklearn = momentum[c] * old - rate[c] * g;                         \
                    const V##S p_sklearn = p + (nesterov ? momentum[c] * b_sklearn - rate[c] * g : b_sklearn); \
                    /* torch's: b = momentum b + g; g = g + momentum b (Nesterov), or b; p - lr g. */ \
                    const V##S b_torch = momentum[c] * old + g;                                     \
                    const V##S g_torch = nnfast_select_##S(has_momentum[c],                         \
                                                           nesterov ? g + momentum[c] * b_torch : b_torch, g); \
                    const V##S updated = nnfast_select_##S(sklearn[c], p_sklearn, p - rate[c] * g_torch); \
                    bad[c] += updated - updated;                                                    \
                    params[k] = nnfast_select_##S(apply[c], updated, p);                            \
                    first[k] = nnfast_select_##S(apply[c] & has_momentum[c],                        \
                                                 nnfast_select_##S(sklearn[c], b_sklearn, b_torch), old); \
                    grad[k] = p;                                                                    \
                    saved[k] = old;                                                                 \
                }                                                                                   \
        }                                                                                           \
        for (l = 0; l < NNFAST_LANES; l++)                                                          \
            finite[l] = ((T*)bad)[l] == 0;                                                          \
    }                                                                                               \
    /* nnfast._optim.adam_update (torch's form) and sklearn_adam_update, as the SGD above (the   \
       old moments to saved and saved2); the per-lane factors as those functions round them. */    \
    static __attribute__((noinline)) void nnfast_lanes_adam_##S(ptrdiff_t n, int sklearn_style, const T* factors,            \
                                      T* grad_, T* params_, T* first_, T* second_, T* saved_,       \
                                      T* saved2_, const unsigned char* apply_, unsigned char* finite) { \
        enum { C = CHUNKS_##S };                                                                    \
        V##S* grad = (V##S*)grad_;                                                                  \
        V##S* params = (V##S*)params_;                                                              \
        V##S* first = (V##S*)first_;                                                                \
        V##S* second = (V##S*)second_;                                                              \
        V##S* saved = (V##S*)saved_;                                                                \
        V##S* saved2 = (V##S*)saved2_;                                                              \
        V##S shrink[C], decay[C], beta1[C], beta2[C], eps[C], keep1[C], keep2[C], step_size[C];    \
        V##S correction2[C], bad[C];                                                                \
        M##S apply[C];                                                                              \
        ptrdiff_t e, c, l;                                                                          \
        for (c = 0; c < C; c++) {                                                                   \
            shrink[c] = nnfast_load_##S(factors, c);                                                \
            decay[c] = nnfast_load_##S(factors + NNFAST_LANES, c);                                  \
            beta1[c] = nnfast_load_##S(factors + 2 * NNFAST_LANES, c);                              \
            beta2[c] = nnfast_load_##S(factors + 3 * NNFAST_LANES, c);                              \
            eps[c] = nnfast_load_##S(factors + 4 * NNFAST_LANES, c);                                \
            keep1[c] = nnfast_load_##S(factors + 5 * NNFAST_LANES, c);                              \
            keep2[c] = nnfast_load_##S(factors + 6 * NNFAST_LANES, c);                              \
            step_size[c] = nnfast_load_##S(factors + 7 * NNFAST_LANES, c);                          \
            correction2[c] = nnfast_load_##S(factors + 8 * NNFAST_LANES, c);                        \
            apply[c] = nnfast_flags_##S(apply_, c);                                                 \
            bad[c] = (V##S){0};                                                                     \
        }                                                                                           \
        for (e = 0; e < n; e++)                                                                     \
            for (c = 0; c < C; c++) {                                                               \
                const ptrdiff_t k = e * C + c;                                                      \
                const V##S old = params[k], old_m = first[k], old_v = second[k];                    \
                V##S p, g, m, v, root;                                                              \
                if (sklearn_style)                                                                  \
                    p = old;                                                                        \
                else                                                                                \
                    p = old * shrink[c];                                                            \
                g = grad[k] + decay[c] * p;                                                         \
                m = beta1[c] * old_m + keep1[c] * g;                                                \
                v = beta2[c] * old_v + keep2[c] * g * g;                                            \
                for (l = 0; l < (ptrdiff_t)(NNFAST_VECTOR_BYTES / sizeof(T)); l++)                  \
                    root[l] = sqrt(v[l]);                                                           \
                if (sklearn_style)                                                                  \
                    p = p + (step_size[c] * m) / (root + eps[c]);                                   \
                else                                                                                \
                    p = p - step_size[c] * (m / (root / correction2[c] + eps[c]));                  \
                bad[c] += p - p;                                                                    \
                params[k] = nnfast_select_##S(apply[c], p, old);                                    \
                first[k] = nnfast_select_##S(apply[c], m, old_m);                                   \
                second[k] = nnfast_select_##S(apply[c], v, old_v);                                  \
                grad[k] = old;                                                                      \
                saved[k] = old_m;                                                                   \
                saved2[k] = old_v;                                                                  \
            }                                                                                       \
        for (l = 0; l < NNFAST_LANES; l++)                                                          \
            finite[l] = ((T*)bad)[l] == 0;                                                          \
    }
    NNFAST_LANE_MATH(double, d, long long)
    NNFAST_LANE_MATH(float, s, int)
    NNFAST_LANE_TABLES(double, d)
    NNFAST_LANE_TABLES(float, s)
    NNFAST_LANE_STEP(double, d)
    NNFAST_LANE_STEP(float, s)
    """
    enum:
        LANE_RELU "NNFAST_LANE_RELU"
        LANE_LEAKY_RELU "NNFAST_LANE_LEAKY_RELU"
        LANE_TANH "NNFAST_LANE_TANH"
        LANE_SIGMOID "NNFAST_LANE_SIGMOID"
        LANE_SSE "NNFAST_LANE_SSE"
        LANE_MSE "NNFAST_LANE_MSE"
        LANE_SQUARED_ERROR "NNFAST_LANE_SQUARED_ERROR"
        C_LANES "NNFAST_LANES"
    void lanes_forward_d "nnfast_lanes_forward_d"(
        Py_ssize_t n_layers, const Py_ssize_t* sizes, const Py_ssize_t* weight_offsets,
        const Py_ssize_t* bias_offsets, const Py_ssize_t* activations, double slope, Py_ssize_t rows,
        const double* params, const double* x, double* act, double* deriv, const Py_ssize_t* hidden_offsets,
        double* out) noexcept nogil
    void lanes_forward_s "nnfast_lanes_forward_s"(
        Py_ssize_t n_layers, const Py_ssize_t* sizes, const Py_ssize_t* weight_offsets,
        const Py_ssize_t* bias_offsets, const Py_ssize_t* activations, float slope, Py_ssize_t rows,
        const float* params, const float* x, float* act, float* deriv, const Py_ssize_t* hidden_offsets,
        float* out) noexcept nogil
    void lanes_loss_d "nnfast_lanes_loss_d"(int loss, Py_ssize_t n_out, Py_ssize_t rows, double* out,
                                            const double* y, const double* w, double* loss_out,
                                            double* normalizer) noexcept nogil
    void lanes_loss_s "nnfast_lanes_loss_s"(int loss, Py_ssize_t n_out, Py_ssize_t rows, float* out,
                                            const float* y, const float* w, double* loss_out,
                                            double* normalizer) noexcept nogil
    void lanes_backward_d "nnfast_lanes_backward_d"(
        Py_ssize_t n_layers, const Py_ssize_t* sizes, const Py_ssize_t* weight_offsets,
        const Py_ssize_t* bias_offsets, Py_ssize_t rows, const double* params, const double* x, double* act,
        const double* deriv, const Py_ssize_t* hidden_offsets, const double* out, double* grad) noexcept nogil
    void lanes_backward_s "nnfast_lanes_backward_s"(
        Py_ssize_t n_layers, const Py_ssize_t* sizes, const Py_ssize_t* weight_offsets,
        const Py_ssize_t* bias_offsets, Py_ssize_t rows, const float* params, const float* x, float* act,
        const float* deriv, const Py_ssize_t* hidden_offsets, const float* out, float* grad) noexcept nogil
    void lanes_l2_d "nnfast_lanes_l2_d"(Py_ssize_t n_layers, const Py_ssize_t* sizes,
                                        const Py_ssize_t* weight_offsets, double l2, const double* params,
                                        double* grad, const double* normalizer, double* penalty) noexcept nogil
    void lanes_l2_s "nnfast_lanes_l2_s"(Py_ssize_t n_layers, const Py_ssize_t* sizes,
                                        const Py_ssize_t* weight_offsets, double l2, const float* params,
                                        float* grad, const double* normalizer, double* penalty) noexcept nogil
    void lanes_sgd_d "nnfast_lanes_sgd_d"(Py_ssize_t n, const double* rate, const double* decay,
                                          const double* momentum, const unsigned char* has_momentum,
                                          int nesterov, int sklearn_style, double* grad, double* params,
                                          double* first, double* saved, const unsigned char* apply,
                                          unsigned char* finite) noexcept nogil
    void lanes_sgd_s "nnfast_lanes_sgd_s"(Py_ssize_t n, const float* rate, const float* decay,
                                          const float* momentum, const unsigned char* has_momentum,
                                          int nesterov, int sklearn_style, float* grad, float* params,
                                          float* first, float* saved, const unsigned char* apply,
                                          unsigned char* finite) noexcept nogil
    void lanes_adam_d "nnfast_lanes_adam_d"(Py_ssize_t n, int sklearn_style, const double* factors,
                                            double* grad, double* params, double* first, double* second,
                                            double* saved, double* saved2, const unsigned char* apply,
                                            unsigned char* finite) noexcept nogil
    void lanes_adam_s "nnfast_lanes_adam_s"(Py_ssize_t n, int sklearn_style, const float* factors,
                                            float* grad, float* params, float* first, float* second,
                                            float* saved, float* saved2, const unsigned char* apply,
                                            unsigned char* finite) noexcept nogil
