"""Saving a net to one ``.npz`` file and loading it back.

``save(net, path)`` writes everything that makes up a net (its
architecture and options, the flat parameter vector, and the optimizer
with its hyper-parameters, step count and moment buffers) as plain NumPy
arrays in one uncompressed ``.npz`` archive; ``load(path)`` rebuilds an
identical net: same parameters bit for bit, same predictions, and training
continues exactly as it would have on the original.

Guarantees
----------
Saving is atomic. ``save`` writes a temporary file in the directory of the
file it replaces (``.<name>.<16 hex digits>.nnfast-tmp``), flushes and
fsyncs it, renames it over the target with ``os.replace`` and then, as far
as the platform allows, fsyncs the directory. At every moment the path
holds either the old file or the new one, complete: a process killed in
the middle of a save, a full disk or a file-size limit leaves the old file
as it was. When ``save`` fails with an exception (``OSError``,
``KeyboardInterrupt``, ...) it removes its temporary file; only a process
killed outright (SIGKILL, a power cut) can leave one behind, and no later
``save`` removes it, since it might belong to a save still running
elsewhere. Such a file is safe to delete while no save is running.

Loading refuses what ``save`` could not have written, with ``ValueError``
(see ``load``), and bounds its work by the size of the file: it opens the
path without blocking and reads regular files only (never waiting on a
FIFO or reading a device), reads only uncompressed members (a compressed
one could declare a small size and inflate to gigabytes), checks every
``.npy`` header's dtype and shape against what the entry must be, and the
declared sizes against the bytes actually there, before reading any data,
and verifies every member's CRC-32. The file holds only numbers, booleans
and unicode strings: an object dtype, and so any pickle, is refused before
its data is read, and nothing in the file is ever unpickled, imported or
evaluated. The class to build is looked up in a fixed table of the two
net classes. Optimizer state that no training could have produced (see
``load``) is refused too, by ``load`` and already by ``save``.

Format, version 3. Every entry is a NumPy array; "str" means a 0-d unicode
array, "float" a 0-d float64, "int" a 0-d int64, "bool" a 0-d bool:

======================= ========================== ==========================================
entry                   type                       meaning
======================= ========================== ==========================================
format                  str                        ``"nnfast"``
format_version          int                        ``3`` (version 1 and 2 files load too)
class                   str                        ``"nnfast.Net"`` or ``"nnfast.reference.Net"``
layers                  int64 (n_layers + 1,)      layer sizes, input first
activations             unicode (n_layers - 1,)    each hidden layer's activation
negative_slope          float                      the slope of ``"leaky_relu"``
bias                    bool (n_layers,)           whether each layer has a bias
loss                    str                        the loss name
l2                      float                      the L2 penalty on the weights (version 3;
                                                   0 before)
init                    str                        the initialization scheme
init_std                float                      the standard deviation of ``"normal"``
dtype                   str                        ``"float32"`` or ``"float64"``
params                  dtype (n_params,)          the flat parameter vector
optimizer               str                        ``"none"``, ``"SGD"``, ``"Adam"`` or ``"AdamW"``
optimizer_lr            float                      (all optimizers)
optimizer_weight_decay  float                      (all optimizers)
optimizer_momentum      float                      (SGD)
optimizer_nesterov      bool                       (SGD)
optimizer_betas         float64 (2,)               (Adam, AdamW)
optimizer_eps           float                      (Adam, AdamW)
optimizer_style         str                        (SGD, Adam; version 3) ``"torch"`` or
                                                   ``"sklearn"``; ``"torch"`` before
optimizer_step_count    int                        (all optimizers)
optimizer_buffers       dtype (n_moments,          (all optimizers; absent while the
                        n_params)                  optimizer has no state yet): the moment
                                                   buffers, ``optimizer.n_moments`` rows.
                                                   Version 1 files hold two rows for every
                                                   optimizer, the ones beyond n_moments unused
======================= ========================== ==========================================

An ensemble (``nnfast.Ensemble``, ``nnfast.reference.Ensemble``) is saved
the same way, in one file: ``format`` and ``format_version`` as above,
``class`` naming the ensemble class, ``n_members`` (int), ``init_seeds``
and ``seed_bases`` (uint64, one per member), ``seed_indices`` (int64, one
per member) and ``fits`` (int: the ``fit`` calls so far, from which later
shuffle seeds derive), and then every entry above but ``format`` and
``format_version`` of member ``i`` under the name ``member<i>/<entry>``.
Each member is checked as a net file is, and they must be of the
ensemble's net class and share one architecture, dtype and loss.

Metadata. A net file (not an ensemble's) may also hold what the program
that saved it wants to keep beside the net (``save(..., metadata=...)``,
read back by ``load_with_metadata``; the ``nnfast`` command line keeps its
input scaling and column names there): entry ``metadata/<key>`` per key,
``<key>`` an identifier, each a 0-d or 1-d array of booleans, integers,
finite floats or unicode strings. Files without metadata are exactly as
before; an nnfast that predates metadata refuses a file with some as
having "unexpected entries". ``load`` ignores the metadata.
"""
from __future__ import annotations

import errno
import math
import os
import pathlib
import re
import secrets
import stat
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, BinaryIO, Callable

import numpy as np

from nnfast._npz import Archive
from nnfast._npz import Invalid as _Invalid
from nnfast._validation import ACTIVATIONS, INITS, LOSSES, check_layers
from nnfast.optimizers import SGD, Adam, AdamW

if TYPE_CHECKING:  # the net and ensemble modules import this one
    from nnfast._base import BaseNet
    from nnfast._typing import PathLike
    from nnfast.ensemble import BaseEnsemble

__all__ = ["save", "load", "load_with_metadata", "PathNotFoundError", "PathIsADirectoryError", "FORMAT_NAME", "FORMAT_VERSION"]

