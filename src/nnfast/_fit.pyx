"""Training entry points: one SGD step, and a whole ``fit`` in one call without the GIL."""
cimport numpy as cnp
from libc.stdint cimport uint64_t
from libc.string cimport memcpy
from cython cimport floating

from nnfast._arrays cimport index_data, is_float32, matrix_data, vector_data
from nnfast._dense cimport (Architecture, backward_pass, forward_pass, loss_and_output_gradient,
                            read_architecture, Workspace, carve_workspace)
from nnfast._sgd cimport sgd_update
from nnfast._shuffle cimport shuffle_indices
from nnfast._status cimport LOSS_NOT_FINITE, STEP_OK

cnp.import_array()


cdef int sgd_step(const Architecture* arch, floating* params, const floating* x,
                  const floating* y, Py_ssize_t rows, const Workspace* ws, floating* scratch,
                  floating lr, double* loss) noexcept nogil:
    """One SGD step on ``rows`` samples; store the loss before it in ``loss[0]``."""
    forward_pass(arch, params, x, rows, ws.capacity, scratch + ws.pre, scratch + ws.act,
                 scratch + ws.out)
    loss[0] = loss_and_output_gradient(arch, scratch + ws.out, y, rows, True)
    if loss[0] - loss[0] != 0:
        return LOSS_NOT_FINITE
    backward_pass(arch, params, x, rows, ws.capacity, scratch + ws.pre, scratch + ws.act,
                  scratch + ws.out, scratch)
    return sgd_update(arch.n_params, lr, scratch, params)


cdef tuple train_step_typed(floating* kind, cnp.ndarray table, bint mean_loss,
                            cnp.ndarray params, cnp.ndarray x, cnp.ndarray y, double lr,
                            cnp.ndarray workspace):
    cdef Architecture arch = read_architecture(table, mean_loss)
    cdef Py_ssize_t rows = cnp.PyArray_DIM(x, 0)
    cdef floating* p = vector_data(params, kind, arch.n_params, True)
    cdef const floating* inputs = matrix_data(x, kind, -1, arch.sizes[0], False)
    cdef const floating* targets = matrix_data(y, kind, rows, arch.sizes[arch.n_layers], False)
    cdef floating* scratch = vector_data(workspace, kind, 0, True)
    cdef Workspace ws = carve_workspace(&arch, cnp.PyArray_SIZE(workspace))
    cdef double loss
    cdef int status
    if ws.capacity < rows:
        raise ValueError(f"workspace holds {ws.capacity} rows, x has {rows}")
    with nogil:
        status = sgd_step(&arch, p, inputs, targets, rows, &ws, scratch, <floating>lr, &loss)
    return loss, status


def train_step(cnp.ndarray table, bint mean_loss, cnp.ndarray params, cnp.ndarray x,
               cnp.ndarray y, double lr, cnp.ndarray workspace):
    """Take one SGD step on all of ``(x, y)``; return ``(loss before the step, status)``.

    Parameters
    ----------
    table : ndarray of intp
        ``ParameterLayout.table``.
    params : ndarray of float32 or float64, shape (n_params,)
        Modified in place, unless the status is not STEP_OK. All arrays
        share this dtype.
    x, y : ndarray, shapes (rows, sizes[0]) and (rows, sizes[-1])
    workspace : ndarray, shape (>= ParameterLayout.workspace_length(rows),)
        Scratch; its first n_params elements end up holding the gradient
        (unless the loss was not finite).
    """
    if is_float32(params):
        return train_step_typed(<float*>NULL, table, mean_loss, params, x, y, lr, workspace)
    return train_step_typed(<double*>NULL, table, mean_loss, params, x, y, lr, workspace)


cdef inline void gather_rows(const floating* source, const Py_ssize_t* rows, Py_ssize_t n_rows,
                             Py_ssize_t width, floating* target) noexcept nogil:
    """target[i] = source[rows[i]] for i < n_rows, rows of ``width`` elements."""
    cdef Py_ssize_t i
    for i in range(n_rows):
        memcpy(target + i * width, source + rows[i] * width, width * sizeof(floating))


