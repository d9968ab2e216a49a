"""``nnfast.Net``: the compiled network."""
import numpy as np

from nnfast import _dense, _fit
from nnfast._base import BaseNet

__all__ = ["Net"]

_KERNEL_TYPE = {np.dtype(np.float64): "double", np.dtype(np.float32): "float"}


class _Workspace:
    """Scratch buffers for batches of up to ``capacity`` rows, reused across calls."""

    def __init__(self, layers, n_params, capacity, dtype):
        hidden = capacity * sum(layers[1:-1])
        # Length >= 1 so that a net without hidden layers still has an address to pass.
        self.pre = np.empty(max(hidden, 1), dtype=dtype)
        self.act = np.empty(max(hidden, 1), dtype=dtype)
        self.out = np.empty((capacity, layers[-1]), dtype=dtype)
        self.grad = np.empty(n_params, dtype=dtype)
        self.capacity = capacity


class Net(BaseNet):
    __doc__ = BaseNet.__doc__.replace(
        "(shared interface; use a subclass)",
        "trained and run by compiled kernels.\n\n    "
        "Same interface and results as ``nnfast.reference.Net``, the NumPy\n    "
        "specification; every step of ``fit`` runs in one compiled call\n    "
        "without the GIL. The net keeps scratch buffers sized for the largest\n    "
        "batch it has seen and reuses them",
    )

    def __init__(self, layers, **kwargs):
        super().__init__(layers, **kwargs)
        self._workspace = None

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_workspace"] = None  # scratch, rebuilt on demand
        return state

    def _kernel(self, module, name):
        """The dtype's specialization of a fused kernel (skips Cython's per-call dispatch)."""
        return getattr(module, name)[_KERNEL_TYPE[self._dtype]]

    def _buffers(self, rows):
        """Scratch buffers for ``rows`` rows, grown when a larger batch comes."""
        if self._workspace is None or self._workspace.capacity < rows:
            self._workspace = _Workspace(self._layers, self.n_params, rows, self._dtype)
        return self._workspace

    def _predict(self, x):
        out = np.empty((x.shape[0], self._layers[-1]), dtype=self._dtype)
        scratch = self._buffers(x.shape[0]).act
        self._kernel(_dense, "forward_into")(self._layout.table, self._params, x, scratch, scratch, out)
        return out

    def _forward(self, x):
        rows = x.shape[0]
        hidden_sizes = self._layers[1:-1]
        out = np.empty((rows, self._layers[-1]), dtype=self._dtype)
        hidden = np.empty(max(rows * sum(hidden_sizes), 1), dtype=self._dtype)
        self._kernel(_dense, "forward_into")(
            self._layout.table, self._params, x, self._buffers(rows).pre, hidden, out
        )
        ends = np.cumsum([rows * size for size in hidden_sizes])
        return out, [
            hidden[end - rows * size : end].reshape(rows, size) for end, size in zip(ends, hidden_sizes)
        ]

    def _loss(self, x, y):
        buffers = self._buffers(x.shape[0])
        return self._kernel(_dense, "loss_value")(
            self._layout.table, self._loss_name == "mse", self._params, x, y, buffers.act, buffers.out
        )

    def _gradients(self, x, y):
        buffers = self._buffers(x.shape[0])
        grad = np.empty_like(self._params)
        self._kernel(_dense, "gradients_into")(
            self._layout.table, self._loss_name == "mse", self._params, x, y,
            buffers.pre, buffers.act, buffers.out, grad,
        )
        return grad

    def _train_step(self, x, y, lr):
        buffers = self._buffers(x.shape[0])
        return self._kernel(_fit, "train_step")(
            self._layout.table, self._loss_name == "mse", self._params, x, y, lr,
            buffers.pre, buffers.act, buffers.out, buffers.grad,
        )

    def _fit(self, x, y, epochs, lr, batch_size, shuffle, state):
        n_samples = x.shape[0]
        buffers = self._buffers(batch_size)
        # Rows of a shuffled batch are gathered here; unshuffled batches are read in place.
        batch_rows = batch_size if shuffle else 1
        x_batch = np.empty((batch_rows, x.shape[1]), dtype=self._dtype)
        y_batch = np.empty((batch_rows, y.shape[1]), dtype=self._dtype)
        order = np.arange(n_samples, dtype=np.intp)
        losses = np.empty(epochs * -(-n_samples // batch_size), dtype=np.float64)
        steps, status = self._kernel(_fit, "fit")(
            self._layout.table, self._loss_name == "mse", self._params, x, y, epochs, lr,
            batch_size, shuffle, state, buffers.pre, buffers.act, buffers.out, buffers.grad,
            x_batch, y_batch, order, losses,
        )
        return losses[:steps], status