FORMAT_NAME = "nnfast"
FORMAT_VERSION = 3
# Version 1 differs from 2 only in always storing two moment buffers; 3
# adds the entries below, whose values files of earlier versions imply.
READABLE_VERSIONS = (1, 2, 3)
_ADDED_IN_VERSION_3 = {"l2": 0.0, "optimizer_style": "torch"}

# The optimizer classes a file may name, by the name it uses. AdamW
# subclasses Adam, so lookups of an object's kind go by exact type.
_OPTIMIZERS = {"SGD": SGD, "Adam": Adam, "AdamW": AdamW}

# Per optimizer kind: its hyper-parameter entries (without the "optimizer_"
# prefix) as (name, element kind, shape).
_HYPERPARAMETERS = {
    "none": (),
    "SGD": (("lr", "f", ()), ("momentum", "f", ()), ("nesterov", "b", ()), ("weight_decay", "f", ()),
            ("style", "U", ())),
    "Adam": (("lr", "f", ()), ("betas", "f", (2,)), ("eps", "f", ()), ("weight_decay", "f", ()),
             ("style", "U", ())),
    "AdamW": (("lr", "f", ()), ("betas", "f", (2,)), ("eps", "f", ()), ("weight_decay", "f", ())),
}

# The net's entries as (name, element kind, shape), in the order they are
# read; None in a shape is any length, and "hidden" and "layers" the number
# of hidden layers and of layers, known once "layers" has been read. "params"
# and the optimizer's state are checked on their own.
_NET_ENTRIES = (
    ("format", "U", ()),
    ("format_version", "iu", ()),
    ("class", "U", ()),
    ("layers", "iu", (None,)),
    ("activations", "U", ("hidden",)),
    ("negative_slope", "f", ()),
    ("bias", "b", ("layers",)),
    ("loss", "U", ()),
    ("init", "U", ()),
    ("init_std", "f", ()),
    ("dtype", "U", ()),
    ("optimizer", "U", ()),
    ("l2", "f", ()),
)

# Every entry any nnfast file may hold, whatever its optimizer.
_ALL_ENTRIES = frozenset(
    [name for name, _, _ in _NET_ENTRIES]
    + ["params", "optimizer_step_count", "optimizer_buffers"]
    + [f"optimizer_{name}" for entries in _HYPERPARAMETERS.values() for name, _, _ in entries]
)

# How metadata entries are named (see the module docstring), and what their keys may be.
METADATA_PREFIX = "metadata/"
_METADATA_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

_KIND_NAMES = {"U": "a string", "iu": "an integer", "u": "an unsigned integer", "f": "a float", "b": "a bool"}

# The largest step count a file may hold. The bias corrections compute
# beta**step with the step count converted to float64 (``pow(beta1, step)``
# in src/nnfast/_optim.pyx, ``beta1**step`` in nnfast.reference), and a
# float64 holds every integer exactly only up to 2**53; beyond it the
# count would not be the one the update uses (and a count near 2**63 would
# overflow the int64 the kernels keep it in). No fit takes that many steps.
MAX_STEP_COUNT = 2**53


_OPEN_FLAGS = (os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
               | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0))
_TEMP_FLAGS = (os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_BINARY", 0)
               | getattr(os, "O_CLOEXEC", 0))
# How the names of save's temporary files end (see save).
TEMP_SUFFIX = ".nnfast-tmp"


class PathNotFoundError(FileNotFoundError, ValueError):
    """``load`` was given a path where there is no file: both a FileNotFoundError and a ValueError."""


class PathIsADirectoryError(IsADirectoryError, ValueError):
    """``load`` was given a directory: both an IsADirectoryError and a ValueError."""



def _net_classes():
    """The net classes a file may name, by the name it uses.

    Imported here rather than at module level so that ``nnfast.io`` can be
    imported from inside ``nnfast`` and ``nnfast._base`` without a cycle.
    """
    from nnfast.net import Net
    from nnfast.reference import Net as ReferenceNet

    return {"nnfast.Net": Net, "nnfast.reference.Net": ReferenceNet}


def _fspath(path):
    """``path`` (str, bytes or os.PathLike) as a str."""
    return os.fsdecode(os.fspath(path))


