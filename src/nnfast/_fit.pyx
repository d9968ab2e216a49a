"""Training entry points: one SGD step, and a whole ``fit`` in one call without the GIL."""
from libc.stdint cimport uint64_t
from libc.string cimport memcpy
from cython cimport floating

from nnfast._dense cimport (Architecture, backward_pass, forward_pass, loss_and_output_gradient,
                            read_architecture, workspace_capacity)
from nnfast._sgd cimport sgd_update
from nnfast._shuffle cimport shuffle_indices
from nnfast._status cimport LOSS_NOT_FINITE, STEP_OK


cdef int sgd_step(const Architecture* arch, Py_ssize_t n_params, floating* params, floating* grad,
                  const floating* x, const floating* y, Py_ssize_t rows, Py_ssize_t capacity,
                  floating* pre, floating* act, floating* out, floating lr,
                  double* loss) noexcept nogil:
    """One SGD step on ``rows`` samples; store the loss before it in ``loss[0]``."""
    forward_pass(arch, params, x, rows, capacity, pre, act, out)
    loss[0] = loss_and_output_gradient(arch, out, y, rows, True)
    if loss[0] - loss[0] != 0:
        return LOSS_NOT_FINITE
    backward_pass(arch, params, x, rows, capacity, pre, act, out, grad)
    return sgd_update(n_params, lr, grad, params)


def train_step(const Py_ssize_t[::1] table, bint mean_loss, floating[::1] params,
               const floating[:, ::1] x, const floating[:, ::1] y, double lr,
               floating[::1] pre, floating[::1] act, floating[:, ::1] out, floating[::1] grad):
    """Take one SGD step on all of ``(x, y)``; return ``(loss before the step, status)``.

    Parameters
    ----------
    table : ndarray of intp
        ``ParameterLayout.table``.
    params : ndarray, shape (n_params,)
        Modified in place, unless the status is not STEP_OK.
    x, y : ndarray, shapes (rows, sizes[0]) and (rows, sizes[-1])
    pre, act : ndarray, shape (>= rows * hidden_width,)
        Scratch.
    out : ndarray, shape (>= rows, sizes[-1])
        Scratch.
    grad : ndarray, shape (n_params,)
        Overwritten with the gradient (unless the loss was not finite).
    """
    cdef Architecture arch = read_architecture(table, mean_loss)
    cdef Py_ssize_t rows = x.shape[0]
    cdef Py_ssize_t capacity = workspace_capacity(&arch, act.shape[0], rows)
    cdef double loss
    cdef int status
    with nogil:
        status = sgd_step(&arch, params.shape[0], &params[0], &grad[0], &x[0, 0], &y[0, 0], rows,
                          capacity, &pre[0], &act[0], &out[0, 0], <floating>lr, &loss)
    return loss, status


cdef inline void gather_rows(const floating* source, const Py_ssize_t* rows, Py_ssize_t n_rows,
                             Py_ssize_t width, floating* target) noexcept nogil:
    """target[i] = source[rows[i]] for i < n_rows, rows of ``width`` elements."""
    cdef Py_ssize_t i
    for i in range(n_rows):
        memcpy(target + i * width, source + rows[i] * width, width * sizeof(floating))


def fit(const Py_ssize_t[::1] table, bint mean_loss, floating[::1] params,
        const floating[:, ::1] x, const floating[:, ::1] y, Py_ssize_t epochs, double lr,
        Py_ssize_t batch_size, bint shuffle, uint64_t state,
        floating[::1] pre, floating[::1] act, floating[:, ::1] out, floating[::1] grad,
        floating[:, ::1] x_batch, floating[:, ::1] y_batch, Py_ssize_t[::1] order,
        double[::1] losses):
    """Run ``epochs`` epochs of mini-batch SGD; return ``(steps taken, status)``.

    The loop over epochs and batches, the reshuffle, the batch gathering and
    every step run here without the GIL; nothing is allocated.

    Parameters
    ----------
    params : ndarray, shape (n_params,)
        Modified in place by every successful step.
    x, y : ndarray, shapes (n_samples, sizes[0]) and (n_samples, sizes[-1])
    epochs, batch_size : int
    lr : float
    shuffle : bool
        Reshuffle ``order`` before every epoch (Fisher-Yates, SplitMix64).
    state : int
        The shuffle generator's state.
    pre, act : ndarray, shape (>= batch_size * hidden_width,)
        Scratch.
    out : ndarray, shape (>= batch_size, sizes[-1])
        Scratch.
    grad : ndarray, shape (n_params,)
        Scratch.
    x_batch, y_batch : ndarray, shapes (>= batch_size, sizes[0]) and (>= batch_size, sizes[-1])
        Scratch for the gathered rows of a shuffled batch.
    order : ndarray of intp, shape (n_samples,)
        Must hold ``arange(n_samples)``; modified (the last epoch's order).
    losses : ndarray of float64, shape (epochs * steps_per_epoch,)
        Modified: the loss of every step, before its update.

    Returns
    -------
    steps : int
        Steps taken, counting a failing one.
    status : int
        STEP_OK, or the failure of the last step (which was not applied).
    """
    cdef Architecture arch = read_architecture(table, mean_loss)
    cdef Py_ssize_t n_samples = x.shape[0], n_in = x.shape[1], n_out = y.shape[1]
    cdef Py_ssize_t capacity = workspace_capacity(&arch, act.shape[0], batch_size)
    cdef Py_ssize_t epoch, start, rows, step = 0
    cdef const floating* x_rows
    cdef const floating* y_rows
    cdef int status = STEP_OK
    with nogil:
        for epoch in range(epochs):
            if shuffle:
                shuffle_indices(&order[0], n_samples, &state)
            start = 0
            while start < n_samples and status == STEP_OK:
                rows = min(batch_size, n_samples - start)
                if shuffle:
                    gather_rows(&x[0, 0], &order[start], rows, n_in, &x_batch[0, 0])
                    gather_rows(&y[0, 0], &order[start], rows, n_out, &y_batch[0, 0])
                    x_rows = &x_batch[0, 0]
                    y_rows = &y_batch[0, 0]
                else:
                    x_rows = &x[start, 0]
                    y_rows = &y[start, 0]
                status = sgd_step(&arch, params.shape[0], &params[0], &grad[0], x_rows, y_rows,
                                  rows, capacity, &pre[0], &act[0], &out[0, 0], <floating>lr,
                                  &losses[step])
                step += 1
                start += batch_size
            if status != STEP_OK:
                break
    return step, status
