from libc.stdint cimport uint64_t

cdef void shuffle_indices(Py_ssize_t* order, Py_ssize_t n, uint64_t* state) noexcept nogil