def _file_kind(mode):
    """What kind of file an ``st_mode`` describes, in words."""
    kinds = ((stat.S_ISDIR, "directory"), (stat.S_ISFIFO, "FIFO (named pipe)"),
             (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"),
             (stat.S_ISSOCK, "socket"), (stat.S_ISLNK, "symbolic link"), (stat.S_ISREG, "regular file"))
    return next((name for test, name in kinds if test(mode)), "special file")


# -- optimizer state ---------------------------------------------------------------


def _step_count_problem(step_count):
    """Why ``step_count`` (a Python int) cannot be an optimizer's step count, or None."""
    if step_count < 0:
        return f"must be >= 0, got {step_count}"
    if step_count > MAX_STEP_COUNT:
        return (f"must be <= 2**53 = {MAX_STEP_COUNT} (a larger count is not exact in the float64 "
                f"the bias corrections use), got {step_count}")
    return None


def _first_index(mask):
    """The (row, column) of the first true entry of the 2-d ``mask``."""
    row, column = np.argwhere(mask)[0]
    return int(row), int(column)


def _state_problem(kind, step_count, buffers):
    """What makes ``step_count`` and ``buffers`` a state no ``kind`` optimizer reaches, or None.

    ``buffers`` is None or the rows the optimizer uses, shape (n_moments,
    n_params). Returns ``(what, problem)``, ``what`` being "step_count" or
    "buffers". What training can produce follows from nnfast.optimizers,
    ``BaseNet.fit`` and the update kernels (src/nnfast/_optim.pyx, with
    nnfast.reference as their spec):

    - a new optimizer, and ``reset()``, have step count 0 and no buffers;
    - ``fit`` binds zero buffers before the first update (``_bind``), so a
      step count > 0 always comes with buffers, and buffers are all zero
      while the count is 0 (only an update changes them, and each adds 1);
    - an update, buffers included, is applied only if every new parameter
      is finite: SGD's momentum and Adam's first moment m stay finite
      (an infinite one makes the update infinite or NaN), and nothing is
      ever NaN;
    - Adam's second moment ``v = beta2 v + (1 - beta2) g g`` is never
      negative, but it does overflow to +inf on huge gradients while the
      update (``m / inf = 0``) stays finite: +inf is a state training
      reaches (tests/test_io_hostile.py fits one) and is kept.
    """
    if buffers is None:
        if step_count != 0:
            return "step_count", f"must be 0 while there are no moment buffers, got {step_count}"
        return None
    nan = np.isnan(buffers)
    if nan.any():
        row, index = _first_index(nan)
        return "buffers", f"must not be NaN, got nan in row {row} at index {index}"
    if buffers.shape[0] > 0:
        first = buffers[0]
        infinite = ~np.isfinite(first)
        if infinite.any():
            index = int(np.flatnonzero(infinite)[0])
            moment = "the momentum" if kind == "SGD" else "the first moments"
            return "buffers", f"row 0 ({moment}) must be finite, got {first[index]} at index {index}"
    if kind in ("Adam", "AdamW"):
        negative = buffers[1] < 0
        if negative.any():
            index = int(np.flatnonzero(negative)[0])
            return "buffers", f"row 1 (the second moments) must be >= 0, got {buffers[1][index]} at index {index}"
    if step_count == 0:
        nonzero = buffers != 0
        if nonzero.any():
            row, index = _first_index(nonzero)
            return "buffers", (f"must be all zero while the step count is 0, "
                               f"got {buffers[row, index]} in row {row} at index {index}")
    return None


# -- save --------------------------------------------------------------------


def save(net: BaseNet | BaseEnsemble, path: PathLike, *,
         metadata: Mapping[str, Any] | None = None) -> pathlib.Path:
    """Write ``net`` (or an ensemble) to the ``.npz`` file ``path``, atomically.

    The file is written at exactly ``path``: unlike ``numpy.savez``, no
    ``.npz`` suffix is added, so ``load(path)`` always reads back what
    ``save(path)`` wrote. An existing file is replaced atomically: the net
    is written to a temporary file in the same directory, which is
    flushed, fsynced and renamed over the target (then the directory is
    fsynced, where the platform allows). Whatever happens, the path holds
    the old file or the new one, never a mixture or a truncated file. If
    ``path`` is a symbolic link, the file it points to is replaced and the
    link kept. A replaced file keeps its permission bits; a new one gets
    the usual ``0o666`` less the umask. The owner becomes the saving user
    and hard links to the old file keep the old contents, as with any
    rename. Writing needs permission to create files in the directory.

    If ``save`` fails (an exception from the net's checks, from the disk,
    or KeyboardInterrupt) the old file is untouched, the temporary file is
    removed and the exception propagates. Only a process killed outright
    (SIGKILL, power loss) may leave a temporary file
    ``.<name>.<16 hex digits>.nnfast-tmp`` behind; later saves leave it
    alone (it could be another process's save in progress), and it is safe
    to delete while no save is running.

    Parameters
    ----------
    net : nnfast.Net, nnfast.reference.Net, or an ensemble of them
        The net, with its optimizer (``net.optimizer``), if any; or an
        ``nnfast.Ensemble`` (``nnfast.reference.Ensemble``), every member so.
    path : str or os.PathLike
        Where to write; ``".npz"`` is the conventional suffix.
    metadata : mapping of str to scalar or 1-d sequence, optional
        Values to keep beside a net (not an ensemble), read back by
        ``load_with_metadata``: keys are identifiers, values booleans,
        integers, finite floats or strings, or 1-d sequences of one of
        these kinds (see the module docstring).

    Returns
    -------
    pathlib.Path
        The path written (as given, not the file a link points to).

    Raises
    ------
    TypeError
        If ``net`` is not one of the two net classes (subclasses included:
        ``load`` could not rebuild them), or its optimizer is not an
        ``nnfast.optimizers`` SGD, Adam or AdamW.
    ValueError
        If the net's state would not load back: non-finite parameters,
        invalid optimizer hyper-parameters, optimizer buffers that belong
        to a different net, or optimizer state no training produces (see
        ``load``). Also if ``path`` is an existing file that is not a
        regular file (a FIFO, a device, ...), or ``metadata`` holds a key
        or a value the format has no place for. Nothing is written.
    IsADirectoryError
        If ``path`` is a directory.
    OSError
        If the file cannot be written (a full disk, a file-size limit, no
        permission, ...): the old file is left as it was.
    """
    arrays = _ensemble_arrays(net) if _is_ensemble(net) else _net_arrays(net)
    if metadata is not None:
        if _is_ensemble(net):
            raise TypeError("metadata can be saved with a net, not with an ensemble")
        arrays.update(_metadata_arrays(metadata))
    path = pathlib.Path(_fspath(path))
    write_atomically(path, lambda file: np.savez(file, **arrays))
    return path


def _metadata_arrays(metadata):
    """The entries of ``metadata`` (a mapping), checked as the module docstring describes."""
    if not isinstance(metadata, Mapping):
        raise TypeError(f"metadata must be a mapping of str to values, got {type(metadata).__name__}")
    arrays = {}
    for key, value in metadata.items():
        if not isinstance(key, str) or not _METADATA_KEY.match(key):
            raise ValueError(f"metadata keys must be identifiers (letters, digits, _), got {key!r}")
        array = np.array(value)
        if array.dtype.kind not in "biufU" or array.ndim > 1:
            raise ValueError(
                f"metadata[{key!r}] must be a bool, int, float or str, or a 1-d sequence of one of "
                f"these, got {type(value).__name__} (dtype {array.dtype}, {array.ndim} dimensions)"
            )
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise ValueError(f"metadata[{key!r}] must be finite, got {value!r}")
        if array.dtype.kind in "iu":
            array = array.astype(np.int64)
        elif array.dtype.kind == "f":
            array = array.astype(np.float64)
        arrays[METADATA_PREFIX + key] = array
    return arrays


def _ensemble_classes():
    """The ensemble classes a file may name, by the name it uses."""
    from nnfast.ensemble import Ensemble
    from nnfast.reference import Ensemble as ReferenceEnsemble

    return {"nnfast.Ensemble": Ensemble, "nnfast.reference.Ensemble": ReferenceEnsemble}


def _is_ensemble(obj):
    from nnfast.ensemble import BaseEnsemble

    return isinstance(obj, BaseEnsemble)


def _ensemble_arrays(ensemble):
    """The entries of an ensemble file: its own, then each member's net entries under ``member<i>/``."""
    names = [name for name, cls in _ensemble_classes().items() if type(ensemble) is cls]
    if not names:
        raise TypeError(f"save needs an nnfast.Ensemble or nnfast.reference.Ensemble, got {type(ensemble).__name__}")
    bases, indices = zip(*ensemble._seed_bases)
    arrays = {
        "format": np.array(FORMAT_NAME),
        "format_version": np.array(FORMAT_VERSION, dtype=np.int64),
        "class": np.array(names[0]),
        "n_members": np.array(ensemble.n_members, dtype=np.int64),
        "init_seeds": np.array(ensemble.init_seeds, dtype=np.uint64),
        "seed_bases": np.array(bases, dtype=np.uint64),
        "seed_indices": np.array(indices, dtype=np.int64),
        "fits": np.array(ensemble._fits, dtype=np.int64),
    }
    for i, member in enumerate(ensemble.members):
        for name, value in _net_arrays(member).items():
            if name not in ("format", "format_version"):
                arrays[f"member{i}/{name}"] = value
    return arrays


def _class_name(net):
    """The name under which ``net``'s class is saved."""
    for name, cls in _net_classes().items():
        if type(net) is cls:
            return name
    raise TypeError(f"save needs an nnfast.Net or nnfast.reference.Net, got {type(net).__name__}")


def _net_arrays(net):
    """All entries of the file for ``net``, as a dict of arrays (copies, not views of the net)."""
    class_name = _class_name(net)
    # The one place where save reads the net's mutable state: the
    # parameters and the optimizer's hyper-parameters, step count and
    # buffers. They are copied under the net's read lock, so that a save
    # while another thread trains the net writes the state between two
    # steps, and everything after works on that snapshot.
    with net._reading():
        optimizer = net.optimizer
        kind = _optimizer_kind(optimizer)
        params = net._params.copy()
        if optimizer is not None:
            hyperparameters = {name: getattr(optimizer, name) for name, _, _ in _HYPERPARAMETERS[kind]}
            step_count = optimizer.step_count
            buffers = optimizer.buffers
            if isinstance(buffers, np.ndarray):
                buffers = buffers.copy()
    if not np.isfinite(params).all():
        raise ValueError("cannot save a net whose parameters are not all finite")
    arrays = {
        "format": np.array(FORMAT_NAME),
        "format_version": np.array(FORMAT_VERSION, dtype=np.int64),
        "class": np.array(class_name),
        "layers": np.array(net._layers, dtype=np.int64),
        "activations": np.array(list(net._activations), dtype=np.str_),
        "negative_slope": np.array(net._negative_slope, dtype=np.float64),
        "bias": np.array(list(net._bias), dtype=np.bool_),
        "loss": np.array(net._loss_name),
        "l2": np.array(net._l2, dtype=np.float64),
        "init": np.array(net._init),
        "init_std": np.array(net._init_std, dtype=np.float64),
        "dtype": np.array(net._dtype.name),
        "params": params,
        "optimizer": np.array(kind),
    }
    if optimizer is not None:
        arrays.update(_optimizer_arrays(kind, hyperparameters, step_count, buffers, net.n_params, net._dtype))
    return arrays


def _optimizer_kind(optimizer):
    """The name under which ``optimizer``'s class is saved."""
    if optimizer is None:
        return "none"
    for kind, cls in _OPTIMIZERS.items():
        if type(optimizer) is cls:
            return kind
    raise TypeError(
        f"save needs the net's optimizer to be None or an nnfast.optimizers SGD, Adam or AdamW, "
        f"got {type(optimizer).__name__}"
    )


def _optimizer_arrays(kind, values, step_count, buffers, n_params, dtype):
    """The entries of a ``kind`` optimizer with hyper-parameters ``values``, checked to load back
    onto a net of ``n_params`` ``dtype`` parameters."""
    try:
        optimizer = _build_optimizer(kind, values)
    except (TypeError, ValueError) as error:
        raise ValueError(f"cannot save the net: its optimizer's hyper-parameters are invalid: {error}") from error
    arrays = {}
    for name, element, _ in _HYPERPARAMETERS[kind]:
        dtype_of = {"b": np.bool_, "f": np.float64, "U": np.str_}[element]
        arrays[f"optimizer_{name}"] = np.array(values[name], dtype=dtype_of)
    if isinstance(step_count, (bool, np.bool_)) or not isinstance(step_count, (int, np.integer)) or step_count < 0:
        raise ValueError(f"cannot save the net: its optimizer's step_count must be an int >= 0, got {step_count!r}")
    step_count = int(step_count)
    problem = _step_count_problem(step_count)
    if problem:
        raise ValueError(f"cannot save the net: its optimizer's step_count {problem}; "
                         f"call net.reset_optimizer() to start its state afresh")
    arrays["optimizer_step_count"] = np.array(step_count, dtype=np.int64)
    if buffers is not None:
        expected = (optimizer.n_moments, n_params)
        if not isinstance(buffers, np.ndarray) or buffers.shape != expected or buffers.dtype != dtype:
            raise ValueError(
                f"cannot save the net: its optimizer holds state of shape {np.shape(buffers)} "
                f"({getattr(buffers, 'dtype', type(buffers).__name__)}), not the {expected} {dtype} "
                f"of this net; call net.reset_optimizer() first"
            )
        arrays["optimizer_buffers"] = buffers
    problem = _state_problem(kind, step_count, buffers)
    if problem:
        what, message = problem
        raise ValueError(
            f"cannot save the net: its optimizer's {what} {message} (a state no training produces); "
            f"call net.reset_optimizer() to start its state afresh"
        )
    return arrays


def _save_target(path):
    """The file that saving to ``path`` replaces, and its permission bits (None if it does not exist).

    A symbolic link at ``path`` (or in its directories) is followed, so the
    file it points to is replaced and the link survives, as when writing to
    the link with ``open``; a dangling link gets its file created.
    """
    target = os.path.realpath(path)
    try:
        status = os.lstat(target)
    except FileNotFoundError:
        return target, None
    if stat.S_ISLNK(status.st_mode):  # realpath stops where links loop
        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), os.fspath(path))
    if stat.S_ISDIR(status.st_mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), os.fspath(path))
    if not stat.S_ISREG(status.st_mode):
        raise ValueError(
            f"cannot save to {os.fspath(path)}: it is a {_file_kind(status.st_mode)}, not a regular file "
            f"(save replaces files, and would replace it)"
        )
    return target, stat.S_IMODE(status.st_mode)


