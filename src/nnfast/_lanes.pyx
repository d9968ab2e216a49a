"""Training many tiny nets at once: one member per SIMD lane.

At the seed's size a step is a few dozen multiply-adds: one net cannot fill
a vector register, and the step's fixed costs (choosing kernels, loop
control, polling for signals) outweigh its arithmetic. Here LANES members
of one architecture train side by side: every parameter, activation and
gradient is stored as LANES consecutive values, one per member, and the
arithmetic (``nnfast._lane_math``) works on vectors of them. Blocks of
LANES members run one after another, each block's state staying in L1;
this module does the bookkeeping of their runs.

Each lane computes exactly what ``nnfast._fit.run_epochs`` computes for
its member alone, operation for operation: the tiny products' summation
orders (``nnfast._tiny``), the losses of ``nnfast._dense.loss_sum`` and
``mean_loss``, the L2 penalty and the updates of ``nnfast._optim``. So a
member's parameters, losses and optimizer state are bit-identical to its
``Net.fit`` (tests/test_lanes.py checks it). The lanes are independent:
one that diverges stops there (its last step is not applied) and the
others go on.

What it covers is what ``nnfast._lockstep.plan`` checks before an
ensemble calls it: every layer at most TINY_WIDTH wide, batches of
2 to TINY_ROWS rows, the squared-error losses, SGD (momentum, Nesterov,
weight decay, either style), Adam and AdamW; no validation data, no early
stopping, no per-epoch orders.
"""
cimport numpy as cnp
import numpy as np
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.math cimport pow, sqrt
from libc.stdint cimport uint64_t
from cython cimport floating

from nnfast._arrays cimport index_data, is_float32, matrix_data, vector_data
from nnfast._dense cimport (Architecture, LEAKY_RELU, MSE, RELU, SIGMOID, SQUARED_ERROR, SSE, TANH,
                            read_architecture)
from nnfast._lane_math cimport *
from nnfast._optim cimport ADAMW, SGD, Hyperparameters, read_hyperparameters
from nnfast._shuffle cimport shuffle_indices
from nnfast._signals cimport SignalPoll, cancel_requested, interrupted, pending_exception, poll_start
from nnfast._status cimport LOSS_NOT_FINITE, STEP_OK, UPDATE_NOT_FINITE
from nnfast._tiny cimport TINY_ROWS, TINY_WIDTH

cnp.import_array()

# The C side spells out nnfast._dense's codes.
assert (LANE_RELU, LANE_LEAKY_RELU, LANE_TANH, LANE_SIGMOID, LANE_SSE, LANE_MSE, LANE_SQUARED_ERROR, C_LANES) == (
    RELU, LEAKY_RELU, TANH, SIGMOID, SSE, MSE, SQUARED_ERROR, LANES)

# For nnfast/_lockstep.py: the members per block, and the nets and batches the lanes take.
LANE_COUNT = LANES
MAX_WIDTH = TINY_WIDTH
MAX_ROWS = TINY_ROWS


cdef struct Member:
    # One member's records (a row of nnfast._lockstep.LaneRecords) and optimizer, as pointers.
    double* step_loss
    double* epoch_loss
    double* epoch_penalty
    const double* learning_rates
    Py_ssize_t* order
    uint64_t* shuffle_state
    long long* optimizer_steps
    const void* sample_weight     # of the net's dtype; NULL if unweighted
    void* params
    void* first                   # moment buffers, NULL where the optimizer keeps none
    void* second
    Hyperparameters hyper
    Py_ssize_t epoch
    Py_ssize_t steps
    int status
    bint active                   # still training (a real member that has not failed)


cdef struct Block:
    # Scratch of one block, every value LANES wide (see the module docstring).
    void* params
    void* grad
    void* first
    void* second
    void* saved       # the moments before the last update, for restore_lane
    void* saved2
    void* x
    void* y
    void* w
    void* act         # hidden activations, layer after layer, each (rows, width)
    void* deriv       # their derivatives, laid out alike
    void* out         # the output layer, then the gradient with respect to it
    Py_ssize_t* hidden_offset   # start of each hidden layer's block in act and deriv


