"""Training: one optimizer step, and whole runs of epochs in one call without the GIL."""
cimport numpy as cnp
from libc.stdint cimport uint64_t
from libc.string cimport memcpy
from cython cimport floating

from nnfast._arrays cimport index_data, is_float32, matrix_data, vector_data
from nnfast._lock cimport NetLock, readers_waiting
from nnfast._dense cimport (Architecture, Workspace, is_classification,
                            accuracy, backward_pass, backward_sgd_one_row, carve_workspace,
                            forward_pass, l2_penalty, loss_and_output_gradient, loss_sum,
                            mean_loss, read_architecture, total_weight)
from nnfast._optim cimport SGD, Hyperparameters, is_plain_sgd, optimizer_update, read_hyperparameters
from nnfast._shuffle cimport shuffle_indices
from nnfast._signals cimport SignalPoll, cancel_requested, interrupted, pending_exception, poll_start
from nnfast._status cimport LOSS_NOT_FINITE, STEP_OK, UPDATE_NOT_FINITE

cnp.import_array()

cdef int optimizer_step(const Architecture* arch, floating* params, const floating* x,
                        const floating* y, const floating* weights, Py_ssize_t rows,
                        const Workspace* ws, floating* scratch, const Hyperparameters* hyper,
                        long long step, double lr, floating* first, floating* second,
                        double* loss, double* penalty) noexcept nogil:
    """One optimizer step on ``rows`` samples, weighted by ``weights`` (NULL:
    unweighted); store the loss before it (with the L2 penalty) in ``loss[0]``
    and the penalty's part of it in ``penalty[0]``."""
    cdef double normalizer = total_weight(weights, rows)
    penalty[0] = 0
    forward_pass(arch, params, x, rows, ws.capacity, scratch + ws.deriv, scratch + ws.act,
                 scratch + ws.out)
    loss[0] = mean_loss(arch, <floating>loss_sum(arch, scratch + ws.out, y, weights, rows, normalizer,
                                                 True, 0), normalizer)
    if loss[0] - loss[0] != 0:
        return LOSS_NOT_FINITE
    if rows == 1 and is_plain_sgd(hyper) and arch.l2 == 0:
        # Online plain SGD: the update is applied during backprop, and undone
        # there if it is not finite (the gradient's place is its scratch).
        if backward_sgd_one_row(arch, params, x, ws.capacity, scratch + ws.deriv, scratch + ws.act,
                                scratch + ws.out, scratch, lr):
            return STEP_OK
        return UPDATE_NOT_FINITE
    backward_pass(arch, params, x, rows, ws.capacity, scratch + ws.deriv, scratch + ws.act,
                  scratch + ws.out, scratch, False)
    if arch.l2 != 0:
        penalty[0] = l2_penalty(arch, params, scratch, normalizer)
        loss[0] += penalty[0]
        if loss[0] - loss[0] != 0:
            return LOSS_NOT_FINITE
    return optimizer_update(hyper, step, lr, arch.n_params, scratch, params, first, second)


cdef inline void gather_rows(const floating* source, const Py_ssize_t* rows, Py_ssize_t n_rows,
                             Py_ssize_t width, floating* target) noexcept nogil:
    """target[i] = source[rows[i]] for i < n_rows, rows of ``width`` elements."""
    cdef Py_ssize_t i
    for i in range(n_rows):
        memcpy(target + i * width, source + rows[i] * width, width * sizeof(floating))


