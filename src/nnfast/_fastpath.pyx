"""The per-call fast path of ``Net.train_step``, ``Net.predict`` and the data checks of ``fit``.

The Python validation of a call costs about 1 µs, several times a whole
seed-size training step. Most calls pass arrays that need no conversion:
ndarrays of the net's dtype, C-contiguous, shaped as the net expects,
finite. For those, a few C comparisons and one vectorized scan prove what
the validation would, and the call goes straight to the kernel. Anything
else (another dtype, a list, a NaN, a batch larger than the scratch
buffer, a step that diverges) makes the fast path return None without
touching the net, and the caller takes the validating path, which converts
the arguments or raises the error that names the problem.
"""
cimport numpy as cnp
from libc.stdint cimport PTRDIFF_MAX
from cython cimport floating

from nnfast._arrays cimport all_finite, vector_data
from nnfast._dense cimport (CROSS_ENTROPY, BINARY_CROSS_ENTROPY, Architecture, Workspace,
                            carve_workspace, forward_pass, read_architecture)
from nnfast._fit cimport optimizer_step
from nnfast._optim cimport SGD, Hyperparameters
from nnfast._status cimport STEP_OK

cnp.import_array()

# What the typed helpers report when an argument needs the validating path.
cdef enum:
    NOT_TRUSTED = -1


cdef inline bint plain_array(cnp.ndarray array, int typenum) noexcept:
    """Whether the kernels can read ``array`` as it is: of ``typenum`` in native
    byte order, aligned and C-contiguous."""
    return (cnp.PyArray_TYPE(array) == typenum and cnp.PyArray_IS_C_CONTIGUOUS(array)
            and cnp.PyArray_ISBEHAVED_RO(array))


cdef inline Py_ssize_t trusted_rows(object value, int typenum, Py_ssize_t cols,
                                    Py_ssize_t max_rows) noexcept:
    """The row count of ``value`` if it is an ndarray of ``typenum``, C-contiguous,
    shaped (rows, cols) with 1 <= rows <= max_rows; else NOT_TRUSTED."""
    cdef cnp.ndarray array
    cdef Py_ssize_t rows
    if type(value) is not cnp.ndarray:  # a subclass may not behave as an ndarray
        return NOT_TRUSTED
    array = <cnp.ndarray>value
    if (not plain_array(array, typenum) or cnp.PyArray_NDIM(array) != 2
            or cnp.PyArray_DIM(array, 1) != cols):
        return NOT_TRUSTED
    rows = cnp.PyArray_DIM(array, 0)
    return rows if 1 <= rows <= max_rows else NOT_TRUSTED


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


