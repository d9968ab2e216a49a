"""Argument checks shared by ``nnfast.Net`` and ``nnfast.reference.Net``.

Every check either returns a value the kernels can trust (right dtype,
C-contiguous, right shape, finite) or raises ``TypeError``/``ValueError``
with a message of the form ``<name> must be <constraint>, got <value>``.
"""
from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Mapping, Set
from typing import TYPE_CHECKING

import numpy as np

from nnfast._kernels import checks

if TYPE_CHECKING:
    from nnfast._typing import FloatArray

# BLAS takes 32-bit sizes; larger dimensions would wrap around silently.
MAX_DIMENSION = 2**31 - 1

# The position of a name is its code in the kernels (src/nnfast/_dense.pxd).
LOSSES = ("sse", "mse", "cross_entropy", "binary_cross_entropy", "poisson", "squared_error",
          "binary_log_loss")
ACTIVATIONS = ("relu", "leaky_relu", "tanh", "sigmoid", "identity")
CLASSIFICATION_LOSSES = ("cross_entropy", "binary_cross_entropy", "binary_log_loss")
# The losses of a sigmoid per output.
BINARY_LOSSES = ("binary_cross_entropy", "binary_log_loss")
INITS = ("auto", "he_normal", "he_uniform", "glorot_normal", "glorot_uniform", "normal")


def is_number(value, kind=numbers.Real):
    """Whether ``value`` is a number of ``kind`` (``numbers.Real`` or ``numbers.Integral``)
    as a scalar argument means it: not a bool, and not a ``np.timedelta64``, which
    NumPy registers as an integer."""
    return isinstance(value, kind) and not isinstance(value, (bool, np.bool_, np.timedelta64))


def describe(value, limit=60):
    """``repr(value)`` for a message, shortened in the middle if longer than ``limit``."""
    text = repr(value)
    if len(text) <= limit:
        return text
    if isinstance(value, numbers.Integral):
        return f"{text[:12]}...{text[-4:]} (an int of {len(text.lstrip('-'))} digits)"
    return f"{text[: limit - 20]}...{text[-17:]}"


def _index(position, shape):
    """The index tuple of flat (C-order) ``position`` in an array of ``shape``."""
    return tuple(map(int, np.unravel_index(position, shape)))


def check_layers(layers):
    """Return ``layers`` as a tuple of ints, checking it describes a net.

    Any sized, ordered collection of ints: a list, tuple, range or 1-D
    integer array. Sets and dicts are refused (their order is not the
    user's), as are strings and bytes (whose items are characters or bytes).
    """
    message = (
        "layers must be a sequence of at least two positive ints "
        f"(input size first, output size last), got {describe(layers)}"
    )
    if isinstance(layers, np.ndarray):
        if layers.ndim != 1:  # a 0-d array has __len__ but raises from it
            raise TypeError(message)
    elif isinstance(layers, (str, bytes, bytearray, Set, Mapping)) or not hasattr(layers, "__len__"):
        raise TypeError(message)
    sizes = []
    for size in layers:
        if not is_number(size, numbers.Integral):
            raise TypeError(message)
        sizes.append(operator.index(size))
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(message)
    if max(sizes) > MAX_DIMENSION:
        raise ValueError(f"layers must hold sizes of at most {MAX_DIMENSION}, got {describe(max(sizes))}")
    return tuple(sizes)


