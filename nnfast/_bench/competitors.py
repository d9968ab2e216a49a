"""The benchmarked network in PyTorch, JAX and onnxruntime, and NumPy's gemm at the same shapes.

``bench/test_targets.py`` and ``nnfast bench`` (``nnfast._bench.run``) time
nnfast against these. Each builder computes
what ``nnfast.Net`` computes for a net of one ReLU hidden layer and a linear
output, from the same parameters, given as nnfast holds them: ``weights``
``[W1 (n_in, n_hidden), W2 (n_hidden, n_out)]`` and ``biases`` ``[b1, b2]``,
or ``[]`` for a net without biases. The losses are nnfast's ``"sse"``
(``((y_pred - y) ** 2).sum()``) and ``"mse"`` (the same over the number of
elements), and training is full-batch plain SGD.

- Trainers (``TRAINERS``) take one SGD step with ``step()`` and run ``epochs``
  steps with ``fit(epochs)``:

  - ``"numpy-seed"``: the seed notebook's NumPy loop body, as a user would
    write it (no validation, unlike ``nnfast.reference``), with biases and
    the mean loss added;
  - ``"torch-tensors"``: raw tensors with hand-written backprop, as in the
    "Learning PyTorch with Examples" tutorial;
  - ``"torch-nn"``: ``nn.Sequential`` of ``nn.Linear``, ``nn.MSELoss`` and
    ``optim.SGD``;
  - ``"jax"``: ``jax.jit`` of one ``value_and_grad`` step, and for ``fit`` a
    ``jax.jit`` of ``lax.scan`` over all the steps (one call per fit).

- ``JaxEnsembleTrainer`` (``"jax-vmap"``) fits many nets of one
  architecture at once: ``jax.vmap`` over the members of that
  ``lax.scan``, jitted, as an ensemble's JAX user would write it.
- Predictors (``PREDICTORS``) run the net forward with ``predict(x)``:
  ``"numpy-seed"`` (``np.maximum(x @ W1 + b1, 0) @ W2 + b2``), ``"torch"`` (under ``torch.inference_mode``), ``"jax"`` (``jax.jit``) and
  ``"onnxruntime"`` (the model ``nnfast.onnx.to_onnx`` exports).
- ``GemmProducts`` runs just the step's matrix products with NumPy's
  ``matmul``: the "measured GEMM rate" the issue compares a step with.

Each library is imported, and pinned to one thread, when a builder first
needs it, so this module imports without any of them; ``REQUIRES`` names
what each competitor needs, for ``pytest.importorskip``.
"""
import functools
import os

import numpy as np

__all__ = ["REQUIRES", "LOSSES", "TRAINERS", "PREDICTORS", "NumpySeedTrainer", "NumpySeedPredictor",
           "torch_module", "TorchTensorsTrainer", "torch_sequential", "TorchModuleTrainer", "TorchPredictor",
           "jax_module", "JaxTrainer", "JaxEnsembleTrainer", "JaxPredictor", "onnx_model", "OnnxruntimePredictor", "version",
           "installed", "step_flops", "GemmProducts"]

# competitor -> the modules it imports
REQUIRES = {
    "torch-tensors": ("torch",),
    "torch-nn": ("torch",),
    "torch": ("torch",),
    "jax": ("jax",),
    "jax-vmap": ("jax",),
    "onnxruntime": ("onnx", "onnxruntime"),
}

LOSSES = ("sse", "mse")


def _check_loss(loss):
    if loss not in LOSSES:
        raise ValueError(f"the competitors implement the losses {LOSSES}, got {loss!r}")


def _check_layers(weights, biases):
    if len(weights) != 2 or len(biases) not in (0, 2):
        raise ValueError("the competitors implement one hidden layer, with a bias on both layers or neither")


# -- the seed notebook's NumPy ------------------------------------------------