cdef class FastPath:
    """Compiled checks and kernel calls for one net's parameters and scratch buffer.

    Parameters
    ----------
    table : ndarray of intp
        ``ParameterLayout.table``; kept, and read on every call.
    loss : int
        The loss code.
    negative_slope : float
    params : ndarray of float32 or float64, shape (n_params,)
        The net's parameters, updated in place by ``train_step``.
    """
    cdef cnp.ndarray table, params, workspace
    cdef Architecture arch
    cdef Workspace ws
    cdef int typenum
    cdef bint check_probabilities

    def __cinit__(self, cnp.ndarray table, int loss, double negative_slope, cnp.ndarray params):
        self.arch = read_architecture(table, loss, negative_slope)
        self.typenum = cnp.PyArray_TYPE(params)
        if self.typenum == cnp.NPY_FLOAT:
            vector_data(params, <float*>NULL, self.arch.n_params, True)
        else:
            vector_data(params, <double*>NULL, self.arch.n_params, True)
        self.table = table  # arch points into it
        self.params = params
        self.ws.capacity = 0  # no scratch yet: every call takes the validating path
        self.check_probabilities = loss == CROSS_ENTROPY or loss == BINARY_CROSS_ENTROPY

    def use_workspace(self, cnp.ndarray workspace):
        """Take ``workspace`` (the net's scratch buffer, of the parameters' dtype) from now on."""
        cdef Py_ssize_t length = cnp.PyArray_SIZE(workspace)
        if self.typenum == cnp.NPY_FLOAT:
            vector_data(workspace, <float*>NULL, self.arch.n_params, True)
        else:
            vector_data(workspace, <double*>NULL, self.arch.n_params, True)
        self.workspace = workspace
        self.ws = carve_workspace(&self.arch, length)

    def train_step(self, x, y, lr):
        """One plain SGD step, as ``_fit.train_step``: the loss before it, or None.

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
        rows = trusted_rows(x, self.typenum, self.arch.sizes[0], self.ws.capacity)
        if rows == NOT_TRUSTED or not trusted_targets(y, self.typenum, rows,
                                                      self.arch.sizes[self.arch.n_layers]):
            return None
        if self.typenum == cnp.NPY_FLOAT:
            status = self.step_typed(<float*>NULL, <cnp.ndarray>x, <cnp.ndarray>y, rows, rate, &loss)
        else:
            status = self.step_typed(<double*>NULL, <cnp.ndarray>x, <cnp.ndarray>y, rows, rate, &loss)
        return loss if status == STEP_OK else None

    cdef bint values_trusted(self, const floating* inputs, const floating* targets,
                             Py_ssize_t rows) noexcept nogil:
        """Whether the data are finite and, for the classification losses, the targets in [0, 1]."""
        cdef Py_ssize_t n_targets = rows * self.arch.sizes[self.arch.n_layers]
        return (all_finite(inputs, rows * self.arch.sizes[0]) and all_finite(targets, n_targets)
                and (not self.check_probabilities or all_probabilities(targets, n_targets)))

    def data_trusted(self, x, y):
        """Whether training data ``(x, y)`` of any number of rows need no validation."""
        cdef Py_ssize_t rows = trusted_rows(x, self.typenum, self.arch.sizes[0], PTRDIFF_MAX)
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

    cdef int step_typed(self, floating* kind, cnp.ndarray x, cnp.ndarray y, Py_ssize_t rows,
                        double lr, double* loss):
        cdef const floating* inputs = <const floating*>cnp.PyArray_DATA(x)
        cdef const floating* targets = <const floating*>cnp.PyArray_DATA(y)
        cdef Hyperparameters hyper
        cdef int status = NOT_TRUSTED
        hyper.code = SGD
        hyper.momentum = hyper.weight_decay = 0
        with nogil:
            if self.values_trusted(inputs, targets, rows):
                status = optimizer_step(
                    &self.arch, <floating*>cnp.PyArray_DATA(self.params), inputs, targets, rows,
                    &self.ws, <floating*>cnp.PyArray_DATA(self.workspace), &hyper, 1, lr,
                    NULL, NULL, loss)
        return status

    def predict(self, x):
        """The net's output for ``x`` as a new array, or None if ``x`` needs the validating path."""
        cdef Py_ssize_t rows = trusted_rows(x, self.typenum, self.arch.sizes[0], self.ws.capacity)
        cdef cnp.npy_intp[2] shape
        cdef cnp.ndarray out
        cdef bint trusted
        if rows == NOT_TRUSTED:
            return None
        shape[0] = rows
        shape[1] = self.arch.sizes[self.arch.n_layers]
        out = cnp.PyArray_EMPTY(2, shape, self.typenum, 0)
        if self.typenum == cnp.NPY_FLOAT:
            trusted = self.predict_typed(<float*>NULL, <cnp.ndarray>x, rows, out)
        else:
            trusted = self.predict_typed(<double*>NULL, <cnp.ndarray>x, rows, out)
        return out if trusted else None

    cdef bint predict_typed(self, floating* kind, cnp.ndarray x, Py_ssize_t rows, cnp.ndarray out):
        cdef const floating* inputs = <const floating*>cnp.PyArray_DATA(x)
        cdef floating* scratch = <floating*>cnp.PyArray_DATA(self.workspace)
        cdef bint finite
        with nogil:
            finite = all_finite(inputs, rows * self.arch.sizes[0])
            if finite:
                forward_pass(&self.arch, <const floating*>cnp.PyArray_DATA(self.params), inputs,
                             rows, self.ws.capacity, <floating*>NULL, scratch + self.ws.act,
                             <floating*>cnp.PyArray_DATA(out))
        return finite