def _create_temporary(directory, name):
    """Create a new, empty temporary file next to ``name`` in ``directory``; return its path and descriptor.

    ``O_EXCL`` makes the name ours alone; mode 0o666 lets the umask apply
    as it does to any new file.
    """
    for _ in range(100):
        temporary = os.path.join(directory, f".{name[:200]}.{secrets.token_hex(8)}{TEMP_SUFFIX}")
        try:
            return temporary, os.open(temporary, _TEMP_FLAGS, 0o666)
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no unused temporary file name found", temporary)


def _remove_quietly(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def write_atomically(path: PathLike, write: Callable[[BinaryIO], object]) -> None:
    """Replace the file at ``path`` with what ``write(file)`` writes to a binary file, atomically.

    Through a temporary file in the same directory, as ``save`` describes.
    """
    target, mode = _save_target(path)
    directory, name = os.path.split(target)  # realpath is absolute: directory is never empty
    temporary, descriptor = _create_temporary(directory, name)
    file = None
    try:
        if mode is not None:  # before any data is in it: the old file's readers only, from the start
            if os.chmod in os.supports_fd:
                os.chmod(descriptor, mode)
            else:  # pragma: no cover - platforms without fchmod
                os.chmod(temporary, mode)
        file = os.fdopen(descriptor, "wb")
        with file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException:
        if file is None:
            os.close(descriptor)
        _remove_quietly(temporary)  # after a completed replace, there is nothing to remove
        raise
    _fsync_directory(directory)


def _fsync_directory(directory):
    """Make a rename in ``directory`` durable, where the platform can; best effort."""
    try:
        descriptor = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


# -- load --------------------------------------------------------------------


def load(path: PathLike) -> BaseNet | BaseEnsemble:
    """Read a net (or an ensemble) written by ``save``.

    The net is rebuilt as its recorded class with its recorded options (and
    ``seed=0``, immaterial since the parameters are then copied in), and
    given its optimizer with the recorded hyper-parameters, step count and
    buffers. Training the loaded net continues exactly as training the
    saved one would have.

    Loading is safe on any file: it never blocks (the path is opened with
    ``O_NONBLOCK`` and anything but a regular file is refused before a byte
    is read), never executes anything from the file (nothing is unpickled,
    imported or evaluated), and allocates no more than a small multiple of
    the file's actual size, whatever sizes the file declares: every
    ``.npy`` header is checked against the entry it must be, and against
    the bytes really stored, before its data is read, and the parameters'
    and optimizer buffers' shapes against the architecture.

    Parameters
    ----------
    path : str or os.PathLike
        The file, read at exactly this path (no suffix is added).

    Returns
    -------
    nnfast.Net, nnfast.reference.Net, nnfast.Ensemble or nnfast.reference.Ensemble

    Raises
    ------
    PathNotFoundError
        If there is no file at ``path``: a subclass of both
        ``FileNotFoundError`` and ``ValueError``.
    PathIsADirectoryError
        If ``path`` is a directory: a subclass of both
        ``IsADirectoryError`` and ``ValueError``.
    PermissionError, OSError
        If the file cannot be opened for another reason (no permission,
        a symbolic link loop, ...).
    ValueError
        If it is not a valid nnfast file, with a message that starts with
        ``"<path> is not a valid nnfast file: "`` and says why: not a
        regular file (a FIFO, a character or block device, a socket);
        not an uncompressed ``.npz`` archive; truncated or corrupted (a
        CRC-32 mismatch); a member that is compressed, encrypted, stored
        twice, unknown, or larger than the file; an entry missing, or
        whose ``.npy`` header declares an object dtype, a dtype of the
        wrong kind, a wrong shape, or more data than is stored; a format
        version this nnfast does not read; an unknown class, activation,
        loss or optimizer; parameters of the wrong length or not finite;
        values the net's or the optimizer's own checks refuse; or
        optimizer state no training produces: a step count < 0 or
        > 2**53, a step count > 0 without buffers, nonzero buffers with a
        step count of 0, NaN in the buffers, an infinite momentum or
        first moment, or a negative Adam second moment.
    """
    return _load(path)[0]


def load_with_metadata(path: PathLike) -> tuple[BaseNet | BaseEnsemble, dict[str, Any]]:
    """Read a net written by ``save`` and the metadata saved with it.

    Parameters
    ----------
    path : str or os.PathLike
        The file, read at exactly this path (no suffix is added).

    Returns
    -------
    (net, metadata)
        The net as ``load`` returns it, and a dict of the metadata: a
        0-d entry as a Python bool, int, float or str, a 1-d one as an
        ndarray (int64, float64, bool or unicode). Empty for a file
        without metadata (and for an ensemble).

    Raises
    ------
    The exceptions of ``load``, which checks metadata entries too: a
    ValueError for a key that is not an identifier, or a value of more
    than one dimension, of another kind, or not finite.
    """
    return _load(path)


def _load(path):
    """``(net or ensemble, metadata dict)`` from the file at ``path``."""
    name = _fspath(path)
    descriptor, size = open_regular_file(name)
    with os.fdopen(descriptor, "rb") as file:
        try:
            archive = Archive(file, size)
            if "n_members" in archive:
                return _ensemble_from_archive(archive), {}
            metadata = _metadata_from_archive(archive)
            return _net_from_archive(_WithoutMetadata(archive)), metadata
        except _Invalid as error:
            raise ValueError(f"{name} is not a valid nnfast file: {error}") from error.__cause__


def _metadata_from_archive(archive):
    """The metadata entries of a net file, each header checked before its data is read."""
    metadata = {}
    for name in archive.names():
        if not name.startswith(METADATA_PREFIX):
            continue
        key = name[len(METADATA_PREFIX):]
        if not _METADATA_KEY.match(key):
            raise _Invalid(f"metadata entry {name!r}: its key is not an identifier")
        header = archive.header(name)
        if len(header.shape) > 1:
            raise _Invalid(f"metadata entry {name!r} must be 0-d or 1-d, got shape {header.shape}")
        value = archive.read(name)
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            raise _Invalid(f"metadata entry {name!r} must be finite")
        metadata[key] = value.item() if value.ndim == 0 else value
    return metadata


class _WithoutMetadata:
    """A net file's archive seen without its metadata entries, as the net's checks read it."""

    def __init__(self, archive):
        self._archive = archive

    def names(self):
        return [name for name in self._archive.names() if not name.startswith(METADATA_PREFIX)]

    def __contains__(self, name):
        return not name.startswith(METADATA_PREFIX) and name in self._archive

    def header(self, name):
        return self._archive.header(name)

    def read(self, name):
        return self._archive.read(name)


def open_regular_file(name: str, what: str = "nnfast file") -> tuple[int, int]:
    """Open ``name`` for reading if it is a regular file; return the descriptor and the file's size.

    Anything else raises the exceptions ``load`` documents, the
    ``ValueError`` saying that ``name`` "is not a valid <what>".

    ``O_NONBLOCK`` makes opening a FIFO return at once instead of waiting
    for a writer, and the type is checked on the open descriptor
    (``fstat``), so nothing can swap the file between the check and the
    reading.
    """
    try:
        descriptor = os.open(name, _OPEN_FLAGS)
    except FileNotFoundError:
        raise PathNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), name) from None
    except IsADirectoryError:  # where a directory cannot be opened at all
        raise PathIsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), name) from None
    except OSError as error:
        if error.errno != errno.ENXIO:  # what opening a socket (or an absent device) gives
            raise
        try:
            kind = _file_kind(os.stat(name).st_mode)
        except OSError:
            kind = "special file"
        raise ValueError(f"{name} is not a valid {what}: it is a {kind}, not a regular file") from error
    try:
        status = os.fstat(descriptor)
        if stat.S_ISDIR(status.st_mode):
            raise PathIsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), name)
        if not stat.S_ISREG(status.st_mode):
            raise ValueError(
                f"{name} is not a valid {what}: it is a {_file_kind(status.st_mode)}, not a regular file"
            )
    except BaseException:
        os.close(descriptor)
        raise
    return descriptor, status.st_size


