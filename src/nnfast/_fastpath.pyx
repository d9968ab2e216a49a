"""The compiled core of one ``nnfast.Net``: its lock, its scratch, and the calls that run it.

``FastPath`` holds the net's parameters and architecture and runs
``predict``, ``forward``, ``loss``, ``gradients`` and ``train_step`` on
validated arrays, each under the net's lock (``nnfast._lock.NetLock``):
readers in parallel, a training step alone.

Scratch is never shared between calls that may overlap. Each call takes
the net's spare workspace if it is free and large enough, or allocates its
own, and gives it back afterwards; only a workspace no larger than a block
of evaluation rows (or than TRAINING_SCRATCH_BYTES) is kept, so a large
call leaves no large buffer behind. ``predict``, ``loss`` and
``gradients`` run in blocks of ``block_rows`` rows, whatever workspace they
get, so that their results do not depend on which one; the scratch of a
block stays within BLOCK_BYTES, and Ctrl-C is polled between blocks.

The Python validation of a call costs about 1 µs, several times a whole
seed-size training step. So ``predict``, ``train_step`` and
``data_trusted`` also accept unvalidated arguments: ndarrays of the net's
dtype, C-contiguous, shaped as the net expects, finite. For those, a few C
comparisons and one vectorized scan prove what the validation would.
Anything else (another dtype, a list, a NaN, a step that diverges, a batch
whose scratch would need a memory check) makes them return None without
touching the net, and the caller takes the validating path, which converts
the arguments or raises the error that names the problem.
"""
cimport cython
cimport numpy as cnp
from libc.math cimport signbit
from libc.stdint cimport PTRDIFF_MAX
from cython cimport floating

from nnfast._arrays cimport all_finite, vector_data
from nnfast._dense cimport (POISSON, Architecture, Workspace, is_classification,
                            backward_pass, carve_workspace, forward_pass, loss_sum, mean_loss,
                            l2_penalty, read_architecture, total_weight)
from nnfast._fit cimport optimizer_step
from nnfast._lock cimport NetLock, PyThread_get_thread_ident
from nnfast._optim cimport SGD, Hyperparameters
from nnfast._signals cimport SignalPoll, interrupted, pending_exception, poll_start
from nnfast._status cimport STEP_OK

cnp.import_array()

# The scratch of one block of predict, loss or gradients rows stays within this.
BLOCK_BYTES = 4 * 2**20
# A training workspace up to this size is kept for the next call; the fast
# path declines a step whose new scratch would be larger, so that Python
# checks the memory first.
TRAINING_SCRATCH_BYTES = 64 * 2**20

# What the typed helpers report when an argument needs the validating path.
cdef enum:
    NOT_TRUSTED = -1


cdef inline bint plain_array(cnp.ndarray array, int typenum) noexcept:
    """Whether the kernels can read ``array`` as it is: of ``typenum`` in native
    byte order, aligned and C-contiguous."""
    return (cnp.PyArray_TYPE(array) == typenum and cnp.PyArray_IS_C_CONTIGUOUS(array)
            and cnp.PyArray_ISBEHAVED_RO(array))


cdef inline Py_ssize_t trusted_rows(object value, int typenum, Py_ssize_t cols) noexcept:
    """The row count of ``value`` if it is an ndarray of ``typenum``, C-contiguous,
    shaped (rows, cols) with rows >= 1; else NOT_TRUSTED."""
    cdef cnp.ndarray array
    if type(value) is not cnp.ndarray:  # a subclass may not behave as an ndarray
        return NOT_TRUSTED
    array = <cnp.ndarray>value
    if (not plain_array(array, typenum) or cnp.PyArray_NDIM(array) != 2
            or cnp.PyArray_DIM(array, 1) != cols or cnp.PyArray_DIM(array, 0) < 1):
        return NOT_TRUSTED
    return cnp.PyArray_DIM(array, 0)


