"""nnfast: fully connected neural networks on the CPU at the speed the arithmetic allows.

``nnfast.Net`` trains and runs MLPs with compiled kernels (one call per
``fit``, no Python per step); ``nnfast.reference.Net`` is the same network
in plain NumPy, the specification every kernel is tested against.
"""
try:
    from nnfast import _checks  # type: ignore[attr-defined]  # noqa: F401  (the first compiled module anything imports)
except ImportError as error:  # pragma: no cover - depends on how nnfast was installed
    # Usually an unbuilt source folder found through the current directory;
    # the message says which case this is (tests/test_missing_kernels.py).
    from nnfast._missing_kernels import message

    raise ImportError(message(__path__[0], error)) from error

from nnfast import examples, schedules
from nnfast._history import DivergenceError, History, TrainingInterrupted
from nnfast._threads import get_num_threads, set_num_threads
from nnfast.ensemble import Ensemble, cross_validate
from nnfast.io import load
from nnfast.net import Net
from nnfast.optimizers import SGD, Adam, AdamW

__all__ = ["Net", "Ensemble", "cross_validate", "SGD", "Adam", "AdamW", "History", "DivergenceError", "TrainingInterrupted", "load",
           "examples", "schedules", "set_num_threads", "get_num_threads"]
__version__ = "0.1.0"