cdef tuple fit_typed(floating* kind, cnp.ndarray table, bint mean_loss, cnp.ndarray params,
                     cnp.ndarray x, cnp.ndarray y, Py_ssize_t epochs, double lr,
                     Py_ssize_t batch_size, bint shuffle, uint64_t state, cnp.ndarray workspace,
                     cnp.ndarray x_batch, cnp.ndarray y_batch, cnp.ndarray order,
                     cnp.ndarray losses):
    cdef Architecture arch = read_architecture(table, mean_loss)
    cdef Py_ssize_t n_samples = cnp.PyArray_DIM(x, 0)
    cdef Py_ssize_t n_in = arch.sizes[0], n_out = arch.sizes[arch.n_layers]
    cdef Py_ssize_t steps_per_epoch
    if batch_size < 1 or epochs < 0:
        raise ValueError(f"batch_size must be >= 1 and epochs >= 0, got {batch_size}, {epochs}")
    steps_per_epoch = (n_samples + batch_size - 1) // batch_size
    cdef floating* p = vector_data(params, kind, arch.n_params, True)
    cdef const floating* inputs = matrix_data(x, kind, -1, n_in, False)
    cdef const floating* targets = matrix_data(y, kind, n_samples, n_out, False)
    cdef floating* scratch = vector_data(workspace, kind, 0, True)
    cdef floating* x_gathered = vector_data(x_batch, kind, n_in * batch_size if shuffle else 0, True)
    cdef floating* y_gathered = vector_data(y_batch, kind, n_out * batch_size if shuffle else 0, True)
    cdef Py_ssize_t* indices = index_data(order, n_samples)
    cdef double* step_losses = vector_data(losses, <double*>NULL, epochs * steps_per_epoch, True)
    cdef Workspace ws = carve_workspace(&arch, cnp.PyArray_SIZE(workspace))
    cdef Py_ssize_t epoch, start, rows, step = 0
    cdef const floating* x_rows
    cdef const floating* y_rows
    cdef int status = STEP_OK
    if ws.capacity < min(batch_size, n_samples):
        raise ValueError(f"workspace holds {ws.capacity} rows, batches have {batch_size}")
    with nogil:
        for epoch in range(epochs):
            if shuffle:
                shuffle_indices(indices, n_samples, &state)
            start = 0
            while start < n_samples and status == STEP_OK:
                rows = min(batch_size, n_samples - start)
                if shuffle:
                    gather_rows(inputs, indices + start, rows, n_in, x_gathered)
                    gather_rows(targets, indices + start, rows, n_out, y_gathered)
                    x_rows = x_gathered
                    y_rows = y_gathered
                else:
                    x_rows = inputs + start * n_in
                    y_rows = targets + start * n_out
                status = sgd_step(&arch, p, x_rows, y_rows, rows, &ws, scratch, <floating>lr,
                                  &step_losses[step])
                step += 1
                start += batch_size
            if status != STEP_OK:
                break
    return step, status


def fit(cnp.ndarray table, bint mean_loss, cnp.ndarray params, cnp.ndarray x, cnp.ndarray y,
        Py_ssize_t epochs, double lr, Py_ssize_t batch_size, bint shuffle, uint64_t state,
        cnp.ndarray workspace, cnp.ndarray x_batch, cnp.ndarray y_batch, cnp.ndarray order,
        cnp.ndarray losses):
    """Run ``epochs`` epochs of mini-batch SGD; return ``(steps taken, status)``.

    The loop over epochs and batches, the reshuffle, the batch gathering and
    every step run here without the GIL; nothing is allocated.

    Parameters
    ----------
    table, params, x, y, workspace
        As for ``train_step``, with the workspace sized for ``batch_size`` rows.
    epochs, batch_size : int
        ``1 <= batch_size <= n_samples``.
    lr : float
    shuffle : bool
        Reshuffle ``order`` before every epoch (Fisher-Yates, SplitMix64).
    state : int
        The shuffle generator's state.
    x_batch, y_batch : ndarray, shapes (batch_size, sizes[0]) and (batch_size, sizes[-1])
        Scratch for the gathered rows of a shuffled batch (unused, and may
        be smaller, without ``shuffle``).
    order : ndarray of intp, shape (n_samples,)
        Must hold ``arange(n_samples)``; modified (the last epoch's order).
    losses : ndarray of float64, shape (epochs * ceil(n_samples / batch_size),)
        Modified: the loss of every step, before its update.

    Returns
    -------
    steps : int
        Steps taken, counting a failing one.
    status : int
        STEP_OK, or the failure of the last step (which was not applied).
    """
    if is_float32(params):
        return fit_typed(<float*>NULL, table, mean_loss, params, x, y, epochs, lr, batch_size,
                         shuffle, state, workspace, x_batch, y_batch, order, losses)
    return fit_typed(<double*>NULL, table, mean_loss, params, x, y, epochs, lr, batch_size,
                     shuffle, state, workspace, x_batch, y_batch, order, losses)