class NumpySeedTrainer:
    """Full-batch SGD as the seed notebook writes it in NumPy (biases and the mean loss added)."""

    name = "numpy-seed"

    def __init__(self, weights, biases, x, y, lr, loss):
        _check_loss(loss)
        _check_layers(weights, biases)
        self.w1, self.w2 = (w.copy() for w in weights)
        self.b1, self.b2 = (b.copy() for b in biases) if biases else (None, None)
        self.x, self.y = x, y
        self.lr = lr
        self.scale = 2.0 if loss == "sse" else 2.0 / y.size
        self.divisor = 1 if loss == "sse" else y.size

    def step(self):
        """One SGD step; return the loss before it."""
        h = self.x.dot(self.w1)
        if self.b1 is not None:
            h += self.b1
        h_relu = np.maximum(h, 0)
        y_pred = h_relu.dot(self.w2)
        if self.b2 is not None:
            y_pred += self.b2
        loss = np.square(y_pred - self.y).sum() / self.divisor
        grad_y_pred = self.scale * (y_pred - self.y)
        grad_w2 = h_relu.T.dot(grad_y_pred)
        grad_h_relu = grad_y_pred.dot(self.w2.T)
        grad_h = grad_h_relu.copy()
        grad_h[h < 0] = 0
        grad_w1 = self.x.T.dot(grad_h)
        self.w1 -= self.lr * grad_w1
        self.w2 -= self.lr * grad_w2
        if self.b1 is not None:
            self.b1 -= self.lr * grad_h.sum(0)
            self.b2 -= self.lr * grad_y_pred.sum(0)
        return loss

    def fit(self, epochs):
        """``epochs`` steps, the notebook's loop; return the losses."""
        return [self.step() for _ in range(epochs)]

    def parameters(self):
        """``(weights, biases)`` in nnfast's layout."""
        return [self.w1, self.w2], [] if self.b1 is None else [self.b1, self.b2]


class NumpySeedPredictor:
    """The seed-style forward pass, ``np.maximum(x @ W1 + b1, 0) @ W2 + b2``."""

    name = "numpy-seed"

    def __init__(self, weights, biases):
        _check_layers(weights, biases)
        self.w1, self.w2 = weights
        self.b1, self.b2 = biases if biases else (0, 0)

    def predict(self, x):
        """The outputs for ``x``."""
        return np.maximum(x @ self.w1 + self.b1, 0) @ self.w2 + self.b2


# -- PyTorch -----------------------------------------------------------------

@functools.cache
def torch_module():
    """Import torch, pinned to one thread, and return it.

    torch keeps its own OpenMP pool, loaded after the session pinned BLAS
    (see ``conftest.py``), so threadpoolctl's limit does not reach it.
    """
    import torch

    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # only settable before torch's first parallel work
        pass
    return torch


def _tensors(arrays):
    """Tensors holding copies of ``arrays`` (training updates them in place)."""
    torch = torch_module()
    return [torch.tensor(array) for array in arrays]


class TorchTensorsTrainer:
    """Full-batch SGD on raw tensors with the gradients written out by hand.

    The code of the "Learning PyTorch with Examples" tutorial (its NumPy
    two-layer net ported to tensors), with biases and the mean loss added.
    """

    name = "torch-tensors"

    def __init__(self, weights, biases, x, y, lr, loss):
        _check_loss(loss)
        _check_layers(weights, biases)
        self.w1, self.w2 = _tensors(weights)
        self.b1, self.b2 = _tensors(biases) if biases else (None, None)
        self.x, self.y = _tensors([x, y])
        self.lr = lr
        # d loss / d y_pred = scale * (y_pred - y)
        self.scale = 2.0 if loss == "sse" else 2.0 / y.size
        self.divisor = 1 if loss == "sse" else y.size

    def _step(self):
        h = self.x.mm(self.w1)
        if self.b1 is not None:
            h += self.b1
        h_relu = h.clamp(min=0)
        y_pred = h_relu.mm(self.w2)
        if self.b2 is not None:
            y_pred += self.b2
        diff = y_pred - self.y
        loss = diff.pow(2).sum() / self.divisor
        grad_y_pred = self.scale * diff
        grad_w2 = h_relu.t().mm(grad_y_pred)
        grad_h = grad_y_pred.mm(self.w2.t())
        grad_h[h < 0] = 0
        grad_w1 = self.x.t().mm(grad_h)
        self.w1 -= self.lr * grad_w1
        self.w2 -= self.lr * grad_w2
        if self.b1 is not None:
            self.b1 -= self.lr * grad_h.sum(0)
            self.b2 -= self.lr * grad_y_pred.sum(0)
        return loss

    def step(self):
        """One SGD step; return the loss before it, as a float."""
        return self._step().item()

    def fit(self, epochs):
        """``epochs`` steps; return the loss of each as a tensor."""
        torch = torch_module()
        return torch.stack([self._step() for _ in range(epochs)])

    def parameters(self):
        """``(weights, biases)`` as NumPy arrays in nnfast's layout."""
        biases = [] if self.b1 is None else [self.b1.numpy(), self.b2.numpy()]
        return [self.w1.numpy(), self.w2.numpy()], biases


