from nnfast._signals cimport SignalPoll

cdef extern from *:
    """
    /* waiting_readers is read after every training step without the mutex,
       and readers and gate by readers that do not take the mutex, so every
       access to these three is atomic (see _lock.pyx for the protocol). */
    static inline Py_ssize_t nnfast_load_relaxed(const Py_ssize_t* p) {
        return __atomic_load_n(p, __ATOMIC_RELAXED);
    }
    static inline void nnfast_add_relaxed(Py_ssize_t* p, Py_ssize_t v) {
        __atomic_add_fetch(p, v, __ATOMIC_RELAXED);
    }
    static inline Py_ssize_t nnfast_load(const Py_ssize_t* p) {
        return __atomic_load_n(p, __ATOMIC_SEQ_CST);
    }
    static inline void nnfast_store(Py_ssize_t* p, Py_ssize_t v) {
        __atomic_store_n(p, v, __ATOMIC_SEQ_CST);
    }
    static inline Py_ssize_t nnfast_add(Py_ssize_t* p, Py_ssize_t v) {
        return __atomic_add_fetch(p, v, __ATOMIC_SEQ_CST);
    }
    """
    Py_ssize_t load_relaxed "nnfast_load_relaxed"(const Py_ssize_t* value) nogil
    void add_relaxed "nnfast_add_relaxed"(Py_ssize_t* value, Py_ssize_t change) nogil
    Py_ssize_t atomic_load "nnfast_load"(const Py_ssize_t* value) nogil
    void atomic_store "nnfast_store"(Py_ssize_t* value, Py_ssize_t new) nogil
    Py_ssize_t atomic_add "nnfast_add"(Py_ssize_t* value, Py_ssize_t change) nogil

cdef extern from "pythread.h":
    unsigned long PyThread_get_thread_ident() nogil

cdef extern from "<pthread.h>" nogil:
    ctypedef struct pthread_mutex_t:
        pass
    ctypedef struct pthread_cond_t:
        pass


cdef class NetLock:
    # Changed under `mutex` (readers also without it); see _lock.pyx.
    cdef pthread_mutex_t mutex
    cdef pthread_cond_t changed
    cdef readonly unsigned long owner          # thread owning the write side, 0 if none
    cdef readonly Py_ssize_t depth             # the owner's nested acquisitions
    cdef readonly Py_ssize_t readers           # threads reading (or trying to) the parameters
    cdef readonly Py_ssize_t gate              # nonzero while the owner modifies or waits to
    cdef readonly Py_ssize_t waiting_readers   # threads waiting to read
    cdef readonly bint modifying               # the owner is changing the parameters
    cdef readonly bint modifier_waiting        # the owner waits for readers to leave

    cdef bint try_read(self) noexcept nogil
    cdef bint wait_read(self, double timeout) noexcept nogil
    cdef void release_read(self) noexcept nogil
    cdef bint wait_own(self, unsigned long thread, double timeout) noexcept nogil
    cdef void release_own(self) noexcept nogil
    cdef bint wait_modify(self, double timeout) noexcept nogil
    cdef void cancel_modify(self) noexcept nogil
    cdef void release_modify(self) noexcept nogil
    cdef bint wait_no_waiting_readers(self, double timeout) noexcept nogil
    cdef bint try_write(self, unsigned long thread) noexcept nogil
    cdef void release_write(self) noexcept nogil

    cdef int read(self) except -1
    cdef int own(self) except -1
    cdef int modify(self) except -1
    cdef int write(self) except -1
    cdef bint modify_polling(self, SignalPoll* poll) noexcept nogil
    cdef bint let_readers_in(self, SignalPoll* poll) noexcept nogil


cdef inline bint readers_waiting(NetLock lock) noexcept nogil:
    """Whether a reader waits (read after every training step, without the mutex)."""
    return load_relaxed(&lock.waiting_readers) > 0