def _net_from_archive(archive):
    """Build the net the archive describes, checking every entry before its data is used."""
    unknown = sorted(set(archive.names()) - _ALL_ENTRIES)
    if unknown:
        raise _Invalid(f"unexpected entries {', '.join(map(repr, unknown))} (no nnfast file has them)")
    version = _check_format(archive)
    values = {}
    for name, element, shape in _NET_ENTRIES:
        if shape in (("hidden",), ("layers",)):  # checked before the data is read, as every shape is
            n_layers = len(values["layers"]) - 1
            shape = (n_layers - 1,) if shape == ("hidden",) else (n_layers,)
        values[name] = _entry_of_version(archive, name, element, shape, version)
        if name == "layers":
            values[name] = _checked_layers(values[name])
    kind = values["optimizer"]
    _checked_choice("optimizer kind", kind, tuple(_HYPERPARAMETERS))
    _check_no_extra_entries(archive.names(), kind, version)
    cls = _checked_class(values["class"])
    dtype = np.dtype(_checked_choice("dtype", values["dtype"], ("float32", "float64")))
    n_params = _checked_n_params(values["layers"], values["bias"])
    _check_params_header(archive, n_params, dtype)
    for index, activation in enumerate(values["activations"]):
        _checked_choice("activation", activation, ACTIVATIONS, f" for hidden layer {index}")
    _checked_choice("loss", values["loss"], LOSSES)
    _checked_choice("init", values["init"], INITS)
    optimizer = _optimizer_from_archive(archive, kind, n_params, dtype, version)
    # Every header has been checked against the architecture: now the data.
    params = _read_params(archive)
    if optimizer is not None:
        _read_optimizer_state(archive, optimizer, kind)
    try:
        net = cls(values["layers"], activation=values["activations"], negative_slope=values["negative_slope"],
                  bias=values["bias"], loss=values["loss"], l2=values["l2"], init=values["init"],
                  init_std=values["init_std"], dtype=dtype.name, seed=0)
    except (TypeError, ValueError) as error:
        raise _Invalid(f"its options are refused by {values['class']}: {error}") from error
    net._params[...] = params
    net.optimizer = optimizer
    return net


