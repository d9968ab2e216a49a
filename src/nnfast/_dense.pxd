cimport numpy as cnp
from cython cimport floating

# Codes shared with nnfast/_validation.py (ACTIVATIONS and LOSSES, by position).
cdef enum:
    RELU = 0
    LEAKY_RELU = 1
    TANH = 2
    SIGMOID = 3
    IDENTITY = 4

cdef enum:
    SSE = 0
    MSE = 1
    CROSS_ENTROPY = 2
    BINARY_CROSS_ENTROPY = 3
    POISSON = 4
    SQUARED_ERROR = 5
    BINARY_LOG_LOSS = 6


cdef inline bint is_classification(int loss) noexcept nogil:
    """Whether targets must be probabilities in [0, 1] and validation measures accuracy."""
    return loss == CROSS_ENTROPY or loss == BINARY_CROSS_ENTROPY or loss == BINARY_LOG_LOSS


cdef struct Architecture:
    # Read from ParameterLayout.table; see nnfast/_layout.py.
    Py_ssize_t n_layers
    Py_ssize_t n_params
    const Py_ssize_t* sizes           # n_layers + 1 layer sizes, input first
    const Py_ssize_t* weight_offsets  # start of each layer's (fan_in, fan_out) weights
    const Py_ssize_t* bias_offsets    # start of each layer's bias, -1 if none
    const Py_ssize_t* activations     # activation code of each layer's output
    Py_ssize_t hidden_width           # sum of the hidden layer sizes
    Py_ssize_t max_width              # the widest layer, input and output included
    int loss                          # loss code
    double negative_slope             # of LEAKY_RELU
    double l2                         # the L2 penalty on the weights (see l2_penalty)


cdef struct Workspace:
    # Offsets into the scratch buffer, laid out [grad | deriv | act | out]
    # as ParameterLayout.workspace_length documents (without grad for
    # evaluation: see carve_workspace).
    Py_ssize_t capacity
    Py_ssize_t deriv
    Py_ssize_t act
    Py_ssize_t out


cdef Architecture read_architecture(cnp.ndarray table, int loss, double negative_slope,
                                    double l2) except *

cdef Workspace carve_workspace(const Architecture* arch, Py_ssize_t length,
                               bint with_gradient) noexcept nogil

cdef void forward_pass(const Architecture* arch, const floating* params, const floating* x,
                       Py_ssize_t rows, Py_ssize_t capacity, floating* deriv, floating* act,
                       floating* out) noexcept nogil

cdef double total_weight(const floating* weights, Py_ssize_t rows) noexcept nogil

cdef double loss_sum(const Architecture* arch, floating* out, const floating* y,
                     const floating* weights, Py_ssize_t rows, double normalizer,
                     bint write_gradient, double total) noexcept nogil

cdef double l2_penalty(const Architecture* arch, const floating* params, floating* grad,
                       double normalizer) noexcept nogil

cdef double mean_loss(const Architecture* arch, floating total, double normalizer) noexcept nogil

cdef double loss_and_output_gradient(const Architecture* arch, floating* out, const floating* y,
                                     const floating* weights, Py_ssize_t rows,
                                     bint write_gradient) noexcept nogil

cdef double accuracy(const Architecture* arch, const floating* out, const floating* y,
                     Py_ssize_t rows) noexcept nogil

cdef void backward_pass(const Architecture* arch, const floating* params, const floating* x,
                        Py_ssize_t rows, Py_ssize_t capacity, const floating* deriv,
                        floating* act, const floating* grad_out, floating* grad,
                        bint accumulate) noexcept nogil

cdef bint backward_sgd_one_row(const Architecture* arch, floating* params, const floating* x,
                               Py_ssize_t capacity, const floating* deriv, floating* act,
                               const floating* grad_out, floating* saved, double lr) noexcept nogil