def torch_sequential(weights, biases):
    """``nn.Sequential(Linear, ReLU, Linear)`` holding copies of the parameters."""
    torch = torch_module()
    nn = torch.nn
    dtype = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}[weights[0].dtype]
    layers = []
    for index, w in enumerate(weights):
        linear = nn.Linear(*w.shape, bias=bool(biases), dtype=dtype)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(w.T))  # torch stores (fan_out, fan_in)
            if biases:
                linear.bias.copy_(torch.from_numpy(biases[index]))
        layers += [linear, nn.ReLU()]
    return nn.Sequential(*layers[:-1])


class TorchModuleTrainer:
    """Full-batch SGD the usual PyTorch way: ``nn.Sequential``, ``nn.MSELoss``, ``optim.SGD``."""

    name = "torch-nn"

    def __init__(self, weights, biases, x, y, lr, loss):
        _check_loss(loss)
        _check_layers(weights, biases)
        torch = torch_module()
        self.model = torch_sequential(weights, biases)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=lr)
        self.loss_fn = torch.nn.MSELoss(reduction="sum" if loss == "sse" else "mean")
        self.x, self.y = _tensors([x, y])

    def _step(self):
        self.optimizer.zero_grad()
        loss = self.loss_fn(self.model(self.x), self.y)
        loss.backward()
        self.optimizer.step()
        return loss

    def step(self):
        """One SGD step; return the loss before it, as a float."""
        return self._step().item()

    def fit(self, epochs):
        """``epochs`` steps; return the loss of each as a tensor."""
        torch = torch_module()
        return torch.stack([self._step().detach() for _ in range(epochs)])

    def parameters(self):
        """``(weights, biases)`` as NumPy arrays in nnfast's layout."""
        linears = [self.model[0], self.model[2]]
        weights = [linear.weight.detach().numpy().T for linear in linears]
        biases = [linear.bias.detach().numpy() for linear in linears if linear.bias is not None]
        return weights, biases


class TorchPredictor:
    """The forward pass of ``torch_sequential`` under ``torch.inference_mode``, NumPy in and out."""

    name = "torch"

    def __init__(self, weights, biases):
        _check_layers(weights, biases)
        self.torch = torch_module()
        self.model = torch_sequential(weights, biases)

    def predict(self, x):
        """The outputs for ``x``, as a NumPy array."""
        with self.torch.inference_mode():
            return self.model(self.torch.from_numpy(x)).numpy()


# -- JAX ---------------------------------------------------------------------

@functools.cache
def jax_module():
    """Import JAX with float64 enabled and its compute pool sized to one thread, and return it.

    XLA sizes the CPU client's thread pool from the process's CPU affinity
    when the client starts (``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false``
    no longer limits it), so the client is started while this thread is
    restricted to one CPU. The affinity is then restored for every thread,
    the pool's included: its size is fixed, and it should not be tied to
    one core of a shared machine. (A backend started before this call
    keeps the pool it has.)
    """
    import jax

    # Without it JAX silently computes "float64" in float32.
    jax.config.update("jax_enable_x64", True)
    if not hasattr(os, "sched_setaffinity"):  # not Linux: JAX uses every core
        return jax
    allowed = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(allowed)})
    try:
        jax.devices("cpu")
    finally:
        for thread in os.listdir("/proc/self/task"):
            try:
                os.sched_setaffinity(int(thread), allowed)
            except OSError:  # the thread has exited
                pass
    return jax


def _jax_forward(params, x):
    """The net's output; ``params`` is ``((W1, b1), (W2, b2))``, a bias may be None."""
    jax = jax_module()
    (w1, b1), (w2, b2) = params
    h = x @ w1
    if b1 is not None:
        h = h + b1
    # The seed's ReLU: its gradient is 1 at 0 (jax.nn.relu's is 0), which rows of zeros
    # through zero biases reach at the first step.
    out = jax.numpy.where(h < 0, 0, h) @ w2
    return out if b2 is None else out + b2


def _jax_params(weights, biases):
    """``((W1, b1), (W2, b2))`` as JAX arrays; the biases are None for a net without them."""
    jnp = jax_module().numpy
    pairs = zip(weights, biases) if biases else ((w, None) for w in weights)
    return tuple((jnp.asarray(w), None if b is None else jnp.asarray(b)) for w, b in pairs)


def _jax_sgd_step(lr, divisor):
    """One full-batch SGD step of the sum of squares over ``divisor``: ``(params, x, y) -> (params, loss)``."""
    jax = jax_module()
    jnp = jax.numpy

    def loss_fn(params, x, y):
        return jnp.sum((_jax_forward(params, x) - y) ** 2) / divisor

    def sgd_step(params, x, y):
        value, grads = jax.value_and_grad(loss_fn)(params, x, y)
        # lr is a Python float: weakly typed, so float32 stays float32.
        return jax.tree_util.tree_map(lambda p, g: p - lr * g, params, grads), value

    return sgd_step