cdef run_epochs_typed(floating* kind, cnp.ndarray table, int loss, double negative_slope,
                      double l2, cnp.ndarray params, cnp.ndarray x, cnp.ndarray y, object x_val,
                      object y_val, cnp.ndarray workspace, cnp.ndarray x_batch,
                      cnp.ndarray y_batch, cnp.ndarray w_batch, object run, Py_ssize_t stop,
                      NetLock lock):
    cdef Architecture arch = read_architecture(table, loss, negative_slope, l2)
    cdef Py_ssize_t n_samples = cnp.PyArray_DIM(x, 0)
    cdef Py_ssize_t n_in = arch.sizes[0], n_out = arch.sizes[arch.n_layers]
    cdef Py_ssize_t batch_size = run.batch_size, epochs = run.epochs
    cdef bint shuffle = run.shuffle, early_stopping = run.early_stopping
    cdef bint gather = run.gather  # read the rows in run.order (shuffled or given)
    cdef Py_ssize_t patience = run.patience
    cdef double min_delta = run.min_delta
    cdef Py_ssize_t epoch = run.epoch, step = run.steps
    cdef bint has_validation = x_val is not None
    cdef bint classification = is_classification(loss)
    cdef Py_ssize_t n_val = cnp.PyArray_DIM(<cnp.ndarray?>x_val, 0) if has_validation else 0
    if batch_size < 1 or not 0 <= epoch <= stop <= epochs:
        raise ValueError(f"bad run: batch_size={batch_size}, epochs {epoch}..{stop} of {epochs}")
    cdef Py_ssize_t steps_per_epoch = (n_samples + batch_size - 1) // batch_size
    cdef floating* p = vector_data(params, kind, arch.n_params, True)
    cdef const floating* inputs = matrix_data(x, kind, -1, n_in, False)
    cdef const floating* targets = matrix_data(y, kind, n_samples, n_out, False)
    cdef const floating* val_inputs = (
        matrix_data(<cnp.ndarray?>x_val, kind, -1, n_in, False) if has_validation else NULL)
    cdef const floating* val_targets = (
        matrix_data(<cnp.ndarray?>y_val, kind, n_val, n_out, False) if has_validation else NULL)
    cdef floating* scratch = vector_data(workspace, kind, 0, True)
    cdef floating* x_gathered = vector_data(x_batch, kind, n_in * batch_size if gather else 0, True)
    cdef floating* y_gathered = vector_data(y_batch, kind, n_out * batch_size if gather else 0, True)
    cdef bint weighted = run.sample_weight is not None
    cdef const floating* sample_weights = (
        vector_data(<cnp.ndarray?>run.sample_weight, kind, n_samples, False) if weighted else NULL)
    cdef floating* w_gathered = vector_data(w_batch, kind, batch_size if gather and weighted else 0, True)
    cdef const floating* w_rows = NULL
    # One order for every epoch, or (2-D) one per epoch: epoch_order points at the current one.
    cdef bint order_per_epoch = cnp.PyArray_NDIM(<cnp.ndarray?>run.order) == 2
    cdef Py_ssize_t* order = index_data(<cnp.ndarray?>run.order, n_samples * (epochs if order_per_epoch else 1))
    cdef Py_ssize_t* epoch_order = order
    cdef cnp.ndarray state_array = run.shuffle_state, steps_array = run.optimizer_steps
    if (cnp.PyArray_TYPE(state_array) != cnp.NPY_UINT64 or cnp.PyArray_SIZE(state_array) != 1
            or cnp.PyArray_TYPE(steps_array) != cnp.NPY_INT64 or cnp.PyArray_SIZE(steps_array) != 1
            or not cnp.PyArray_ISWRITEABLE(state_array) or not cnp.PyArray_ISWRITEABLE(steps_array)):
        raise ValueError("run.shuffle_state must be a writeable uint64[1] and run.optimizer_steps "
                         "a writeable int64[1]")
    cdef uint64_t* shuffle_state = <uint64_t*>cnp.PyArray_DATA(state_array)
    cdef cnp.ndarray cancel_array = run.cancel
    if cnp.PyArray_TYPE(cancel_array) != cnp.NPY_UINT8 or cnp.PyArray_SIZE(cancel_array) != 1:
        raise ValueError("run.cancel must be a uint8[1]")
    cdef const unsigned char* cancel = <const unsigned char*>cnp.PyArray_DATA(cancel_array)
    cdef const double* learning_rates = vector_data(<cnp.ndarray?>run.learning_rates, <double*>NULL, epochs, False)
    cdef Hyperparameters hyper = read_hyperparameters(
        vector_data(<cnp.ndarray?>run.optimizer.hyperparameters(), <double*>NULL, 8, False))
    cdef long long* optimizer_steps = <long long*>cnp.PyArray_DATA(steps_array)
    # SGD keeps one moment buffer with momentum and none without; Adam two.
    cdef cnp.ndarray buffers = run.optimizer.buffers
    cdef Py_ssize_t n_moments = 2 if hyper.code != SGD else (1 if hyper.momentum != 0 else 0)
    if buffers is None or cnp.PyArray_NDIM(buffers) != 2 or cnp.PyArray_DIM(buffers, 0) != n_moments:
        raise ValueError(f"run.optimizer.buffers must have {n_moments} rows, got shape {(<object>buffers).shape}")
    cdef floating* first = vector_data(buffers, kind, n_moments * arch.n_params, True)
    cdef floating* second = first + arch.n_params
    if n_moments == 0:
        first = second = NULL
    elif n_moments == 1:
        second = NULL
    cdef double* step_loss = vector_data(<cnp.ndarray?>run.step_loss, <double*>NULL, epochs * steps_per_epoch, True)
    cdef double* epoch_loss = vector_data(<cnp.ndarray?>run.epoch_loss, <double*>NULL, epochs, True)
    cdef double* epoch_penalty = vector_data(<cnp.ndarray?>run.epoch_penalty, <double*>NULL, epochs, True)
    cdef Py_ssize_t val_epochs = epochs if has_validation else 0
    cdef double* val_loss = vector_data(<cnp.ndarray?>run.val_loss, <double*>NULL, val_epochs, True)
    cdef double* val_accuracy = vector_data(<cnp.ndarray?>run.val_accuracy, <double*>NULL, val_epochs, True)
    cdef double* progress = vector_data(<cnp.ndarray?>run.progress, <double*>NULL, 3, True)
    cdef floating* best_params = (
        vector_data(<cnp.ndarray?>run.best_params, kind, arch.n_params, True) if early_stopping else NULL)
    cdef Workspace ws = carve_workspace(&arch, cnp.PyArray_SIZE(workspace), True)
    cdef Py_ssize_t start, rows
    cdef const floating* x_rows
    cdef const floating* y_rows
    cdef double weighted_loss, weighted_penalty, penalty, monitored
    cdef int status = STEP_OK
    cdef bint stopped = False, modifying
    cdef SignalPoll poll
    if ws.capacity < max(min(batch_size, n_samples), n_val):
        raise ValueError(f"workspace holds {ws.capacity} rows, fewer than a batch or the validation set")
    poll_start(&poll)
    with nogil:
        modifying = lock.modify_polling(&poll)
        while modifying and epoch < stop and status == STEP_OK and not stopped:
            if shuffle:
                shuffle_indices(order, n_samples, shuffle_state)
            epoch_order = order + epoch * n_samples if order_per_epoch else order
            weighted_loss = weighted_penalty = 0
            start = 0
            while start < n_samples:
                rows = min(batch_size, n_samples - start)
                if gather:
                    gather_rows(inputs, epoch_order + start, rows, n_in, x_gathered)
                    gather_rows(targets, epoch_order + start, rows, n_out, y_gathered)
                    x_rows = x_gathered
                    y_rows = y_gathered
                    if weighted:
                        gather_rows(sample_weights, epoch_order + start, rows, 1, w_gathered)
                        w_rows = w_gathered
                else:
                    x_rows = inputs + start * n_in
                    y_rows = targets + start * n_out
                    if weighted:
                        w_rows = sample_weights + start
                status = optimizer_step(&arch, p, x_rows, y_rows, w_rows, rows, &ws, scratch, &hyper,
                                        optimizer_steps[0] + 1, learning_rates[epoch], first,
                                        second, &step_loss[step], &penalty)
                step += 1
                if status != STEP_OK:
                    break
                optimizer_steps[0] += 1
                weighted_loss += step_loss[step - 1] * rows
                weighted_penalty += penalty * rows
                start += batch_size
                # Between two steps: readers may read, and Ctrl-C may stop the run
                # (after the epoch's bookkeeping, if that was its last step).
                if readers_waiting(lock) and not lock.let_readers_in(&poll):
                    modifying = False  # Ctrl-C meanwhile: no more steps
                if not modifying or (start < n_samples and (interrupted(&poll) or cancel_requested(cancel))):
                    break
            if start < n_samples:  # a step failed, or Ctrl-C came mid-epoch
                break
            epoch_loss[epoch] = weighted_loss / n_samples
            epoch_penalty[epoch] = weighted_penalty / n_samples
            if has_validation:
                forward_pass(&arch, p, val_inputs, n_val, ws.capacity, <floating*>NULL,
                             scratch + ws.act, scratch + ws.out)
                val_loss[epoch] = loss_and_output_gradient(&arch, scratch + ws.out, val_targets,
                                                           <floating*>NULL, n_val, False)
                if classification:
                    val_accuracy[epoch] = accuracy(&arch, scratch + ws.out, val_targets, n_val)
            epoch += 1
            if early_stopping:
                # progress = [best monitored loss, epochs without improvement, best epoch]
                monitored = val_loss[epoch - 1] if has_validation else epoch_loss[epoch - 1]
                if monitored < progress[0] - min_delta:
                    progress[0] = monitored
                    progress[1] = 0
                    progress[2] = epoch - 1
                    memcpy(best_params, p, arch.n_params * sizeof(floating))
                elif progress[1] + 1 >= patience:
                    stopped = True
                else:
                    progress[1] += 1
            if poll.raised or interrupted(&poll) or cancel_requested(cancel):
                break
        if modifying:
            lock.release_modify()
    error = pending_exception() if poll.raised else None
    run.epoch = epoch
    run.steps = step
    run.status = status
    run.stopped = stopped
    run.cancelled = epoch < stop and status == STEP_OK and not stopped and cancel_requested(cancel)
    if error is not None:
        raise error


