"""The per-net lock that makes one net safe to use from many threads.

Readers (predict, forward, loss, gradients, reading weights, saving) run
in parallel with each other. Writers change the parameters: a training
step, a whole fit, an assignment to ``weights``. The lock has two levels:

- **Ownership** of the write side, held by one thread at a time for a
  whole training call (a fit holds it across its epochs and callbacks),
  reentrant for that thread, so that a callback may call ``train_step``
  or assign ``weights``. Another writer waits until the owner is done.
  Readers ignore ownership.
- **Modifying**, taken by the owner around each change of the
  parameters, once no reader is reading. While the owner waits for it, new
  readers wait too, so a stream of readers cannot starve a writer. A
  compiled fit checks after every step whether a reader waits and, if one
  does, stops modifying until the waiting readers are in, so that readers
  see the parameters between two steps and are not starved either.

Readers take the lock without the mutex where no writer is in the way: a
reader adds itself to ``readers`` and then looks at ``gate``, which a
writer sets (under the mutex) before it looks at ``readers``. Both are
sequentially consistent atomics, so of a reader and a writer arriving
together at least one sees the other, and that one backs off (the reader,
to wait under the mutex). A reader leaving last while the gate is set
wakes the writer under the mutex, so no wake-up is lost.

Every wait is a timed wait of WAIT_SLICE, after which the waiter runs
Python's signal handlers (see _signals.pxd), so a thread blocked on a busy
net still answers Ctrl-C. No thread blocks on this lock while holding the
GIL: the fast paths try without waiting and release the GIL to wait.
"""
cimport cython
from libc.errno cimport ETIMEDOUT

from posix.time cimport CLOCK_REALTIME, clock_gettime, timespec

from nnfast._signals cimport SignalPoll, run_signal_handlers

cdef extern from "<pthread.h>" nogil:
    int pthread_mutex_init(pthread_mutex_t* mutex, const void* attributes)
    int pthread_mutex_destroy(pthread_mutex_t* mutex)
    int pthread_mutex_lock(pthread_mutex_t* mutex)
    int pthread_mutex_unlock(pthread_mutex_t* mutex)
    int pthread_cond_init(pthread_cond_t* cond, const void* attributes)
    int pthread_cond_destroy(pthread_cond_t* cond)
    int pthread_cond_timedwait(pthread_cond_t* cond, pthread_mutex_t* mutex, const timespec* until)
    int pthread_cond_broadcast(pthread_cond_t* cond)

from cpython.exc cimport PyErr_CheckSignals

# Seconds a waiter sleeps before it looks at signals again.
cdef double WAIT_SLICE = 0.02


cdef timespec deadline(double timeout) noexcept nogil:
    """The wall-clock time ``timeout`` seconds from now, as pthread_cond_timedwait wants it."""
    cdef timespec until
    cdef long nanoseconds
    clock_gettime(CLOCK_REALTIME, &until)
    nanoseconds = until.tv_nsec + <long>(timeout * 1e9)
    until.tv_sec += nanoseconds // 1000000000
    until.tv_nsec = nanoseconds % 1000000000
    return until