class JaxTrainer:
    """Full-batch SGD compiled by XLA: ``step`` is one jitted step, ``fit`` one jitted ``lax.scan``.

    The parameters are donated to each call, so XLA may update them in
    place. Timing a call waits for its result (``block_until_ready``).
    """

    name = "jax"

    def __init__(self, weights, biases, x, y, lr, loss):
        _check_loss(loss)
        _check_layers(weights, biases)
        jax = jax_module()
        jnp = jax.numpy
        self.params = _jax_params(weights, biases)
        self.x, self.y = jnp.asarray(x), jnp.asarray(y)
        sgd_step = _jax_sgd_step(lr, 1 if loss == "sse" else y.size)

        def sgd_fit(params, x, y, epochs):
            return jax.lax.scan(lambda p, _: sgd_step(p, x, y), params, None, length=epochs)

        self._step = jax.jit(sgd_step, donate_argnums=0)
        self._fit = jax.jit(sgd_fit, donate_argnums=0, static_argnums=3)

    def step(self):
        """One SGD step; return the loss before it, as a float."""
        self.params, loss = self._step(self.params, self.x, self.y)
        return float(loss)

    def fit(self, epochs):
        """``epochs`` steps in one compiled call; return the loss of each."""
        self.params, losses = self._fit(self.params, self.x, self.y, epochs)
        return losses.block_until_ready()

    def parameters(self):
        """``(weights, biases)`` as NumPy arrays in nnfast's layout."""
        weights = [np.asarray(w) for w, _ in self.params]
        biases = [np.asarray(b) for _, b in self.params if b is not None]
        return weights, biases


class JaxEnsembleTrainer:
    """Many nets' full-batch SGD at once, as JAX users write it: ``jax.jit`` of ``jax.vmap``
    over the members of the ``lax.scan`` of ``JaxTrainer.fit``, one call for every member's fit.

    Parameters
    ----------
    members : list of (weights, biases)
        Each member's parameters in nnfast's layout, of one architecture.
    x, y : ndarray
        The data, shared by the members.
    lr : float
    loss : {"sse", "mse"}
    """

    name = "jax-vmap"

    def __init__(self, members, x, y, lr, loss):
        _check_loss(loss)
        for weights, biases in members:
            _check_layers(weights, biases)
        jax = jax_module()
        jnp = jax.numpy
        self.set_parameters(members)
        self.x, self.y = jnp.asarray(x), jnp.asarray(y)
        sgd_step = _jax_sgd_step(lr, 1 if loss == "sse" else y.size)

        def member_fit(params, x, y, epochs):
            return jax.lax.scan(lambda p, _: sgd_step(p, x, y), params, None, length=epochs)

        self._fit = jax.jit(jax.vmap(member_fit, in_axes=(0, None, None, None)), donate_argnums=0,
                            static_argnums=3)

    def set_parameters(self, members):
        """Start again from ``members``' parameters (as ``__init__`` takes them), keeping the compiled fit."""
        jax = jax_module()
        # Each leaf stacked over the members (axis 0), copied: fit donates them.
        self.params = jax.tree_util.tree_map(lambda *leaves: jax.numpy.stack(leaves),
                                             *[_jax_params(weights, biases) for weights, biases in members])

    def fit(self, epochs):
        """``epochs`` steps of every member in one compiled call; return the losses, (members, epochs)."""
        self.params, losses = self._fit(self.params, self.x, self.y, epochs)
        return losses.block_until_ready()

    def parameters(self):
        """Each member's ``(weights, biases)`` as NumPy arrays in nnfast's layout."""
        stacked = [(np.asarray(w), None if b is None else np.asarray(b)) for w, b in self.params]
        return [([w[i] for w, _ in stacked], [b[i] for _, b in stacked if b is not None])
                for i in range(stacked[0][0].shape[0])]


class JaxPredictor:
    """The jitted forward pass, NumPy in and out."""

    name = "jax"

    def __init__(self, weights, biases):
        _check_layers(weights, biases)
        self.params = _jax_params(weights, biases)
        self._forward = jax_module().jit(_jax_forward)

    def predict(self, x):
        """The outputs for ``x``, as a NumPy array."""
        return np.asarray(self._forward(self.params, x))


# -- onnxruntime -------------------------------------------------------------