cdef inline bint trusted_targets(object value, int typenum, Py_ssize_t rows, Py_ssize_t cols) noexcept:
    """Whether ``value`` is an ndarray of ``typenum``, C-contiguous, shaped
    (rows, cols), or (rows,) when cols is 1."""
    cdef cnp.ndarray array
    if type(value) is not cnp.ndarray:
        return False
    array = <cnp.ndarray>value
    if not plain_array(array, typenum):
        return False
    if cnp.PyArray_NDIM(array) == 1:
        # For cross_entropy a 1-D y holds labels, but that loss has >= 2 outputs.
        return cols == 1 and cnp.PyArray_DIM(array, 0) == rows
    return (cnp.PyArray_NDIM(array) == 2 and cnp.PyArray_DIM(array, 0) == rows
            and cnp.PyArray_DIM(array, 1) == cols)


cdef inline bint all_probabilities(const floating* values, Py_ssize_t size) noexcept nogil:
    """Whether every entry of ``values[:size]`` lies in [0, 1]."""
    cdef Py_ssize_t i, bad = 0
    for i in range(size):
        bad += not (0 <= values[i] <= 1)
    return bad == 0


cdef inline const floating* row_weights(object weights, floating* kind, Py_ssize_t rows) except? NULL:
    """The data of validated sample ``weights`` (one per row, of the net's dtype), or
    NULL for None."""
    if weights is None:
        return NULL
    return vector_data(<cnp.ndarray?>weights, kind, rows, False)


cdef inline bint all_nonnegative(const floating* values, Py_ssize_t size) noexcept nogil:
    """Whether no entry of ``values[:size]`` has its sign bit set (so none is < 0 or -0.0)."""
    cdef Py_ssize_t i, bad = 0
    for i in range(size):
        bad += signbit(values[i]) != 0
    return bad == 0


# -- row blocks ---------------------------------------------------------------


cdef void predict_rows(const Architecture* arch, const floating* params, const floating* x,
                       Py_ssize_t rows, Py_ssize_t block_rows, const Workspace* ws,
                       floating* scratch, floating* out, SignalPoll* poll) noexcept nogil:
    """Write the net's output for ``x`` (rows, sizes[0]) into ``out``, ``block_rows``
    rows at a time (at most ``ws.capacity``); stop early if a signal handler
    raises between blocks."""
    cdef Py_ssize_t start = 0, block
    cdef Py_ssize_t n_in = arch.sizes[0], n_out = arch.sizes[arch.n_layers]
    while start < rows:
        block = min(block_rows, rows - start)
        forward_pass(arch, params, x + start * n_in, block, ws.capacity, <floating*>NULL,
                     scratch + ws.act, out + start * n_out)
        start += block
        if start < rows and interrupted(poll):
            return


cdef double gradient_rows(const Architecture* arch, const floating* params, const floating* x,
                          const floating* y, const floating* weights, Py_ssize_t rows,
                          Py_ssize_t block_rows, const Workspace* ws, floating* scratch,
                          floating* grad, SignalPoll* poll) noexcept nogil:
    """Return the loss on ``(x, y)`` with rows weighted by ``weights`` (NULL:
    unweighted), computed ``block_rows`` rows at a time (at most
    ``ws.capacity``), and unless ``grad`` is NULL write its gradient there.

    The loss is summed across blocks in the order of one pass over all rows,
    so it does not depend on the block size; the weight gradients are sums
    of per-block products, equal to one product's within rounding (to the
    bit where the plain loops run). Stops early, returning 0, if a signal
    handler raises between blocks.
    """
    cdef Py_ssize_t start = 0, block
    cdef Py_ssize_t n_in = arch.sizes[0], n_out = arch.sizes[arch.n_layers]
    cdef bint gradients = grad != NULL
    cdef double total = 0, normalizer = total_weight(weights, rows)
    while start < rows:
        block = min(block_rows, rows - start)
        forward_pass(arch, params, x + start * n_in, block, ws.capacity,
                     scratch + ws.deriv if gradients else NULL, scratch + ws.act, scratch + ws.out)
        total = loss_sum(arch, scratch + ws.out, y + start * n_out,
                         weights + start if weights != NULL else NULL, block, normalizer, gradients,
                         total)
        if gradients:
            backward_pass(arch, params, x + start * n_in, block, ws.capacity, scratch + ws.deriv,
                          scratch + ws.act, scratch + ws.out, grad, start > 0)
        start += block
        if start < rows and interrupted(poll):
            return 0
    return mean_loss(arch, <floating>total, normalizer) + l2_penalty(arch, params, grad, normalizer)


