"""``nnfast.Net``: the compiled network."""
import numpy as np

from nnfast import _kernels
from nnfast._base import BaseNet
from nnfast._validation import LOSSES

__all__ = ["Net"]


class _Workspace:
    """The kernels' scratch buffer for batches of up to ``capacity`` rows, reused across calls."""

    def __init__(self, layout, capacity, dtype):
        self.buffer = np.empty(layout.workspace_length(capacity), dtype=dtype)
        self.capacity = capacity
        # Readable parts; the order is ParameterLayout.workspace_length's.
        self.grad = self.buffer[: layout.n_params]
        act_start = layout.n_params + capacity * layout.hidden_width
        self.act = self.buffer[act_start : act_start + capacity * layout.hidden_width]


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
        self._bind_kernels()

    def _bind_kernels(self, kernels=None):
        """Use ``kernels`` (by default the build nnfast/_kernels.py chooses for these
        layers), binding its fast path to this net."""
        self._workspace = None
        self._kernels = _kernels.for_layers(self._layers) if kernels is None else kernels
        self._fast = self._kernels.fastpath.FastPath(self._layout.table, self._loss_code(),
                                                     self._negative_slope, self._params)

    def __getstate__(self):
        state = self.__dict__.copy()
        # Modules and a fast path bound to this net's arrays; scratch is rebuilt on demand.
        for key in ("_workspace", "_kernels", "_fast"):
            del state[key]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._bind_kernels()

    def _buffers(self, rows):
        """Scratch buffers for ``rows`` rows, grown when a larger batch comes."""
        if self._workspace is None or self._workspace.capacity < rows:
            self._workspace = _Workspace(self._layout, rows, self._dtype)
            self._fast.use_workspace(self._workspace.buffer)
        return self._workspace

    def _check_data(self, x, y, names=("x", "y")):
        # Arrays the compiled checks accept skip the Python validation; see nnfast/_fastpath.pyx.
        if self._fast.data_trusted(x, y):
            return x, y if y.ndim == 2 else y.reshape(-1, 1)
        return super()._check_data(x, y, names)

    def predict(self, x):
        out = self._fast.predict(x)
        return super().predict(x) if out is None else out

    predict.__doc__ = BaseNet.predict.__doc__

    def train_step(self, x, y, lr):
        loss = self._fast.train_step(x, y, lr)
        return super().train_step(x, y, lr) if loss is None else loss

    train_step.__doc__ = BaseNet.train_step.__doc__

    def _loss_code(self):
        return LOSSES.index(self._loss_name)

    def _predict(self, x):
        out = np.empty((x.shape[0], self._layers[-1]), dtype=self._dtype)
        workspace = self._buffers(x.shape[0]).buffer
        self._kernels.dense.forward_into(self._layout.table, self._negative_slope, self._params, x, workspace, out, False)
        return out

    def _forward(self, x):
        rows = x.shape[0]
        out = np.empty((rows, self._layers[-1]), dtype=self._dtype)
        # A workspace of exactly `rows` rows, so its activations can be handed out.
        workspace = _Workspace(self._layout, rows, self._dtype)
        self._kernels.dense.forward_into(self._layout.table, self._negative_slope, self._params, x, workspace.buffer, out, False)
        hidden, start = [], 0
        for size in self._layers[1:-1]:
            hidden.append(workspace.act[start : start + rows * size].reshape(rows, size))
            start += rows * size
        return out, hidden

    def _loss(self, x, y):
        workspace = self._buffers(x.shape[0]).buffer
        return self._kernels.dense.loss_value(
            self._layout.table, self._loss_code(), self._negative_slope, self._params, x, y, workspace
        )

    def _gradients(self, x, y):
        workspace = self._buffers(x.shape[0])
        self._kernels.dense.gradients_into(
            self._layout.table, self._loss_code(), self._negative_slope, self._params, x, y,
            workspace.buffer,
        )
        return workspace.grad.copy()

    def _train_step(self, x, y, lr):
        return self._kernels.fit.train_step(
            self._layout.table, self._loss_code(), self._negative_slope, self._params, x, y, lr,
            self._buffers(x.shape[0]).buffer,
        )

    def _run_epochs(self, x, y, x_val, y_val, run, stop):
        rows = max(run.batch_size, 0 if x_val is None else x_val.shape[0])
        # Rows of a shuffled batch are gathered here; unshuffled batches are read in place.
        batch_rows = run.batch_size if run.shuffle else 1
        x_batch = np.empty((batch_rows, x.shape[1]), dtype=self._dtype)
        y_batch = np.empty((batch_rows, y.shape[1]), dtype=self._dtype)
        self._kernels.fit.run_epochs(
            self._layout.table, self._loss_code(), self._negative_slope, self._params, x, y,
            x_val, y_val, self._buffers(rows).buffer, x_batch, y_batch, run, stop,
        )