cdef inline void lanes_forward(const Architecture* arch, const floating* params, const floating* x,
                               Py_ssize_t rows, const Block* block) noexcept nogil:
    if floating is double:
        lanes_forward_d(arch.n_layers, arch.sizes, arch.weight_offsets, arch.bias_offsets, arch.activations,
                        arch.negative_slope, rows, params, x, <double*>block.act, <double*>block.deriv,
                        block.hidden_offset, <double*>block.out)
    else:
        lanes_forward_s(arch.n_layers, arch.sizes, arch.weight_offsets, arch.bias_offsets, arch.activations,
                        <float>arch.negative_slope, rows, params, x, <float*>block.act, <float*>block.deriv,
                        block.hidden_offset, <float*>block.out)


cdef inline void lanes_loss(const Architecture* arch, floating* out, const floating* y, const floating* w,
                            Py_ssize_t rows, double* loss, double* normalizer) noexcept nogil:
    if floating is double:
        lanes_loss_d(arch.loss, arch.sizes[arch.n_layers], rows, out, y, w, loss, normalizer)
    else:
        lanes_loss_s(arch.loss, arch.sizes[arch.n_layers], rows, out, y, w, loss, normalizer)


cdef inline void lanes_backward(const Architecture* arch, const floating* params, const floating* x,
                                Py_ssize_t rows, const Block* block) noexcept nogil:
    if floating is double:
        lanes_backward_d(arch.n_layers, arch.sizes, arch.weight_offsets, arch.bias_offsets, rows, params, x,
                         <double*>block.act, <double*>block.deriv, block.hidden_offset, <double*>block.out,
                         <double*>block.grad)
    else:
        lanes_backward_s(arch.n_layers, arch.sizes, arch.weight_offsets, arch.bias_offsets, rows, params, x,
                         <float*>block.act, <float*>block.deriv, block.hidden_offset, <float*>block.out,
                         <float*>block.grad)


cdef inline void lanes_l2(const Architecture* arch, const floating* params, floating* grad,
                          const double* normalizer, double* penalty) noexcept nogil:
    if floating is double:
        lanes_l2_d(arch.n_layers, arch.sizes, arch.weight_offsets, arch.l2, params, grad, normalizer, penalty)
    else:
        lanes_l2_s(arch.n_layers, arch.sizes, arch.weight_offsets, arch.l2, params, grad, normalizer, penalty)


cdef void lanes_update(const Member* members, const double* lr, Py_ssize_t n, floating* factors,
                       const unsigned char* has_momentum, const Block* block, const unsigned char* apply,
                       unsigned char* finite) noexcept nogil:
    """One optimizer update (nnfast._optim.optimizer_update) of the lanes ``apply``
    marks, and whether each lane's new values are all finite, into ``finite``.
    The old parameters are left in block.grad and the old moments in
    block.saved and block.saved2, for ``restore_lane``. ``factors`` is scratch
    for 9 * LANES values; the per-lane scalars are rounded as nnfast._optim
    rounds them."""
    cdef floating* grad = <floating*>block.grad
    cdef floating* params = <floating*>block.params
    cdef floating* first = <floating*>block.first
    cdef floating* second = <floating*>block.second
    cdef floating* saved = <floating*>block.saved
    cdef floating* saved2 = <floating*>block.saved2
    cdef Py_ssize_t l
    cdef const Hyperparameters* hyper
    cdef double power1 = 0, power2 = 0, step, last_step = -1, last_beta1 = -1, last_beta2 = -1
    cdef bint sklearn_style = members[0].hyper.sklearn_style, decoupled
    if members[0].hyper.code == SGD:
        for l in range(LANES):
            factors[l] = lr[l]
            factors[LANES + l] = members[l].hyper.weight_decay
            factors[2 * LANES + l] = members[l].hyper.momentum
        if floating is double:
            lanes_sgd_d(n, factors, factors + LANES, factors + 2 * LANES, has_momentum, members[0].hyper.nesterov,
                        sklearn_style, grad, params, first, saved, apply, finite)
        else:
            lanes_sgd_s(n, factors, factors + LANES, factors + 2 * LANES, has_momentum, members[0].hyper.nesterov,
                        sklearn_style, grad, params, first, saved, apply, finite)
        return
    for l in range(LANES):
        hyper = &members[l].hyper
        step = members[l].optimizer_steps[0] + 1
        # pow costs more than a lane's whole update; the lanes mostly share it.
        if step != last_step or hyper.beta1 != last_beta1 or hyper.beta2 != last_beta2:
            power1 = pow(hyper.beta1, step)
            power2 = pow(hyper.beta2, step)
            last_step, last_beta1, last_beta2 = step, hyper.beta1, hyper.beta2
        decoupled = hyper.code == ADAMW
        factors[l] = 1 - lr[l] * hyper.weight_decay if decoupled else 1                # shrink
        factors[LANES + l] = 0 if decoupled else hyper.weight_decay                     # decay
        factors[2 * LANES + l] = hyper.beta1
        factors[3 * LANES + l] = hyper.beta2
        factors[4 * LANES + l] = hyper.eps
        factors[5 * LANES + l] = 1 - hyper.beta1
        factors[6 * LANES + l] = 1 - hyper.beta2
        if sklearn_style:
            factors[7 * LANES + l] = -(lr[l] * sqrt(1 - power2) / (1 - power1))
            factors[8 * LANES + l] = 1
        else:
            factors[7 * LANES + l] = lr[l] / (1 - power1)
            factors[8 * LANES + l] = sqrt(1 - power2)
    if floating is double:
        lanes_adam_d(n, sklearn_style, factors, grad, params, first, second, saved, saved2, apply, finite)
    else:
        lanes_adam_s(n, sklearn_style, factors, grad, params, first, second, saved, saved2, apply, finite)