cdef class NetLock:
    """A reader-writer lock for one net's parameters (see the module docstring).

    The Python-level methods come in pairs that must be balanced (use
    try/finally): ``begin_read``/``end_read``, ``begin_own``/``end_own``,
    and, while owning, ``begin_modify``/``end_modify``. Each ``begin_*``
    waits with the GIL released and raises what a signal handler raises
    meanwhile (KeyboardInterrupt), without taking the lock.

    Attributes
    ----------
    owner, depth, readers, waiting_readers, modifying, modifier_waiting
        The lock's state, for tests and debugging.
    """

    def __cinit__(self):
        if pthread_mutex_init(&self.mutex, NULL) != 0 or pthread_cond_init(&self.changed, NULL) != 0:
            raise MemoryError("cannot create a lock")

    def __dealloc__(self):
        pthread_cond_destroy(&self.changed)
        pthread_mutex_destroy(&self.mutex)

    # -- the protocol, without the GIL -------------------------------------

    cdef bint try_read(self) noexcept nogil:
        """Start reading if no writer modifies or waits to, without the mutex."""
        if atomic_load(&self.gate):
            return False
        atomic_add(&self.readers, 1)
        if not atomic_load(&self.gate):
            return True
        self.release_read()  # a writer came first
        return False

    cdef bint wait_read(self, double timeout) noexcept nogil:
        """Wait up to ``timeout`` seconds to start reading; return whether it started."""
        cdef timespec until = deadline(timeout)
        cdef bint free
        pthread_mutex_lock(&self.mutex)
        add_relaxed(&self.waiting_readers, 1)
        while True:
            free = not atomic_load(&self.gate)
            if free or pthread_cond_timedwait(&self.changed, &self.mutex, &until) == ETIMEDOUT:
                break
        free = not atomic_load(&self.gate)
        if free:  # under the mutex, so no writer sets the gate before this counts
            atomic_add(&self.readers, 1)
        add_relaxed(&self.waiting_readers, -1)
        # A writer letting readers in waits for waiting_readers to reach 0.
        pthread_cond_broadcast(&self.changed)
        pthread_mutex_unlock(&self.mutex)
        return free

    cdef void release_read(self) noexcept nogil:
        if atomic_add(&self.readers, -1) == 0 and atomic_load(&self.gate):
            # The last reader out, and a writer may be waiting for that.
            pthread_mutex_lock(&self.mutex)
            pthread_cond_broadcast(&self.changed)
            pthread_mutex_unlock(&self.mutex)

    cdef bint wait_own(self, unsigned long thread, double timeout) noexcept nogil:
        """Wait up to ``timeout`` seconds (0: just try) for ownership; return whether ``thread`` has it."""
        cdef timespec until = deadline(timeout)
        cdef bint free
        pthread_mutex_lock(&self.mutex)
        while True:
            free = self.owner == 0 or self.owner == thread
            if free or timeout == 0 or pthread_cond_timedwait(&self.changed, &self.mutex, &until) == ETIMEDOUT:
                break
        free = self.owner == 0 or self.owner == thread
        if free:
            self.owner = thread
            self.depth += 1
        pthread_mutex_unlock(&self.mutex)
        return free

    cdef void release_own(self) noexcept nogil:
        pthread_mutex_lock(&self.mutex)
        self.depth -= 1
        if self.depth == 0:
            self.owner = 0
            pthread_cond_broadcast(&self.changed)
        pthread_mutex_unlock(&self.mutex)

    cdef bint wait_modify(self, double timeout) noexcept nogil:
        """(Owner only.) Wait up to ``timeout`` seconds for the readers to leave and
        start modifying; return whether it started. New readers wait meanwhile,
        also after a time-out, until ``cancel_modify`` or the next try succeeds."""
        cdef timespec until = deadline(timeout)
        cdef bint started
        pthread_mutex_lock(&self.mutex)
        self.modifier_waiting = True
        atomic_store(&self.gate, 1)
        while atomic_load(&self.readers) > 0:
            if timeout == 0 or pthread_cond_timedwait(&self.changed, &self.mutex, &until) == ETIMEDOUT:
                break
        started = atomic_load(&self.readers) == 0
        if started:
            self.modifier_waiting = False
            self.modifying = True
        pthread_mutex_unlock(&self.mutex)
        return started

    cdef void cancel_modify(self) noexcept nogil:
        """Give up waiting to modify: readers may start again."""
        pthread_mutex_lock(&self.mutex)
        self.modifier_waiting = False
        atomic_store(&self.gate, 0)
        pthread_cond_broadcast(&self.changed)
        pthread_mutex_unlock(&self.mutex)

    cdef void release_modify(self) noexcept nogil:
        pthread_mutex_lock(&self.mutex)
        self.modifying = False
        atomic_store(&self.gate, 0)
        pthread_cond_broadcast(&self.changed)
        pthread_mutex_unlock(&self.mutex)

    cdef bint wait_no_waiting_readers(self, double timeout) noexcept nogil:
        """Wait up to ``timeout`` seconds until every waiting reader has started."""
        cdef timespec until = deadline(timeout)
        cdef bint done
        pthread_mutex_lock(&self.mutex)
        while self.waiting_readers > 0:
            if pthread_cond_timedwait(&self.changed, &self.mutex, &until) == ETIMEDOUT:
                break
        done = self.waiting_readers == 0
        pthread_mutex_unlock(&self.mutex)
        return done

    cdef bint try_write(self, unsigned long thread) noexcept nogil:
        """Take ownership and start modifying at once if nothing is in the way:
        ``own`` and ``modify`` in one visit to the mutex, for single steps."""
        cdef bint free
        pthread_mutex_lock(&self.mutex)
        free = (self.owner == 0 or self.owner == thread) and not self.modifying
        if free:
            atomic_store(&self.gate, 1)
            free = atomic_load(&self.readers) == 0
            if free:
                self.owner = thread
                self.depth += 1
                self.modifying = True
            else:
                # Readers are in: let them be, and any that backed off in.
                atomic_store(&self.gate, self.modifier_waiting)
                pthread_cond_broadcast(&self.changed)
        pthread_mutex_unlock(&self.mutex)
        return free

    cdef void release_write(self) noexcept nogil:
        """Undo ``write``: stop modifying and release ownership once."""
        pthread_mutex_lock(&self.mutex)
        self.modifying = False
        atomic_store(&self.gate, 0)
        self.depth -= 1
        if self.depth == 0:
            self.owner = 0
        pthread_cond_broadcast(&self.changed)
        pthread_mutex_unlock(&self.mutex)

    # -- with the GIL, interruptible ---------------------------------------

    cdef int read(self) except -1:
        """Start reading, waiting without the GIL if a writer is at work."""
        cdef bint started
        if self.try_read():
            return 0
        while True:
            with nogil:
                started = self.wait_read(WAIT_SLICE)
            if started:
                return 0
            PyErr_CheckSignals()

    cdef int own(self) except -1:
        """Take ownership of the write side (reentrant), waiting without the GIL."""
        cdef unsigned long thread = PyThread_get_thread_ident()
        cdef bint owned = self.wait_own(thread, 0)
        while not owned:
            with nogil:
                owned = self.wait_own(thread, WAIT_SLICE)
            if not owned:
                PyErr_CheckSignals()
        return 0

    cdef int modify(self) except -1:
        """(Owner only.) Start modifying once the readers are out, waiting without the GIL."""
        cdef bint started = self.wait_modify(0)
        while not started:
            with nogil:
                started = self.wait_modify(WAIT_SLICE)
            if not started:
                try:
                    PyErr_CheckSignals()
                except BaseException:
                    self.cancel_modify()
                    raise
        return 0

    cdef int write(self) except -1:
        """``own`` and then ``modify``; undo with ``release_write``."""
        if self.try_write(PyThread_get_thread_ident()):
            return 0
        self.own()
        try:
            self.modify()
        except BaseException:
            self.release_own()
            raise
        return 0

    # -- inside compiled loops, without the GIL ----------------------------

    cdef bint modify_polling(self, SignalPoll* poll) noexcept nogil:
        """(Owner only.) ``modify`` without the GIL; False (not modifying) if a
        signal handler raised meanwhile."""
        while not self.wait_modify(WAIT_SLICE):
            if run_signal_handlers(poll):
                self.cancel_modify()
                return False
        return True

    cdef bint let_readers_in(self, SignalPoll* poll) noexcept nogil:
        """(Modifying.) Stop modifying until the readers waiting now have read, then
        modify again; False (not modifying) if a signal handler raised meanwhile."""
        self.release_modify()
        while not self.wait_no_waiting_readers(WAIT_SLICE):
            if run_signal_handlers(poll):
                return False
        return self.modify_polling(poll)

    # -- for Python --------------------------------------------------------

    def begin_read(self):
        """Start reading the parameters; pair with ``end_read``."""
        self.read()

    def end_read(self):
        self.release_read()

    def begin_own(self):
        """Take the write side for a training call or an assignment; pair with ``end_own``."""
        self.own()

    def end_own(self):
        self.release_own()

    def begin_modify(self):
        """(Owner only.) Start changing the parameters; pair with ``end_modify``."""
        if self.owner != PyThread_get_thread_ident():
            raise RuntimeError("begin_modify needs the write side: call begin_own first")
        self.modify()

    def end_modify(self):
        self.release_modify()

    def begin_write(self):
        """``begin_own`` and ``begin_modify`` at once; pair with ``end_write``."""
        self.write()

    def end_write(self):
        self.release_write()

    def reading(self):
        """A context manager: ``begin_read`` on entry, ``end_read`` on exit."""
        return LockContext(self, READ)

    def writing(self):
        """A context manager: ``begin_write`` on entry, ``end_write`` on exit."""
        return LockContext(self, WRITE)

    def owning(self):
        """A context manager: ``begin_own`` on entry, ``end_own`` on exit."""
        return LockContext(self, OWN)


cdef enum:
    READ, WRITE, OWN


@cython.freelist(8)
@cython.final
cdef class LockContext:
    """One use of a ``NetLock`` mode in a ``with`` statement (cheaper than a
    generator-based context manager on the paths that take the lock)."""
    cdef NetLock lock
    cdef int mode

    def __cinit__(self, NetLock lock, int mode):
        self.lock = lock
        self.mode = mode

    def __enter__(self):
        if self.mode == READ:
            self.lock.read()
        elif self.mode == WRITE:
            self.lock.write()
        else:
            self.lock.own()

    def __exit__(self, kind, value, trace):
        if self.mode == READ:
            self.lock.release_read()
        elif self.mode == WRITE:
            self.lock.release_write()
        else:
            self.lock.release_own()
        return False
