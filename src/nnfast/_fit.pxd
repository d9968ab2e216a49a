from cython cimport floating

from nnfast._dense cimport Architecture, Workspace
from nnfast._optim cimport Hyperparameters

cdef int optimizer_step(const Architecture* arch, floating* params, const floating* x,
                        const floating* y, const floating* weights, Py_ssize_t rows,
                        const Workspace* ws, floating* scratch, const Hyperparameters* hyper,
                        long long step, double lr, floating* first, floating* second,
                        double* loss, double* penalty) noexcept nogil
