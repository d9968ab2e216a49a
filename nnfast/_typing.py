"""Type aliases the public annotations share (see py.typed)."""
from __future__ import annotations

import os
from typing import Any, Union

import numpy as np
from numpy.typing import NDArray

# What nnfast's save and load take as a path: anything os.fspath accepts.
PathLike = Union[str, bytes, os.PathLike[str], os.PathLike[bytes]]
# The arrays nets return: float32 or float64, the net's dtype.
FloatArray = NDArray[np.floating[Any]]
