"""``nnfast.Net``: the compiled network."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from nnfast import _kernels, _memory
from nnfast._base import BaseNet
from nnfast._validation import LOSSES

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from nnfast._typing import FloatArray

__all__ = ["Net"]


class Net(BaseNet):
    __doc__ = (BaseNet.__doc__ or "").replace(  # (or ""): None under python -OO
        "(shared interface; use a subclass)",
        "trained and run by compiled kernels.\n\n    "
        "Same interface and results as ``nnfast.reference.Net``, the NumPy\n    "
        "specification; every step of ``fit`` runs in one compiled call\n    "
        "without the GIL. One net may be used from many threads at once;\n    "
        "see the README's Guarantees",
    )

    def _make_runtime(self, kernels=None):
        """Bind the kernel build (by default the one nnfast/_kernels.py chooses for
        these layers) and its compiled core, with the net's lock, to this net."""
        self._kernels = _kernels.for_layers(self._layers) if kernels is None else kernels
        self._fast = self._kernels.fastpath.FastPath(self._layout.table, self._loss_code(),
                                                     self._negative_slope, self._l2, self._params)

    _RUNTIME = ("_kernels", "_fast")

    # -- locking: nnfast/_lock.pyx ------------------------------------------

    def _reading(self):
        return self._fast.lock.reading()

    def _writing(self):
        return self._fast.lock.writing()

    def _owning(self):
        return self._fast.lock.owning()

    # -- the fast paths ------------------------------------------------------

    def _check_data(self, x, y, names=("x", "y")):
        # Arrays the compiled checks accept skip the Python validation; see nnfast/_fastpath.pyx.
        if self._fast.data_trusted(x, y):
            return x, y if y.ndim == 2 else y.reshape(-1, 1)
        return super()._check_data(x, y, names)

    def predict(self, x: ArrayLike) -> FloatArray:
        out = self._fast.predict(x)
        return super().predict(x) if out is None else out

    predict.__doc__ = BaseNet.predict.__doc__

    def train_step(self, x: ArrayLike, y: ArrayLike, lr: float, sample_weight: ArrayLike | None = None) -> float:
        loss = None if sample_weight is not None else self._fast.train_step(x, y, lr)
        return super().train_step(x, y, lr, sample_weight) if loss is None else loss

    train_step.__doc__ = BaseNet.train_step.__doc__

    # -- hooks ---------------------------------------------------------------

    def _loss_code(self):
        return LOSSES.index(self._loss_name)

    def _workspace_bytes(self, rows):
        return self._layout.workspace_length(rows) * self._dtype.itemsize

    def _predict(self, x):
        return self._fast.predict(x)  # x is validated, so never None

    def _forward(self, x):
        rows = x.shape[0]
        _memory.check_allocation(rows * self._layout.hidden_width * self._dtype.itemsize,
                                 lambda: f"forward on {rows:,} rows (the hidden activations)")
        out, act = self._fast.forward(x)
        hidden, start = [], 0
        for size in self._layers[1:-1]:
            hidden.append(act[start : start + rows * size].reshape(rows, size))
            start += rows * size
        return out, hidden

    def _loss(self, x, y, weights):
        return self._fast.loss(x, y, weights)

    def _gradients(self, x, y, weights):
        return self._fast.loss_and_gradients(x, y, weights)

    def _train_step(self, x, y, lr, weights):
        _memory.check_allocation(self._workspace_bytes(x.shape[0]),
                                 lambda: f"a training step on {x.shape[0]:,} rows (its scratch)")
        return self._fast.train_step_checked(x, y, lr, weights)

    def _run_epochs(self, x, y, x_val, y_val, run, stop):
        rows = max(run.batch_size, 0 if x_val is None else x_val.shape[0])
        # Rows of a batch in run.order are gathered here; batches in data order are read in place.
        batch_rows = run.batch_size if run.gather else 1
        x_batch = np.empty((batch_rows, x.shape[1]), dtype=self._dtype)
        y_batch = np.empty((batch_rows, y.shape[1]), dtype=self._dtype)
        w_batch = np.empty(batch_rows if run.sample_weight is not None else 1, dtype=self._dtype)
        workspace = self._fast.take_scratch(rows, True)
        self._kernels.fit.run_epochs(
            self._layout.table, self._loss_code(), self._negative_slope, self._l2, self._params, x, y,
            x_val, y_val, workspace, x_batch, y_batch, w_batch, run, stop, self._fast.lock,
        )
        self._fast.give_back(workspace)