# The entries of an ensemble file besides its members' (see the module docstring).
_ENSEMBLE_ENTRIES = ("format", "format_version", "class", "n_members", "init_seeds", "seed_bases", "seed_indices",
                     "fits")


class _MemberEntries:
    """Member ``i``'s entries of an ensemble file (``member<i>/<name>``), read as a net file's ``<name>``."""

    def __init__(self, archive, index):
        self._archive = archive
        self._prefix = f"member{index}/"

    def _full(self, name):
        return name if name in ("format", "format_version") else self._prefix + name

    def names(self):
        own = [name[len(self._prefix):] for name in self._archive.names() if name.startswith(self._prefix)]
        return own + ["format", "format_version"]

    def __contains__(self, name):
        return self._full(name) in self._archive

    def header(self, name):
        return self._archive.header(self._full(name))

    def read(self, name):
        return self._archive.read(self._full(name))


def _ensemble_from_archive(archive):
    """Build the ensemble the archive describes: its entries, then each member as a net file's."""
    _check_format(archive)
    class_name = _entry(archive, "class", "U", ())
    classes = _ensemble_classes()
    if class_name not in classes:
        raise _Invalid(f"unknown ensemble class {class_name!r}")
    n_members = _entry(archive, "n_members", "iu", ())
    members = {name.split("/", 1)[0] for name in archive.names() if "/" in name}
    expected = {f"member{i}" for i in range(n_members)} if n_members >= 1 else set()
    if n_members < 1 or members != expected:
        raise _Invalid(f"n_members is {n_members}, but the file holds the members {sorted(members)}")
    unknown = sorted(name for name in archive.names() if "/" not in name and name not in _ENSEMBLE_ENTRIES)
    if unknown:
        raise _Invalid(f"unexpected entries {', '.join(map(repr, unknown))} (no nnfast ensemble file has them)")
    init_seeds = _entry(archive, "init_seeds", "u", (n_members,))
    bases = _entry(archive, "seed_bases", "u", (n_members,))
    indices = _entry(archive, "seed_indices", "iu", (n_members,))
    fits = _entry(archive, "fits", "iu", ())
    if fits < 0 or any(i < 0 for i in indices):
        raise _Invalid("fits and seed_indices must be >= 0")
    nets = []
    for i in range(n_members):
        try:
            nets.append(_net_from_archive(_MemberEntries(archive, i)))
        except _Invalid as error:
            raise _Invalid(f"member {i}: {error}") from error.__cause__
    member_class = classes[class_name]._net_class
    if any(type(net) is not member_class for net in nets):
        member_name = next(name for name, cls in _net_classes().items() if cls is member_class)
        raise _Invalid(f"the members of an {class_name} must be {member_name}")
    first = nets[0]
    if any((net.layers, net.dtype, net.loss_name) != (first.layers, first.dtype, first.loss_name) for net in nets):
        raise _Invalid("the members do not share one architecture, dtype and loss")
    ensemble = object.__new__(classes[class_name])
    ensemble.members = nets
    ensemble.init_seeds = list(init_seeds)
    ensemble._seed_bases = list(zip(bases, indices))
    ensemble._fits = fits
    ensemble.fit_seeds, ensemble.histories = None, None
    ensemble.diverged = [False] * n_members
    return ensemble


