from cython cimport floating

# Codes shared with nnfast/optimizers.py.
cdef enum:
    SGD = 0
    ADAM = 1
    ADAMW = 2


cdef struct Hyperparameters:
    # Optimizer.hyperparameters(), unpacked; see nnfast/optimizers.py.
    int code
    double momentum
    bint nesterov
    double weight_decay
    double beta1
    double beta2
    double eps
    bint sklearn_style  # scikit-learn's update rules instead of torch's


cdef Hyperparameters read_hyperparameters(const double* values) noexcept nogil


cdef inline bint is_plain_sgd(const Hyperparameters* hyper) noexcept nogil:
    """Whether the update is p = p - lr * g: SGD without momentum or weight decay."""
    return hyper.code == SGD and hyper.momentum == 0 and hyper.weight_decay == 0

cdef int optimizer_update(const Hyperparameters* hyper, long long step, double lr, Py_ssize_t n,
                          floating* grad, floating* params, floating* first,
                          floating* second) noexcept nogil
