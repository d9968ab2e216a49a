# Ctrl-C inside compiled loops that run without the GIL.
#
# Python's C-level SIGINT handler only records the signal; the handler that
# raises KeyboardInterrupt runs when the main thread next executes Python
# code, which a compiled fit does not do until it ends. So long loops poll:
# `interrupted(&poll)` after every unit of work (a training step, a block of
# rows) costs a decrement and a compare; about once a millisecond it reads
# the clock, and every SIGNAL_INTERVAL it takes the GIL and runs the pending
# handlers. The stride between clock reads adapts to the length of a unit,
# so neither tiny nor long steps pay for more than a clock read a millisecond.
# A handler that raises leaves its exception set in the thread state
# (the call is declared here without an except clause, so Cython does not
# swallow it); the entry point takes it with `pending_exception()`
# once the GIL is back and raises it after putting its state in order.
from cpython.ref cimport PyObject, Py_XDECREF
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec

cdef extern from "Python.h":
    # No except clause: a handler's exception stays set for pending_exception().
    int run_handlers_keeping_error "PyErr_CheckSignals"()
    void PyErr_Fetch(PyObject** kind, PyObject** value, PyObject** trace)
    void PyErr_NormalizeException(PyObject** kind, PyObject** value, PyObject** trace)

cdef extern from *:
    """
    /* Seconds between runs of the signal handlers: well inside the 0.1 s
       within which Ctrl-C must stop a fit. */
    #define NNFAST_SIGNAL_INTERVAL 0.02
    /* Aim for a clock read every 0.5 to 2 ms. */
    #define NNFAST_CLOCK_MIN 0.5e-3
    #define NNFAST_CLOCK_MAX 2e-3
    #define NNFAST_MAX_STRIDE (1LL << 30)
    /* A training run's cancel flag is set by another thread (an ensemble's,
       on Ctrl-C): read it afresh every time, never from a register. */
    static inline int nnfast_cancel_requested(const unsigned char* flag) {
        return __atomic_load_n(flag, __ATOMIC_RELAXED) != 0;
    }
    """
    const double SIGNAL_INTERVAL "NNFAST_SIGNAL_INTERVAL"
    const double CLOCK_MIN "NNFAST_CLOCK_MIN"
    const double CLOCK_MAX "NNFAST_CLOCK_MAX"
    const long long MAX_STRIDE "NNFAST_MAX_STRIDE"
    bint cancel_requested "nnfast_cancel_requested"(const unsigned char* flag) noexcept nogil


cdef struct SignalPoll:
    long long countdown   # units of work until the next clock read
    long long stride      # units of work between clock reads
    double last_read      # time of the last clock read, seconds
    double last_check     # time of the last run of the signal handlers
    bint raised           # a handler raised; its exception is pending


cdef inline double monotonic_seconds() noexcept nogil:
    cdef timespec now
    clock_gettime(CLOCK_MONOTONIC, &now)
    return now.tv_sec + 1e-9 * now.tv_nsec


cdef inline void poll_start(SignalPoll* poll) noexcept nogil:
    """Start polling: the first unit of work is followed by a clock read."""
    poll.countdown = 1
    poll.stride = 1
    poll.last_read = poll.last_check = monotonic_seconds()
    poll.raised = False


cdef inline bint run_signal_handlers(SignalPoll* poll) noexcept nogil:
    """Take the GIL and run Python's pending signal handlers; return whether one raised."""
    poll.last_check = monotonic_seconds()
    with gil:
        poll.raised = run_handlers_keeping_error() != 0
    return poll.raised


cdef inline bint poll_clock(SignalPoll* poll) noexcept nogil:
    """The slow part of ``interrupted``: read the clock, adapt the stride, and run
    the signal handlers when SIGNAL_INTERVAL has passed."""
    cdef double now = monotonic_seconds()
    cdef double elapsed = now - poll.last_read
    if elapsed < CLOCK_MIN and poll.stride < MAX_STRIDE:
        poll.stride *= 2
    elif elapsed > CLOCK_MAX and poll.stride > 1:
        poll.stride //= 2
    poll.last_read = now
    poll.countdown = poll.stride
    if now - poll.last_check < SIGNAL_INTERVAL:
        return False
    return run_signal_handlers(poll)


cdef inline bint interrupted(SignalPoll* poll) noexcept nogil:
    """Call after each unit of work; True once a signal handler has raised."""
    poll.countdown -= 1
    if poll.countdown > 0:
        return False
    return poll_clock(poll)


cdef inline object pending_exception():
    """Take the exception a signal handler left set and return it (with the GIL)."""
    cdef PyObject* kind = NULL
    cdef PyObject* value = NULL
    cdef PyObject* trace = NULL
    PyErr_Fetch(&kind, &value, &trace)
    PyErr_NormalizeException(&kind, &value, &trace)
    error = <object>value  # a reference of its own
    Py_XDECREF(kind)
    Py_XDECREF(value)
    Py_XDECREF(trace)
    return error