def _entry(archive, name, element, shape):
    """Entry ``name`` as a Python value, checked to have the element kind and shape given.

    ``element`` is a string of acceptable ``dtype.kind`` letters; ``shape``
    a tuple in which None stands for any length. The header is checked
    before the data is read. A 0-d entry becomes a scalar, a 1-d one a
    list.
    """
    if name not in archive:
        raise _Invalid(f"entry {name!r} is missing")
    header = archive.header(name)
    fits = len(header.shape) == len(shape) and all(
        want is None or want == got for want, got in zip(shape, header.shape)
    )
    if header.dtype.kind not in element or not fits:
        wanted = "a scalar" if shape == () else "a 1-d array" if shape == (None,) else f"an array of shape {shape}"
        raise _Invalid(
            f"entry {name!r} must be {wanted} of {_KIND_NAMES[element]} type, "
            f"got dtype {header.dtype} and shape {header.shape}"
        )
    value = archive.read(name).tolist()  # Python str, int, float, bool, or a list of them
    if element == "f" and not all(map(math.isfinite, value if isinstance(value, list) else [value])):
        raise _Invalid(f"entry {name!r} must be finite, got {value!r}")
    return value


def _entry_of_version(archive, name, element, shape, version):
    """``_entry``, or for an entry added after format ``version`` the value it implies."""
    if version < 3 and name in _ADDED_IN_VERSION_3:
        return _ADDED_IN_VERSION_3[name]
    return _entry(archive, name, element, shape)