@cython.final  # cpdef methods called from here skip the check for a Python override
cdef class FastPath:
    """The compiled core of one net: its lock, its spare scratch, and its kernel calls.

    Parameters
    ----------
    table : ndarray of intp
        ``ParameterLayout.table``; kept, and read on every call.
    loss : int
        The loss code.
    negative_slope : float
    l2 : float
        The L2 penalty on the weights, >= 0.
    params : ndarray of float32 or float64, shape (n_params,)
        The net's parameters, updated in place by ``train_step``.

    Attributes
    ----------
    lock : nnfast._lock.NetLock
        The net's lock. Every method below takes it; code that reads or
        changes ``params`` otherwise must take it too.
    block_rows : int
        Rows per block of ``predict``, ``loss`` and ``gradients``: as many as
        fit their scratch in BLOCK_BYTES, at least 1.
    """
    cdef cnp.ndarray table, params
    cdef object spare  # a workspace no call is using, or None
    cdef Architecture arch
    cdef int typenum
    cdef Py_ssize_t row_length, keep_length
    cdef bint check_probabilities, check_nonnegative
    cdef readonly NetLock lock
    cdef readonly Py_ssize_t block_rows

    def __cinit__(self, cnp.ndarray table, int loss, double negative_slope, double l2,
                  cnp.ndarray params):
        cdef Py_ssize_t itemsize
        self.arch = read_architecture(table, loss, negative_slope, l2)
        self.typenum = cnp.PyArray_TYPE(params)
        if self.typenum == cnp.NPY_FLOAT:
            vector_data(params, <float*>NULL, self.arch.n_params, True)
        else:
            vector_data(params, <double*>NULL, self.arch.n_params, True)
        self.table = table  # arch points into it
        self.params = params
        self.check_probabilities = is_classification(loss)
        self.check_nonnegative = loss == POISSON
        self.lock = NetLock()
        itemsize = cnp.PyArray_ITEMSIZE(params)
        # A workspace is [grad | deriv | act | out]: n_params, then this much per row.
        self.row_length = 2 * self.arch.hidden_width + self.arch.sizes[self.arch.n_layers]
        self.block_rows = max(1, BLOCK_BYTES // (self.row_length * itemsize))
        self.keep_length = max(self.workspace_length(self.block_rows, False), TRAINING_SCRATCH_BYTES // itemsize)

    cdef Py_ssize_t workspace_length(self, Py_ssize_t rows, bint with_gradient) noexcept:
        """Elements of a workspace for ``rows`` rows, with or without the gradient part."""
        return (self.arch.n_params if with_gradient else 0) + rows * self.row_length

    cpdef cnp.ndarray take_scratch(self, Py_ssize_t rows, bint with_gradient):
        """Return a workspace for ``rows`` rows (see ``carve_workspace``) that no
        other call is using: the spare one if it is free and large enough,
        else a new one."""
        cdef cnp.ndarray spare = self.spare
        cdef cnp.npy_intp length = self.workspace_length(rows, with_gradient)
        # No Python code runs between the read and the write, so under the GIL
        # no other thread can take the same spare.
        if spare is not None and cnp.PyArray_SIZE(spare) >= length:
            self.spare = None
            return spare
        return cnp.PyArray_EMPTY(1, &length, self.typenum, 0)

    cpdef void give_back(self, cnp.ndarray scratch):
        """Keep ``scratch`` as the spare workspace if it is the largest free one and
        not larger than what is worth keeping."""
        cdef cnp.ndarray spare = self.spare
        if cnp.PyArray_SIZE(scratch) <= self.keep_length and (
                spare is None or cnp.PyArray_SIZE(spare) < cnp.PyArray_SIZE(scratch)):
            self.spare = scratch

    @property
    def spare_length(self):
        """int: the length of the spare workspace, 0 if there is none (for tests)."""
        return 0 if self.spare is None else cnp.PyArray_SIZE(<cnp.ndarray>self.spare)

    # -- reading --------------------------------------------------------------

    def predict(self, x):
        """The net's output for ``x`` as a new array, or None if ``x`` needs the validating path."""
        cdef Py_ssize_t rows = trusted_rows(x, self.typenum, self.arch.sizes[0])
        cdef cnp.npy_intp[2] shape
        cdef cnp.ndarray out
        cdef bint finite
        if rows == NOT_TRUSTED:
            return None
        shape[0] = rows
        shape[1] = self.arch.sizes[self.arch.n_layers]
        out = cnp.PyArray_EMPTY(2, shape, self.typenum, 0)
        if self.typenum == cnp.NPY_FLOAT:
            finite = self.predict_typed(<float*>NULL, <cnp.ndarray>x, rows, out)
        else:
            finite = self.predict_typed(<double*>NULL, <cnp.ndarray>x, rows, out)
        return out if finite else None

    cdef int predict_typed(self, floating* kind, cnp.ndarray x, Py_ssize_t rows,
                           cnp.ndarray out) except -1:
        """Fill ``out``; return 0 if ``x`` is not finite (nothing done), else 1."""
        cdef const floating* inputs = <const floating*>cnp.PyArray_DATA(x)
        cdef const floating* params = <const floating*>cnp.PyArray_DATA(self.params)
        cdef floating* outputs = <floating*>cnp.PyArray_DATA(out)
        cdef cnp.ndarray scratch = self.take_scratch(min(rows, self.block_rows), False)
        cdef floating* scratch_data = <floating*>cnp.PyArray_DATA(scratch)
        cdef Workspace ws = carve_workspace(&self.arch, cnp.PyArray_SIZE(scratch), False)
        cdef SignalPoll poll
        cdef bint finite, reading
        poll.raised = False
        if rows > self.block_rows:
            poll_start(&poll)
        with nogil:
            finite = all_finite(inputs, rows * self.arch.sizes[0])
            # Mostly the lock is free: take it here, in the one release of the GIL.
            reading = finite and self.lock.try_read()
            if reading:
                predict_rows(&self.arch, params, inputs, rows, self.block_rows, &ws, scratch_data,
                             outputs, &poll)
                self.lock.release_read()
        if finite and not reading:
            self.lock.read()  # waits for the writer without the GIL
            with nogil:
                predict_rows(&self.arch, params, inputs, rows, self.block_rows, &ws, scratch_data,
                             outputs, &poll)
                self.lock.release_read()
        self.give_back(scratch)
        if poll.raised:
            raise pending_exception()
        return finite

    def forward(self, cnp.ndarray x):
        """Run the net on validated ``x``; return ``(output, activations)``.

        ``activations`` is one new vector holding each hidden layer's
        activations, ``(rows, sizes[i])`` C-ordered, one layer after another.
        """
        cdef Py_ssize_t rows = cnp.PyArray_DIM(x, 0)
        cdef cnp.npy_intp[2] shape
        cdef cnp.npy_intp length = rows * self.arch.hidden_width
        cdef cnp.ndarray out, act
        shape[0] = rows
        shape[1] = self.arch.sizes[self.arch.n_layers]
        out = cnp.PyArray_EMPTY(2, shape, self.typenum, 0)
        act = cnp.PyArray_EMPTY(1, &length, self.typenum, 0)
        self.lock.read()
        if self.typenum == cnp.NPY_FLOAT:
            self.forward_typed(<float*>NULL, x, rows, out, act)
        else:
            self.forward_typed(<double*>NULL, x, rows, out, act)
        return out, act

    cdef void forward_typed(self, floating* kind, cnp.ndarray x, Py_ssize_t rows, cnp.ndarray out,
                            cnp.ndarray act) noexcept:
        """(Holding the read lock, which this releases.)"""
        with nogil:
            forward_pass(&self.arch, <const floating*>cnp.PyArray_DATA(self.params),
                         <const floating*>cnp.PyArray_DATA(x), rows, rows, <floating*>NULL,
                         <floating*>cnp.PyArray_DATA(act), <floating*>cnp.PyArray_DATA(out))
            self.lock.release_read()

    def loss(self, cnp.ndarray x, cnp.ndarray y, object weights=None):
        """The loss on validated ``(x, y)``, ``y`` shaped (rows, sizes[-1]), with rows
        weighted by the validated ``weights`` (None: unweighted)."""
        return self.evaluate(x, y, weights, None)

    def loss_and_gradients(self, cnp.ndarray x, cnp.ndarray y, object weights=None):
        """The loss on validated ``(x, y)`` (and ``weights``, as for ``loss``) and its
        gradient as a new flat vector, laid out as the parameters."""
        cdef cnp.npy_intp length = self.arch.n_params
        cdef cnp.ndarray grad = cnp.PyArray_EMPTY(1, &length, self.typenum, 0)
        return self.evaluate(x, y, weights, grad), grad

    cdef double evaluate(self, cnp.ndarray x, cnp.ndarray y, object weights,
                         object grad) except? -1:
        """The loss, and unless ``grad`` is None its gradient written into ``grad``."""
        if self.typenum == cnp.NPY_FLOAT:
            return self.evaluate_typed(<float*>NULL, x, y, weights, grad)
        return self.evaluate_typed(<double*>NULL, x, y, weights, grad)

    cdef double evaluate_typed(self, floating* kind, cnp.ndarray x, cnp.ndarray y,
                               object weights, object grad) except? -1:
        cdef Py_ssize_t rows = cnp.PyArray_DIM(x, 0)
        cdef const floating* weight_data = row_weights(weights, kind, rows)
        cdef cnp.ndarray scratch = self.take_scratch(min(rows, self.block_rows), False)
        cdef Workspace ws = carve_workspace(&self.arch, cnp.PyArray_SIZE(scratch), False)
        cdef floating* grad_data = NULL if grad is None else <floating*>cnp.PyArray_DATA(<cnp.ndarray>grad)
        cdef SignalPoll poll
        cdef double value
        poll.raised = False
        if rows > self.block_rows:
            poll_start(&poll)
        self.lock.read()
        with nogil:
            value = gradient_rows(&self.arch, <const floating*>cnp.PyArray_DATA(self.params),
                                  <const floating*>cnp.PyArray_DATA(x),
                                  <const floating*>cnp.PyArray_DATA(y), weight_data, rows,
                                  self.block_rows, &ws, <floating*>cnp.PyArray_DATA(scratch),
                                  grad_data, &poll)
            self.lock.release_read()
        self.give_back(scratch)
        if poll.raised:
            raise pending_exception()
        return value

    def data_trusted(self, x, y):
        """Whether training data ``(x, y)`` of any number of rows need no validation."""
        cdef Py_ssize_t rows = trusted_rows(x, self.typenum, self.arch.sizes[0])
        cdef const void* inputs
        cdef const void* targets
        cdef bint trusted
        if rows == NOT_TRUSTED or not trusted_targets(y, self.typenum, rows,
                                                      self.arch.sizes[self.arch.n_layers]):
            return False
        inputs = cnp.PyArray_DATA(<cnp.ndarray>x)
        targets = cnp.PyArray_DATA(<cnp.ndarray>y)
        with nogil:
            if self.typenum == cnp.NPY_FLOAT:
                trusted = self.values_trusted(<const float*>inputs, <const float*>targets, rows)
            else:
                trusted = self.values_trusted(<const double*>inputs, <const double*>targets, rows)
        return trusted

    cdef bint values_trusted(self, const floating* inputs, const floating* targets,
                             Py_ssize_t rows) noexcept nogil:
        """Whether the data are finite and the targets in [0, 1] for the classification
        losses, >= 0 (and not -0.0, which may stand for a negative rounded) for poisson."""
        cdef Py_ssize_t n_targets = rows * self.arch.sizes[self.arch.n_layers]
        return (all_finite(inputs, rows * self.arch.sizes[0]) and all_finite(targets, n_targets)
                and (not self.check_probabilities or all_probabilities(targets, n_targets))
                and (not self.check_nonnegative or all_nonnegative(targets, n_targets)))

    # -- training -------------------------------------------------------------

    def train_step(self, x, y, lr):
        """One plain SGD step, as ``train_step_checked``: the loss before it, or None.

        None means the arguments need the validating path (nothing was
        changed), or the step was not finite (nothing was applied; the
        validating path repeats it and raises).
        """
        cdef double rate, loss
        cdef Py_ssize_t rows
        cdef int status
        if type(lr) is not float:
            return None
        rate = lr
        if not (rate > 0 and rate - rate == 0):
            return None
        rows = trusted_rows(x, self.typenum, self.arch.sizes[0])
        if (rows == NOT_TRUSTED or not trusted_targets(y, self.typenum, rows,
                                                       self.arch.sizes[self.arch.n_layers])
                or self.workspace_length(rows, True) > self.keep_length):
            return None
        if self.typenum == cnp.NPY_FLOAT:
            status = self.step_typed(<float*>NULL, <cnp.ndarray>x, <cnp.ndarray>y, NULL, rows, rate,
                                     &loss, True)
        else:
            status = self.step_typed(<double*>NULL, <cnp.ndarray>x, <cnp.ndarray>y, NULL, rows, rate,
                                     &loss, True)
        return loss if status == STEP_OK else None

    def train_step_checked(self, cnp.ndarray x, cnp.ndarray y, double lr, object weights=None):
        """One plain SGD step on validated ``(x, y)``, ``y`` shaped (rows, sizes[-1]),
        rows weighted by the validated ``weights`` (None: unweighted); return
        ``(loss before the step, status)``. Unless the status is STEP_OK,
        nothing was applied."""
        cdef double loss
        cdef int status
        cdef Py_ssize_t rows = cnp.PyArray_DIM(x, 0)
        if self.typenum == cnp.NPY_FLOAT:
            status = self.step_typed(<float*>NULL, x, y, row_weights(weights, <float*>NULL, rows),
                                     rows, lr, &loss, False)
        else:
            status = self.step_typed(<double*>NULL, x, y, row_weights(weights, <double*>NULL, rows),
                                     rows, lr, &loss, False)
        return loss, status

    cdef int step_typed(self, floating* kind, cnp.ndarray x, cnp.ndarray y,
                        const floating* weights, Py_ssize_t rows, double lr, double* loss,
                        bint check) except -2:
        """Take the step; return its status, or NOT_TRUSTED if ``check`` finds the data
        need validation. ``weights``: NULL, or one per row (which ``check`` does
        not cover: weighted steps come validated)."""
        cdef const floating* inputs = <const floating*>cnp.PyArray_DATA(x)
        cdef const floating* targets = <const floating*>cnp.PyArray_DATA(y)
        cdef floating* params = <floating*>cnp.PyArray_DATA(self.params)
        cdef cnp.ndarray scratch = self.take_scratch(rows, True)
        cdef floating* scratch_data = <floating*>cnp.PyArray_DATA(scratch)
        cdef Workspace ws = carve_workspace(&self.arch, cnp.PyArray_SIZE(scratch), True)
        cdef unsigned long thread = PyThread_get_thread_ident()
        cdef Hyperparameters hyper
        cdef double penalty  # a part of the loss train_step does not report apart
        cdef bint trusted = True, writing
        cdef int status = NOT_TRUSTED
        hyper.code = SGD
        hyper.momentum = hyper.weight_decay = 0
        hyper.sklearn_style = False
        with nogil:
            if check:
                trusted = self.values_trusted(inputs, targets, rows)
            # Mostly the lock is free: take it here, in the one release of the GIL.
            writing = trusted and self.lock.try_write(thread)
            if writing:
                status = optimizer_step(&self.arch, params, inputs, targets, weights, rows, &ws, scratch_data,
                                        &hyper, 1, lr, NULL, NULL, loss, &penalty)
                self.lock.release_write()
        if trusted and not writing:
            self.lock.write()  # waits for readers and other writers without the GIL
            with nogil:
                status = optimizer_step(&self.arch, params, inputs, targets, weights, rows, &ws, scratch_data,
                                        &hyper, 1, lr, NULL, NULL, loss, &penalty)
                self.lock.release_write()
        self.give_back(scratch)
        return status
