from cython cimport floating

cdef void matmul(bint trans_a, bint trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                 const floating* a, const floating* b, floating beta, floating* c) noexcept nogil