def onnx_model(weights, biases):
    """The net exported by ``nnfast.onnx.to_onnx``, serialized: ``Gemm`` (``MatMul`` without
    biases), ``Relu``, ``Gemm``, with a dynamic batch dimension."""
    import nnfast.onnx

    _check_layers(weights, biases)
    layers = [weights[0].shape[0]] + [w.shape[1] for w in weights]
    net = nnfast.Net(layers, bias=bool(biases), dtype=weights[0].dtype, seed=0)
    net.weights = weights
    net.biases = biases
    return nnfast.onnx.to_onnx(net).SerializeToString()


class OnnxruntimePredictor:
    """An onnxruntime session of ``onnx_model`` on one thread, with every graph optimization."""

    name = "onnxruntime"

    def __init__(self, weights, biases):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = onnxruntime.InferenceSession(
            onnx_model(weights, biases), options, providers=["CPUExecutionProvider"]
        )

    def predict(self, x):
        """The outputs for ``x``, as a NumPy array."""
        return self.session.run(None, {"input": x})[0]


TRAINERS = {cls.name: cls for cls in (NumpySeedTrainer, TorchTensorsTrainer, TorchModuleTrainer, JaxTrainer)}
PREDICTORS = {cls.name: cls for cls in (NumpySeedPredictor, TorchPredictor, JaxPredictor, OnnxruntimePredictor)}


def installed(competitor):
    """Whether the modules ``competitor`` imports are installed (without importing them)."""
    from importlib.util import find_spec

    return all(find_spec(module) is not None for module in REQUIRES.get(competitor, ()))


def version(competitor):
    """``"torch 2.13.0"``-style versions of what ``competitor`` imports (for the report)."""
    from importlib.metadata import version as installed

    return ", ".join(f"{module} {installed(module)}" for module in REQUIRES[competitor])


# -- NumPy gemm --------------------------------------------------------------

def step_flops(size):
    """Floating-point operations of the matrix products in one training step.

    Forward ``2·b·(i·h + h·o)``, the weight gradients as much again, and
    the hidden layer's input gradient ``2·b·h·o``; the first layer's input
    gradient is not needed. Elementwise work (activation, loss, update) is
    not counted.

    Parameters
    ----------
    size : tuple of int
        ``(batch, n_in, n_hidden, n_out)``.

    Returns
    -------
    int
    """
    batch, n_in, n_hidden, n_out = size
    forward = 2 * batch * (n_in * n_hidden + n_hidden * n_out)
    return 2 * forward + 2 * batch * n_hidden * n_out


class GemmProducts:
    """The five matrix products of a training step, as NumPy ``matmul`` calls into preallocated outputs.

    ``x @ W1``, ``h @ W2`` (forward), ``x.T @ delta1``, ``h.T @ delta2``
    (weight gradients) and ``delta2 @ W2.T`` (hidden input gradient), at the
    shapes and dtype of the step, transposes passed to BLAS as views. The
    outputs are preallocated so that only the gemm calls are timed.

    Parameters
    ----------
    x : ndarray, shape (batch, n_in)
    w1 : ndarray, shape (n_in, n_hidden)
    w2 : ndarray, shape (n_hidden, n_out)
    delta1 : ndarray, shape (batch, n_hidden)
    delta2 : ndarray, shape (batch, n_out)
    """

    def __init__(self, x, w1, w2, delta1, delta2):
        self.operands = x, w1, w2, delta1, delta2
        batch, n_hidden, n_out = x.shape[0], w1.shape[1], w2.shape[1]
        dtype = x.dtype
        self.h = np.empty((batch, n_hidden), dtype)
        self.out = np.empty((batch, n_out), dtype)
        self.grad_w1 = np.empty(w1.shape, dtype)
        self.grad_w2 = np.empty(w2.shape, dtype)
        self.grad_h = np.empty((batch, n_hidden), dtype)

    def run(self):
        """Compute the five products."""
        x, w1, w2, delta1, delta2 = self.operands
        np.matmul(x, w1, out=self.h)
        np.matmul(self.h, w2, out=self.out)
        np.matmul(x.T, delta1, out=self.grad_w1)
        np.matmul(self.h.T, delta2, out=self.grad_w2)
        np.matmul(delta2, w2.T, out=self.grad_h)

    def check(self):
        """Raise AssertionError unless the last ``run`` computed the products."""
        x, w1, w2, delta1, delta2 = self.operands
        rtol = 1e-4 if x.dtype == np.float32 else 1e-12
        for got, want, depth in [
            (self.h, x @ w1, x.shape[1]), (self.out, self.h @ w2, w2.shape[0]),
            (self.grad_w1, x.T @ delta1, x.shape[0]), (self.grad_w2, self.h.T @ delta2, x.shape[0]),
            (self.grad_h, delta2 @ w2.T, w2.shape[1]),
        ]:
            np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * np.sqrt(depth) * np.abs(want).max())
