from cython cimport floating

cdef int sgd_update(Py_ssize_t n, floating lr, const floating* grad, floating* params) noexcept nogil