def check_choice(name, value, choices):
    """Return ``value`` if it is one of ``choices`` (strings)."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def check_per_layer(name, value, count, check_one):
    """Return a list of ``count`` values: ``value`` repeated, or ``value`` itself if a list.

    ``check_one(name, item)`` checks and returns each item.
    """
    if isinstance(value, (list, tuple)):
        if len(value) != count:
            raise ValueError(f"{name} must be one value or a list of {count}, got {len(value)}: {value!r}")
        return [check_one(f"{name}[{i}]", item) for i, item in enumerate(value)]
    return [check_one(name, value)] * count


def check_number(name, value, low, high=math.inf):
    """Return ``value`` as a float in [low, high]."""
    if type(value) in (float, int) and low <= value <= high and math.isfinite(value):
        return float(value)  # the common case, without the slow ABC checks below
    if not is_number(value):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if not (math.isfinite(value) and low <= value <= high):
        closing = ")" if high == math.inf else "]"
        raise ValueError(f"{name} must be a finite number in [{low:g}, {high:g}{closing}, got {value!r}")
    return float(value)


def check_in_interval(name, value, low, high=math.inf, *, low_open=False, high_open=False, integer=False):
    """Return ``value`` (a float, or an int with ``integer``) if it lies in the interval
    from ``low`` to ``high``, each end closed unless ``low_open``/``high_open``; an
    infinite end is always open."""
    plain = type(value) is int or (type(value) is float and not integer)
    kind = numbers.Integral if integer else numbers.Real
    # The ABC checks are slow; plain ints and floats, the usual case, skip them.
    if not plain and not is_number(value, kind):
        raise TypeError(f"{name} must be {'an int' if integer else 'a number'}, got {value!r}")
    above = value > low if low_open else value >= low
    below = value < high if high_open else value <= high
    if not (above and below and (integer or math.isfinite(value))):
        closing = ")" if high_open or high == math.inf else "]"
        raise ValueError(f"{name} must be in {'(' if low_open else '['}{low:g}, {high:g}{closing}, got {value!r}")
    return int(value) if integer else float(value)


def check_dtype(dtype):
    """Return ``dtype`` as ``np.dtype('float32')`` or ``np.dtype('float64')``."""
    message = f"dtype must be float32 or float64, got {dtype!r}"
    if dtype is None:
        # np.dtype(None) is float64: refuse it rather than guess.
        raise TypeError(message)
    try:
        resolved = np.dtype(dtype)
    except (TypeError, ValueError, SyntaxError):
        raise TypeError(message) from None
    if resolved.type not in (np.float32, np.float64):
        raise TypeError(message)
    return resolved


def check_bool(name, value):
    """Return ``value`` if it is a bool."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_int(name, value, minimum):
    """Return ``value`` as an int if it is an integer at least ``minimum``."""
    if type(value) is int and value >= minimum:
        return value  # the common case, without the slow ABC checks below
    if not is_number(value, numbers.Integral):
        raise TypeError(f"{name} must be an int >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def check_learning_rate(lr):
    """Return ``lr`` as a float if it is positive and finite."""
    if type(lr) is float and math.isfinite(lr) and lr > 0:
        return lr  # the common case, without the slow ABC checks below
    if not is_number(lr):
        raise TypeError(f"lr must be a positive finite number, got {describe(lr)}")
    try:
        value = float(lr)
    except OverflowError:  # an int beyond the float range
        value = math.inf
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"lr must be a positive finite number, got {describe(lr)}")
    return value


def check_seed(seed):
    """Return ``seed`` if it is None or a non-negative int."""
    if seed is not None:
        check_int("seed", seed, 0)
    return seed


def _object_reals(name, array, dtype):
    """Return the object ``array`` as float64, if every element is a real number.

    NumPy makes object arrays of lists holding an int beyond 64 bits, and
    pandas of columns mixing ints, floats and None; the numbers in them
    count as the same numbers in a list would. Elements are checked one
    by one, so None, strings (which ``float`` would parse), complex numbers
    and nested sequences are refused by name and position.
    """
    out = np.empty(array.shape, dtype=np.float64)
    flat = out.reshape(-1)  # a view: out is new and contiguous
    for position, item in enumerate(array.flat):
        if not (is_number(item) or isinstance(item, (bool, np.bool_))):
            if array.ndim == 0:
                raise TypeError(
                    f"{name} must be an array of real numbers, got {describe(item)} of type {type(item).__name__}"
                )
            raise TypeError(
                f"{name} must hold real numbers, got {describe(item)} of type {type(item).__name__} "
                f"at index {_index(position, array.shape)}"
            )
        try:
            flat[position] = float(item)
        except OverflowError:  # an int (or Fraction) beyond the float range
            raise ValueError(
                f"{name} must fit in {dtype}, got {describe(item)} at index {_index(position, array.shape)}"
            ) from None
    return out