def _check_format(archive):
    """Check the file says it is an nnfast file of a version this code reads; return the version."""
    if "format" not in archive:
        raise _Invalid("entry 'format' is missing (is it an nnfast file at all?)")
    format_name = _entry(archive, "format", "U", ())
    if format_name != FORMAT_NAME:
        raise _Invalid(f"its format entry is {format_name!r}, not {FORMAT_NAME!r}")
    version = _entry(archive, "format_version", "iu", ())
    if version not in READABLE_VERSIONS:
        newer = " (the file was written by a newer nnfast)" if version > FORMAT_VERSION else ""
        readable = ", ".join(map(str, READABLE_VERSIONS[:-1])) + f" and {READABLE_VERSIONS[-1]}"
        raise _Invalid(f"file format version {version}, this nnfast reads {readable}{newer}")
    return version


def _check_no_extra_entries(names, kind, version):
    """Refuse entries format ``version`` does not have for a ``kind`` optimizer."""
    known = {name for name, _, _ in _NET_ENTRIES} | {"params"}
    if kind != "none":
        known |= {f"optimizer_{name}" for name, _, _ in _HYPERPARAMETERS[kind]}
        known |= {"optimizer_step_count", "optimizer_buffers"}
    if version < 3:
        known -= set(_ADDED_IN_VERSION_3)
    extra = sorted(set(names) - known)
    if extra:
        raise _Invalid(f"unexpected entries {', '.join(map(repr, extra))} (for optimizer {kind!r})")


def _checked_choice(what, value, choices, where=""):
    """``value`` if it is one of ``choices``; ``where`` adds to the message where it was found."""
    if value not in choices:
        raise _Invalid(f"unknown {what} {value!r}{where} (known: {', '.join(map(repr, choices))})")
    return value


def _checked_class(name):
    """The net class recorded as ``name``, from the fixed table only."""
    classes = _net_classes()
    return classes[_checked_choice("class", name, tuple(classes))]


def _checked_layers(layers):
    """The layers entry (a list), checked as the constructor would."""
    try:
        check_layers(layers)
    except (TypeError, ValueError) as error:
        raise _Invalid(str(error)) from error
    return layers


def _checked_n_params(layers, bias):
    """The number of parameters of ``layers`` and ``bias`` (checked lists, one flag per layer).

    Counted in Python integers, so that absurd hand-edited sizes give a
    mismatch with the params entry rather than an overflow or a huge
    allocation.
    """
    return sum(fan_in * fan_out + (fan_out if has_bias else 0)
               for fan_in, fan_out, has_bias in zip(layers, layers[1:], bias))


def _check_params_header(archive, n_params, dtype):
    """Check the params entry's header against the architecture, before its data is read."""
    if "params" not in archive:
        raise _Invalid("entry 'params' is missing")
    header = archive.header("params")
    if header.dtype != dtype:
        raise _Invalid(f"entry 'params' has dtype {header.dtype}, but the net's dtype is {dtype}")
    if header.shape != (n_params,):
        raise _Invalid(
            f"entry 'params' has shape {header.shape}, but the architecture has {n_params} parameters"
        )


def _read_params(archive):
    """The params entry (its header already checked), checked to be finite."""
    params = archive.read("params")
    bad = np.flatnonzero(~np.isfinite(params))
    if bad.size:
        raise _Invalid(f"entry 'params' must be finite, got {params[bad[0]]} at index {bad[0]}")
    return params


def _build_optimizer(kind, values):
    """A fresh optimizer of ``kind`` with the hyper-parameters ``values`` (a dict)."""
    if kind == "SGD":
        return SGD(values["lr"], momentum=values["momentum"], nesterov=values["nesterov"],
                   weight_decay=values["weight_decay"], style=values["style"])
    if kind == "Adam":
        return Adam(values["lr"], betas=tuple(values["betas"]), eps=values["eps"],
                    weight_decay=values["weight_decay"], style=values["style"])
    return AdamW(values["lr"], betas=tuple(values["betas"]), eps=values["eps"],
                 weight_decay=values["weight_decay"])


def _optimizer_from_archive(archive, kind, n_params, dtype, version):
    """The optimizer a format ``version`` file describes, with its step count, for a net of
    ``n_params`` ``dtype`` parameters (None for kind ``"none"``).

    The buffers entry's header is checked; its data is read later, by
    ``_read_optimizer_state``.
    """
    if kind == "none":
        return None
    values = {name: _entry_of_version(archive, f"optimizer_{name}", element, shape, version)
              for name, element, shape in _HYPERPARAMETERS[kind]}
    try:
        optimizer = _build_optimizer(kind, values)
    except (TypeError, ValueError) as error:
        raise _Invalid(f"its {kind} hyper-parameters are refused: {error}") from error
    step_count = _entry(archive, "optimizer_step_count", "iu", ())
    problem = _step_count_problem(step_count)
    if problem:
        raise _Invalid(f"entry 'optimizer_step_count' {problem}")
    optimizer.step_count = step_count
    stored_rows = 2 if version == 1 else optimizer.n_moments
    if "optimizer_buffers" in archive:
        header = archive.header("optimizer_buffers")
        if header.dtype != dtype or header.shape != (stored_rows, n_params):
            raise _Invalid(
                f"entry 'optimizer_buffers' must have shape {(stored_rows, n_params)} and dtype {dtype}, "
                f"got shape {header.shape} and dtype {header.dtype}"
            )
    return optimizer


def _read_optimizer_state(archive, optimizer, kind):
    """Read the buffers entry (its header already checked) into the ``kind`` ``optimizer``;
    refuse state no training produces."""
    buffers = None
    if "optimizer_buffers" in archive:
        buffers = np.array(archive.read("optimizer_buffers")[: optimizer.n_moments], order="C")
    problem = _state_problem(kind, optimizer.step_count, buffers)
    if problem:
        what, message = problem
        raise _Invalid(f"entry 'optimizer_{what}' {message} (a state no training produces)")
    optimizer.buffers = buffers