def run_epochs(cnp.ndarray table, int loss, double negative_slope, double l2, cnp.ndarray params,
               cnp.ndarray x, cnp.ndarray y, object x_val, object y_val, cnp.ndarray workspace,
               cnp.ndarray x_batch, cnp.ndarray y_batch, cnp.ndarray w_batch, object run,
               Py_ssize_t stop, NetLock lock not None):
    """Run epochs ``run.epoch .. stop - 1`` of a training run without the GIL.

    Every epoch reshuffles (if ``run.shuffle``), takes one optimizer step per
    batch, records the losses, evaluates the validation data (if any) and
    applies early stopping (if ``run.early_stopping``), exactly as
    ``nnfast.reference.Net._run_epochs`` specifies; nothing is allocated.

    Parameters
    ----------
    table, loss, negative_slope, l2, params, x, y
        As for ``nnfast._fastpath.FastPath``, and the training data.
    x_val, y_val : ndarray or None
        Validation data, shaped like ``x`` and ``y``.
    workspace : ndarray
        Scratch for ``max(batch_size, n_val)`` rows.
    x_batch, y_batch, w_batch : ndarray, shapes (batch_size, sizes[0]), (batch_size, sizes[-1])
            and (batch_size,)
        Scratch for the rows (and sample weights) of a batch gathered in
        ``run.order`` (unused, and may be smaller, unless ``run.gather``;
        ``w_batch`` also without weights).
    run : nnfast._training.TrainingRun
        Its ``sample_weight`` (None, or one per row of ``x``) weighs the
        batches. Its arrays (order, shuffle state, learning rates, optimizer state and
        step count, loss records, early-stopping progress, best parameters)
        are updated in place, then its counters: ``epoch``, ``steps``,
        ``status`` (STEP_OK, or how the last step failed; that step was not
        applied), ``stopped`` (early stopping fired) and ``cancelled``
        (another thread set ``run.cancel[0]``, and the run stopped after a
        step, before ``stop``).
    stop : int
        The epoch to stop before.
    lock : nnfast._lock.NetLock
        The net's lock, which the calling thread owns. The run modifies
        ``params`` only while modifying under it, lets waiting readers in
        between two steps, and stops after a step when a signal handler
        raises (Ctrl-C), updating ``run`` and then raising that exception.
    """
    if is_float32(params):
        run_epochs_typed(<float*>NULL, table, loss, negative_slope, l2, params, x, y, x_val, y_val,
                         workspace, x_batch, y_batch, w_batch, run, stop, lock)
    else:
        run_epochs_typed(<double*>NULL, table, loss, negative_slope, l2, params, x, y, x_val, y_val,
                         workspace, x_batch, y_batch, w_batch, run, stop, lock)