def _check_unmasked(name, masked):
    """Raise ``ValueError`` if the masked array ``masked`` has masked entries."""
    mask = np.ma.getmaskarray(masked)
    if mask.any():
        raise ValueError(
            f"{name} must have no masked entries, got a masked array with {int(mask.sum())} of "
            f"{mask.size} masked, the first at index {_index(int(np.argmax(mask)), mask.shape)}: "
            "nnfast cannot leave entries out, so fill them (np.ma.filled) or drop them"
        )


def as_real_array(name, value, dtype):
    """Return ``value`` as an ndarray of bools, ints or floats, without copying an array that is one.

    A masked array (or a list of them as rows) counts as its data if nothing
    is masked and is refused otherwise (``np.asarray`` would drop the mask);
    an object array is converted if it holds only real numbers (see
    ``_object_reals``); nested sequences NumPy cannot make a rectangular
    array of, and every other dtype (complex, str, bytes, datetime64,
    timedelta64, void), are refused.
    ``dtype`` (the net's) only words the messages.
    """
    if isinstance(value, np.ma.MaskedArray):
        _check_unmasked(name, value)
        value = np.ma.getdata(value)
    elif isinstance(value, (list, tuple)):
        # np.asarray drops the masks of masked rows too.
        for position, item in enumerate(value):
            if isinstance(item, np.ma.MaskedArray):
                _check_unmasked(f"{name}[{position}]", item)
    try:
        array = np.asarray(value)
    except ValueError as error:
        if "inhomogeneous" not in str(error):
            raise
        # NumPy's message says where: "... after 1 dimensions. The detected shape was (2,) + ..."
        raise ValueError(f"{name} must be a rectangular array of real numbers, got nested sequences "
                         f"that are not: {error}") from None
    kind = array.dtype.kind
    if kind in "biuf":
        return array
    if kind == "O":
        return _object_reals(name, array, dtype)
    raise TypeError(f"{name} must hold real numbers, got an array of dtype {array.dtype}")


def is_plain(value, dtype):
    """Whether ``value`` is an ndarray of ``dtype`` the kernels can read as it is:
    aligned and C-contiguous (a few attribute reads)."""
    if type(value) is np.ndarray and value.dtype == dtype:
        flags = value.flags
        return flags.c_contiguous and flags.aligned
    return False


def cast(array, dtype):
    """Return the real ``array`` as an aligned C-contiguous array of ``dtype``, copying only if needed.

    Values beyond the range of ``dtype`` become infinite without a warning:
    ``check_finite`` reports them.
    """
    if is_plain(array, dtype):
        return array
    if array.dtype.kind == "f" and array.dtype.itemsize > dtype.itemsize:
        with np.errstate(over="ignore"):  # only a narrowing float cast can overflow
            array = np.asarray(array, dtype=dtype, order="C")
    else:
        # np.asarray keeps a 0-d input 0-d (np.ascontiguousarray would make it 1-d).
        array = np.asarray(array, dtype=dtype, order="C")
    return array if array.flags.aligned else array.copy()


def as_float_array(name, value, dtype):
    """Convert ``value`` to an aligned C-contiguous array of ``dtype``, copying only if needed.

    The input is never modified: an array that already has the right dtype
    and layout is returned as is (the kernels only read it), anything else
    is checked by ``as_real_array`` and copied once.
    """
    if is_plain(value, dtype):
        return value  # the common case, kept to a few attribute reads
    return cast(as_real_array(name, value, dtype), dtype)


def check_finite(name, array, given):
    """Raise ``ValueError`` naming the first NaN or infinity in the float ``array``.

    ``given`` is the real array ``array`` was cast from (of its shape), for
    the message: a float64 value that overflows float32 is not itself infinite.
    """
    position = checks.first_non_finite(array)
    if position >= 0:
        index = _index(position, array.shape)
        value = given[index]  # formatted by str: a format spec would round a longdouble to a float
        if np.isfinite(value):
            raise ValueError(f"{name} must fit in {array.dtype}, got {value!s} at index {index}")
        raise ValueError(f"{name} must be finite, got {value!s} at index {index}")