cdef void restore_lane(floating* params, const Block* block, Py_ssize_t lane, Py_ssize_t n,
                       bint has_first, bint has_second) noexcept nogil:
    """Put back lane ``lane``'s parameters (block.params) and moments from before ``lanes_update``."""
    cdef Py_ssize_t e, k
    for e in range(n):
        k = e * LANES + lane
        params[k] = (<floating*>block.grad)[k]
        if has_first:
            (<floating*>block.first)[k] = (<floating*>block.saved)[k]
        if has_second:
            (<floating*>block.second)[k] = (<floating*>block.saved2)[k]


cdef void load_batch(const Architecture* arch, const Member* members, const floating* x,
                     const floating* y, Py_ssize_t start, Py_ssize_t rows, bint shuffled,
                     const Block* block) noexcept nogil:
    """Put each lane's rows ``start .. start + rows`` of its order (``shuffled``) or of
    the data into block.x, block.y and block.w."""
    cdef Py_ssize_t i, k, l, row, n_in = arch.sizes[0], n_out = arch.sizes[arch.n_layers]
    cdef floating* xb = <floating*>block.x
    cdef floating* yb = <floating*>block.y
    cdef floating* wb = <floating*>block.w
    for i in range(rows):
        for l in range(LANES):
            row = members[l].order[start + i] if shuffled else start + i
            for k in range(n_in):
                xb[(i * n_in + k) * LANES + l] = x[row * n_in + k]
            for k in range(n_out):
                yb[(i * n_out + k) * LANES + l] = y[row * n_out + k]
            if members[l].sample_weight != NULL:
                wb[i * LANES + l] = (<const floating*>members[l].sample_weight)[row]


