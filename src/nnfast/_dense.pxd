cimport numpy as cnp
from cython cimport floating


cdef struct Architecture:
    # Read from ParameterLayout.table; see nnfast/_layout.py.
    Py_ssize_t n_layers
    Py_ssize_t n_params
    const Py_ssize_t* sizes           # n_layers + 1 layer sizes, input first
    const Py_ssize_t* weight_offsets  # start of each layer's (fan_in, fan_out) weights
    const Py_ssize_t* bias_offsets    # start of each layer's bias, -1 if none
    Py_ssize_t hidden_width           # sum of the hidden layer sizes
    bint mean_loss                    # "mse" (True) or "sse" (False)


cdef Architecture read_architecture(cnp.ndarray table, bint mean_loss) except *

cdef struct Workspace:
    # Offsets into the scratch buffer, laid out [grad | pre | act | out]
    # as ParameterLayout.workspace_length documents.
    Py_ssize_t capacity
    Py_ssize_t pre
    Py_ssize_t act
    Py_ssize_t out


cdef Workspace carve_workspace(const Architecture* arch, Py_ssize_t length) noexcept nogil

cdef void forward_pass(const Architecture* arch, const floating* params, const floating* x,
                       Py_ssize_t rows, Py_ssize_t capacity, floating* pre, floating* act,
                       floating* out) noexcept nogil

cdef double loss_and_output_gradient(const Architecture* arch, floating* out, const floating* y,
                                     Py_ssize_t rows, bint write_gradient) noexcept nogil

cdef void backward_pass(const Architecture* arch, const floating* params, const floating* x,
                        Py_ssize_t rows, Py_ssize_t capacity, const floating* pre, floating* act,
                        const floating* grad_out, floating* grad) noexcept nogil