def check_features(x, n_in, dtype, name="x"):
    """Return ``x`` as a ``(n_samples, n_in)`` array of ``dtype``.

    The shape is checked before anything is copied, so a broadcast view
    (``np.broadcast_to``) of a huge shape is refused without allocating it.
    """
    plain = is_plain(x, dtype)
    real = x if plain else as_real_array(name, x, dtype)
    shape = real.shape
    if len(shape) != 2:
        raise ValueError(f"{name} must be a 2-D array of shape (n_samples, {n_in}), got shape {shape}")
    if shape[1] != n_in:
        raise ValueError(f"{name} has {shape[1]} features, but the net expects {n_in}")
    if shape[0] == 0:
        raise ValueError(f"{name} must hold at least one sample, got shape {shape}")
    if shape[0] > MAX_DIMENSION:
        raise ValueError(f"{name} must hold at most {MAX_DIMENSION} samples, got {shape[0]}")
    x = x if plain else cast(real, dtype)
    check_finite(name, x, real)
    return x


def one_hot(name, labels, n_out, dtype):
    """Return the class ``labels`` (a real 1-D array) as one-hot rows of ``dtype``,
    checking they are integers in ``[0, n_out)``."""
    if labels.dtype.kind == "f":
        # NaN compares unequal to everything; an infinity is left to the range check.
        fractional = labels != np.floor(labels)
        if fractional.any():
            position = int(np.argmax(fractional))
            raise ValueError(
                f"{name} class labels must be integers, got {labels[position]!s} at index ({position},)"
            )
    outside = (labels < 0) | (labels >= n_out)
    if outside.any():
        position = int(np.argmax(outside))
        raise ValueError(
            f"{name} class labels must be in [0, {n_out}), got {labels[position]!s} at index ({position},)"
        )
    y = np.zeros((labels.shape[0], n_out), dtype=dtype)
    y[np.arange(labels.shape[0]), labels.astype(np.intp)] = 1
    return y


def check_targets(y, n_samples, n_out, dtype, loss="sse", name="y", x_name="x") -> FloatArray:
    """Return ``y`` as a ``(n_samples, n_out)`` array of ``dtype``, as ``loss`` reads it.

    A 1-D ``y`` of length ``n_samples`` is accepted when ``n_out == 1``. For
    ``"cross_entropy"`` a 1-D ``y`` holds class labels in ``[0, n_out)`` and
    becomes one-hot; a 2-D one holds class probabilities. The cross-entropy
    losses need targets in [0, 1]. The shape is checked before anything is
    copied.
    """
    plain = is_plain(y, dtype)
    real = y if plain else as_real_array(name, y, dtype)
    labels = loss == "cross_entropy" and real.ndim == 1
    shape = (real.shape[0], n_out) if labels else real.shape
    if len(shape) == 1 and n_out == 1:
        shape = (shape[0], 1)
    if len(shape) != 2 or shape[1] != n_out:
        expected = f"({n_samples}, {n_out})"
        if n_out == 1 or loss == "cross_entropy":
            expected += f" or ({n_samples},)"
        raise ValueError(f"{name} must have shape {expected}, got shape {real.shape}")
    if shape[0] != n_samples:
        raise ValueError(f"{name} has {shape[0]} rows, but {x_name} has {n_samples}")
    if labels:
        return one_hot(name, real, n_out, dtype)
    y = y if plain else cast(real, dtype)
    check_finite(name, y, real)  # before the reshape, so the index is one of y as given
    if y.ndim == 1:
        y = y.reshape(shape)
    if loss in CLASSIFICATION_LOSSES and ((y < 0) | (y > 1)).any():
        bad = y[(y < 0) | (y > 1)][0]
        raise ValueError(f"{name} must hold probabilities in [0, 1] for loss={loss!r}, got {bad}")
    if loss == "poisson":
        # On the values given: a tiny negative target rounds to -0.0 in float32.
        negative = np.asarray(real < 0).reshape(y.shape)
        if negative.any():
            raise ValueError(f"{name} must hold counts or rates >= 0 for loss='poisson', "
                             f"got {np.asarray(real).reshape(y.shape)[negative][0]!s}")
    return y