cdef bint run_block(const Architecture* arch, Member* members, const floating* x, const floating* y,
                    Py_ssize_t n_samples, Py_ssize_t batch_size, Py_ssize_t stop, bint shuffle,
                    bint weighted, const Block* block, SignalPoll* poll,
                    const unsigned char* cancel) noexcept nogil:
    """Run the epochs of one block's members (all at the same epoch and step) up to
    ``stop``; return False if a signal handler raised or ``cancel`` was set."""
    cdef Py_ssize_t l, start, rows, epoch = members[0].epoch, n_params = arch.n_params
    cdef Py_ssize_t loaded = -1
    cdef floating* params = <floating*>block.params
    cdef floating* grad = <floating*>block.grad
    cdef double loss[LANES]
    cdef double penalty[LANES]
    cdef double normalizer[LANES]
    cdef double lr[LANES]
    cdef double weighted_loss[LANES]
    cdef double weighted_penalty[LANES]
    cdef bint loss_finite[LANES]
    cdef unsigned char update_finite[LANES]
    cdef unsigned char apply[LANES]
    cdef unsigned char has_momentum[LANES]
    cdef floating factors[9 * LANES]
    cdef bint any_active = True, adam
    for l in range(LANES):
        has_momentum[l] = members[l].hyper.momentum != 0
    while epoch < stop and any_active:
        for l in range(LANES):
            if shuffle and members[l].active:
                shuffle_indices(members[l].order, n_samples, members[l].shuffle_state)
            weighted_loss[l] = weighted_penalty[l] = 0
            lr[l] = members[l].learning_rates[epoch]
        start = 0
        while start < n_samples:
            rows = min(batch_size, n_samples - start)
            if shuffle or start != loaded:  # in data order, a single batch is loaded once
                load_batch(arch, members, x, y, start, rows, shuffle, block)
                loaded = start
            lanes_forward(arch, params, <floating*>block.x, rows, block)
            lanes_loss(arch, <floating*>block.out, <floating*>block.y,
                       <floating*>block.w if weighted else NULL, rows, loss, normalizer)
            lanes_backward(arch, params, <floating*>block.x, rows, block)
            for l in range(LANES):
                penalty[l] = 0
            if arch.l2 != 0:
                lanes_l2(arch, params, grad, normalizer, penalty)
            for l in range(LANES):
                # Both of run_epochs' loss checks: the loss alone, then with the penalty.
                loss_finite[l] = loss[l] - loss[l] == 0 and loss[l] + penalty[l] - (loss[l] + penalty[l]) == 0
            for l in range(LANES):
                apply[l] = members[l].active and loss_finite[l]
            lanes_update(members, lr, n_params, factors, has_momentum, block, apply, update_finite)
            for l in range(LANES):
                if apply[l] and not update_finite[l]:
                    adam = members[l].hyper.code != SGD
                    restore_lane(params, block, l, n_params, adam or has_momentum[l] != 0, adam)
                    apply[l] = False
            any_active = False
            for l in range(LANES):
                if not members[l].active:
                    continue
                # What run_epochs records: the loss, with the penalty unless the loss alone failed.
                members[l].step_loss[members[l].steps] = (
                    loss[l] + penalty[l] if arch.l2 != 0 and loss[l] - loss[l] == 0 else loss[l])
                members[l].steps += 1
                if not apply[l]:
                    members[l].status = UPDATE_NOT_FINITE if loss_finite[l] else LOSS_NOT_FINITE
                    members[l].active = False
                    continue
                members[l].optimizer_steps[0] += 1
                weighted_loss[l] += members[l].step_loss[members[l].steps - 1] * rows
                weighted_penalty[l] += penalty[l] * rows
                any_active = True
            if not any_active:
                return True
            start += batch_size
            if start < n_samples and (interrupted(poll) or cancel_requested(cancel)):
                return False
        for l in range(LANES):
            if members[l].active:
                members[l].epoch_loss[epoch] = weighted_loss[l] / n_samples
                members[l].epoch_penalty[epoch] = weighted_penalty[l] / n_samples
                members[l].epoch = epoch + 1
        epoch += 1
        if interrupted(poll) or cancel_requested(cancel):
            return False
    return True


cdef inline void* moment_row(object buffers, Py_ssize_t row, floating* kind, Py_ssize_t n_params) except? NULL:
    """Row ``row`` of an optimizer's moment buffers, or NULL if it keeps fewer."""
    if buffers is None or (<cnp.ndarray?>buffers).shape[0] <= row:
        return NULL
    return vector_data(<cnp.ndarray>buffers, kind, (row + 1) * n_params, True) + row * n_params


cdef void* record_rows(object array, int typenum, Py_ssize_t rows, Py_ssize_t cols) except NULL:
    """Data of a writeable C-contiguous record array of ``typenum`` with ``rows`` rows of
    ``cols`` values (one per member)."""
    if (not isinstance(array, cnp.ndarray) or cnp.PyArray_TYPE(array) != typenum
            or not cnp.PyArray_IS_C_CONTIGUOUS(array) or not cnp.PyArray_ISBEHAVED(array)
            or cnp.PyArray_NDIM(array) < 1 or cnp.PyArray_DIM(array, 0) != rows
            or cnp.PyArray_SIZE(array) != rows * cols):
        raise ValueError(f"the records must be writeable C-contiguous arrays of {rows} rows of {cols}, "
                         f"got {array!r:.80}")
    return cnp.PyArray_DATA(array)


