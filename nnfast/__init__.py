"""nnfast: fully connected neural networks on the CPU at the speed the arithmetic allows.

``nnfast.Net`` trains and runs MLPs with compiled kernels (one call per
``fit``, no Python per step); ``nnfast.reference.Net`` is the same network
in plain NumPy, the specification every kernel is tested against.
"""
from nnfast._history import DivergenceError, History
from nnfast import examples
from nnfast.net import Net

__all__ = ["Net", "History", "DivergenceError", "examples"]
__version__ = "0.1.0"