def check_order(order, n_samples, epochs):
    """Return ``order`` as a new intp array: a permutation of ``range(n_samples)``, shaped
    ``(n_samples,)``, or one per epoch, shaped ``(epochs, n_samples)``."""
    real = as_real_array("order", order, np.dtype(np.intp))
    # The shape first: an empty list is an array of float64 to NumPy.
    if real.shape not in ((n_samples,), (epochs, n_samples)):
        raise ValueError(f"order must have shape ({n_samples},), or ({epochs}, {n_samples}) for one order per "
                         f"epoch, got shape {real.shape}")
    if real.dtype.kind not in "iu":
        # The dtype given: as_real_array turns an object array of numbers into float64.
        raise TypeError(f"order must hold integers, got an array of dtype {np.asarray(order).dtype}")
    if real.size and not (real.min() >= 0 and real.max() < n_samples):
        position = np.unravel_index(int(np.argmax((real < 0) | (real >= n_samples))), real.shape)
        raise ValueError(f"order must hold row indices in [0, {n_samples}), got {real[position]} "
                         f"at index {tuple(map(int, position)) if real.ndim > 1 else int(position[0])}")
    # A private copy: the compiled loop reads it while the caller's array could change.
    order = np.array(real, dtype=np.intp, order="C")
    rows = order.reshape(-1, n_samples)
    # Each row's entries, shifted into a range of their own, must cover it once.
    counts = np.bincount((rows + n_samples * np.arange(len(rows))[:, np.newaxis]).ravel(),
                         minlength=rows.size).reshape(rows.shape)
    if counts.size and counts.max() != 1:
        epoch, row = np.unravel_index(int(np.argmin(counts)), counts.shape)
        where = f"order[{epoch}]" if order.ndim == 2 else "order"
        raise ValueError(f"{where} must be a permutation of range({n_samples}): row {row} "
                         "is missing (and another repeated)")
    return order


def check_sample_weight(sample_weight, n_samples, dtype, x_name="x"):
    """Return ``sample_weight`` as a ``(n_samples,)`` array of ``dtype``: finite and >= 0.

    A scalar is refused rather than broadcast: one weight for every sample
    changes nothing for the mean losses and scales ``"sse"``, which a
    learning rate says more plainly.
    """
    name = "sample_weight"
    plain = is_plain(sample_weight, dtype)
    real = sample_weight if plain else as_real_array(name, sample_weight, dtype)
    if real.shape != (n_samples,):
        raise ValueError(f"{name} must have shape ({n_samples},), one weight per row of {x_name}, "
                         f"got shape {real.shape}")
    weights = sample_weight if plain else cast(real, dtype)
    check_finite(name, weights, real)
    # On the values given: a tiny negative weight rounds to -0.0 in float32.
    negative = real < 0
    if negative.any():
        position = int(np.argmax(negative))
        raise ValueError(f"{name} must be >= 0, got {real[position]!s} at index {position}")
    return weights


def check_parameter_array(name, value, shape, dtype):
    """Return ``value`` as a finite array of ``dtype`` and ``shape`` (copied only if needed)."""
    real = as_real_array(name, value, dtype)
    if real.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got shape {real.shape}")
    array = cast(real, dtype)
    check_finite(name, array, real)
    return array


def check_parameter_list(name, values, shapes, dtype):
    """Return ``values`` as a list of finite arrays with the given ``shapes``."""
    if isinstance(values, np.ndarray) or not isinstance(values, (list, tuple)):
        raise TypeError(f"{name} must be a list of {len(shapes)} arrays, got {type(values).__name__}")
    if len(values) != len(shapes):
        raise ValueError(f"{name} must be a list of {len(shapes)} arrays, got {len(values)}")
    return [check_parameter_array(f"{name}[{index}]", value, shape, dtype)
            for index, (value, shape) in enumerate(zip(values, shapes))]