cdef fit_lanes_typed(floating* kind, cnp.ndarray table, int loss, double negative_slope, double l2,
                     cnp.ndarray x, cnp.ndarray y, list params, list locks, list optimizers, records,
                     Py_ssize_t stop):
    cdef Architecture arch = read_architecture(table, loss, negative_slope, l2)
    cdef Py_ssize_t n_members = len(params), n_params = arch.n_params
    cdef Py_ssize_t n_in = arch.sizes[0], n_out = arch.sizes[arch.n_layers]
    cdef Py_ssize_t n_samples = cnp.PyArray_DIM(x, 0)
    cdef Py_ssize_t i, l, layer, offset, b, m, n_blocks = (n_members + LANES - 1) // LANES
    if n_members < 1 or len(locks) != n_members or len(optimizers) != n_members:
        raise ValueError("give one parameter vector, lock and optimizer per member, and at least one member")
    if arch.max_width > TINY_WIDTH or not (loss == SSE or loss == MSE or loss == SQUARED_ERROR):
        raise ValueError(f"the lanes take nets at most {TINY_WIDTH} wide with a squared-error loss")
    cdef Py_ssize_t batch_size = records.batch_size, epochs = records.epochs
    cdef Py_ssize_t steps_per_epoch = records.steps_per_epoch
    cdef bint shuffle = records.shuffle
    cdef list learning_rates = records.learning_rates
    weights = records.sample_weight
    cdef bint weighted = weights is not None
    cdef Py_ssize_t rows = min(batch_size, n_samples)
    cdef long long* counters = <long long*>record_rows(records.counters, cnp.NPY_INT64, n_members, 3)
    cdef Py_ssize_t epoch = counters[0]
    if not (2 <= rows <= TINY_ROWS and n_samples % batch_size != 1 and 0 <= epoch <= stop <= epochs
            and steps_per_epoch == (n_samples + batch_size - 1) // batch_size):
        raise ValueError(f"the lanes take batches of 2 to {TINY_ROWS} rows, got batch_size={batch_size} "
                         f"for {n_samples} samples, epochs {epoch}..{stop} of {epochs}")
    if len(learning_rates) != n_members or (weighted and len(weights) != n_members):
        raise ValueError("give one learning rate schedule (and sample weight vector, if any) per member")
    cdef double* step_loss = <double*>record_rows(records.step_loss, cnp.NPY_DOUBLE, n_members,
                                                  epochs * steps_per_epoch)
    cdef double* epoch_loss = <double*>record_rows(records.epoch_loss, cnp.NPY_DOUBLE, n_members, epochs)
    cdef double* epoch_penalty = <double*>record_rows(records.epoch_penalty, cnp.NPY_DOUBLE, n_members, epochs)
    cdef Py_ssize_t* orders = <Py_ssize_t*>record_rows(records.order, cnp.NPY_INTP, n_members, n_samples)
    cdef uint64_t* shuffle_states = <uint64_t*>record_rows(records.shuffle_state, cnp.NPY_UINT64, n_members, 1)
    cdef const floating* inputs = matrix_data(x, kind, -1, n_in, False)
    cdef const floating* targets = matrix_data(y, kind, n_samples, n_out, False)
    cdef Member* members = <Member*>PyMem_Malloc(n_blocks * LANES * sizeof(Member))
    if members == NULL:
        raise MemoryError()
    cdef Block block
    cdef SignalPoll poll
    cdef bint finished = True
    cdef cnp.ndarray cancel_array = records.cancel
    cdef const unsigned char* cancel
    cdef floating* lane_values
    cdef floating* member_values
    cdef Py_ssize_t* hidden_offset
    error = None
    # The step counters the blocks advance without the GIL, held here: another thread
    # setting an optimizer's step_count meanwhile replaces its counter but cannot free this one.
    cdef list step_counters = []
    try:
        for m in range(n_members):
            optimizer = optimizers[m]
            steps_array = optimizer._step_counter
            step_counters.append(steps_array)
            if (counters[3 * m] != epoch or cnp.PyArray_TYPE(steps_array) != cnp.NPY_INT64
                    or cnp.PyArray_SIZE(steps_array) != 1 or not cnp.PyArray_ISWRITEABLE(steps_array)):
                raise ValueError("the members' runs must all be at one epoch, and each optimizer's step "
                                 "counter a writeable int64[1]")
            members[m].step_loss = step_loss + m * epochs * steps_per_epoch
            members[m].epoch_loss = epoch_loss + m * epochs
            members[m].epoch_penalty = epoch_penalty + m * epochs
            members[m].learning_rates = vector_data(<cnp.ndarray?>learning_rates[m], <double*>NULL, epochs, False)
            members[m].order = orders + m * n_samples
            members[m].shuffle_state = shuffle_states + m
            members[m].optimizer_steps = <long long*>cnp.PyArray_DATA(steps_array)
            members[m].sample_weight = (
                vector_data(<cnp.ndarray?>weights[m], kind, n_samples, False) if weighted else NULL)
            members[m].params = vector_data(<cnp.ndarray?>params[m], kind, n_params, True)
            members[m].hyper = read_hyperparameters(
                vector_data(<cnp.ndarray?>optimizer.hyperparameters(), <double*>NULL, 8, False))
            members[m].first = moment_row(optimizer.buffers, 0, kind, n_params)
            members[m].second = moment_row(optimizer.buffers, 1, kind, n_params)
            if (members[m].hyper.code != members[0].hyper.code
                    or members[m].hyper.nesterov != members[0].hyper.nesterov
                    or members[m].hyper.sklearn_style != members[0].hyper.sklearn_style):
                raise ValueError("the members' optimizers must be of one kind, nesterov and style")
            if (members[m].second == NULL if members[m].hyper.code != SGD else
                    members[m].first == NULL and members[m].hyper.momentum != 0):
                raise ValueError("a member's optimizer has no moment buffers: bind it first")
            members[m].epoch = epoch
            members[m].steps = counters[3 * m + 1]
            members[m].status = STEP_OK
            members[m].active = True
        for m in range(n_members, n_blocks * LANES):
            # Lanes past the last member compute on member 0's data and record nothing.
            members[m] = members[0]
            members[m].active = False
        if cnp.PyArray_TYPE(cancel_array) != cnp.NPY_UINT8 or cnp.PyArray_SIZE(cancel_array) != 1:
            raise ValueError("records.cancel must be a uint8[1]")
        cancel = <const unsigned char*>cnp.PyArray_DATA(cancel_array)
        # Every buffer of a block, each LANES values per element.
        offset = 0
        offsets = np.zeros(arch.n_layers, dtype=np.intp)
        hidden_offset = index_data(<cnp.ndarray>offsets, arch.n_layers)
        for layer in range(1, arch.n_layers):
            hidden_offset[layer - 1] = offset  # in lane vectors
            offset += rows * arch.sizes[layer]
        block.hidden_offset = hidden_offset
        # Aligned to 64 bytes, as the lane vectors must be: 16 values to spare for it.
        scratch = np.zeros(LANES * (6 * n_params + rows * (n_in + 2 * n_out + 1) + 2 * offset) + 16,
                           dtype=np.float32 if floating is float else np.float64)
        lane_values = vector_data(<cnp.ndarray>scratch, kind, 0, True)
        lane_values += (-(<size_t>lane_values) % 64) // sizeof(floating)
        block.params = lane_values
        block.grad = lane_values + LANES * n_params
        block.first = lane_values + 2 * LANES * n_params
        block.second = lane_values + 3 * LANES * n_params
        block.saved = lane_values + 4 * LANES * n_params
        block.saved2 = lane_values + 5 * LANES * n_params
        block.x = lane_values + 6 * LANES * n_params
        block.y = <floating*>block.x + LANES * rows * n_in
        block.w = <floating*>block.y + LANES * rows * n_out
        block.out = <floating*>block.w + LANES * rows
        block.act = <floating*>block.out + LANES * rows * n_out
        block.deriv = <floating*>block.act + LANES * offset
        poll_start(&poll)
        for b in range(n_blocks):
            for l in range(LANES):
                copy_lane(members[b * LANES + l].params, <floating*>block.params, l, n_params, True)
                copy_lane(members[b * LANES + l].first, <floating*>block.first, l, n_params, True)
                copy_lane(members[b * LANES + l].second, <floating*>block.second, l, n_params, True)
            with nogil:
                finished = run_block(&arch, members + b * LANES, inputs, targets, n_samples, batch_size, stop,
                                     shuffle, weighted, &block, &poll, cancel)
            if poll.raised and error is None:
                # Taken now: the Python calls below must not run with it pending.
                error = pending_exception()
            for l in range(min(LANES, n_members - b * LANES)):
                m = b * LANES + l
                with locks[m].writing():  # readers must not see a half-copied vector
                    copy_lane(members[m].params, <floating*>block.params, l, n_params, False)
                copy_lane(members[m].first, <floating*>block.first, l, n_params, False)
                copy_lane(members[m].second, <floating*>block.second, l, n_params, False)
            if not finished:
                break
        for m in range(n_members):
            counters[3 * m] = members[m].epoch
            counters[3 * m + 1] = members[m].steps
            counters[3 * m + 2] = members[m].status
    finally:
        PyMem_Free(members)
    if error is not None:
        raise error
    return finished


cdef inline void copy_lane(void* member, floating* lanes, Py_ssize_t lane, Py_ssize_t n,
                           bint into_lanes) noexcept:
    """Copy a member's vector of ``n`` values into lane ``lane`` of ``lanes`` (zeros
    where it has none), or back."""
    cdef Py_ssize_t i
    cdef floating* values = <floating*>member
    if into_lanes:
        for i in range(n):
            lanes[i * LANES + lane] = values[i] if values != NULL else 0
    elif values != NULL:
        for i in range(n):
            values[i] = lanes[i * LANES + lane]


def fit_lanes(cnp.ndarray table, int loss, double negative_slope, double l2, cnp.ndarray x,
              cnp.ndarray y, list params, list locks, list optimizers, records, Py_ssize_t stop):
    """Run the members' epochs up to ``stop``, LANES members at a time.

    Member ``i`` ends as ``nnfast._fit.run_epochs`` would leave it, alone:
    its parameters ``params[i]``, its optimizer's state and step count, and
    row ``i`` of the records (its status says how a failed step failed; that
    member stopped there). Blocks of LANES members run one after another,
    each without the GIL.

    Parameters
    ----------
    table, loss, negative_slope, l2
        The members' common architecture, as for ``nnfast._fit.run_epochs``:
        every layer at most TINY_WIDTH wide, loss ``sse``, ``mse`` or
        ``squared_error``.
    x, y : ndarray
        The training data, shared by the members, of the nets' dtype.
    params : list of ndarray
        Each member's parameter vector, written (under its lock) after its
        block has run.
    locks : list of nnfast._lock.NetLock
        Each member's lock, which the calling thread owns.
    optimizers : list of nnfast.optimizers.Optimizer
        Each member's optimizer, bound to its net: of one kind, Nesterov
        setting and style. Their state and step counts advance in place.
    records : nnfast._lockstep.LaneRecords
        The members' runs, one row each (see there): all at one epoch, with
        batches of 2 to TINY_ROWS rows.
    stop : int
        The epoch to stop before.

    Returns
    -------
    bool
        True if every block ran to ``stop`` (members that diverged stopped
        earlier); False if the cancel flag stopped the run. The blocks after
        the one that was stopped have not started.

    Raises
    ------
    KeyboardInterrupt
        From a signal handler (Ctrl-C): raised after every member's state
        and records are in order, as above.
    """
    if is_float32(x):
        return fit_lanes_typed(<float*>NULL, table, loss, negative_slope, l2, x, y, params, locks, optimizers, records, stop)
    return fit_lanes_typed(<double*>NULL, table, loss, negative_slope, l2, x, y, params, locks, optimizers, records, stop)
