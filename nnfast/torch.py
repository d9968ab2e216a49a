"""PyTorch modules in and out: ``to_torch`` and ``from_torch``.

``to_torch(net)`` returns a ``torch.nn.Sequential`` of ``Linear`` layers and
activation modules that computes ``net.predict``; ``from_torch(module)``
reads such a module (or a state_dict, given the activations) into an
``nnfast.Net``.

The weight layouts differ: nnfast stores a layer's weights as ``(fan_in,
fan_out)`` and computes ``x @ W + b``; ``torch.nn.Linear.weight`` is
``(fan_out, fan_in)`` and computes ``x @ weight.T + bias``. Both functions
transpose (and copy), so the two sides never share memory.

PyTorch is an optional dependency of nnfast, not installed with it:
``pip install torch``.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

try:
    import torch
except ImportError as error:
    raise ImportError("nnfast.torch needs PyTorch, which is not installed: pip install torch") from error

from nnfast._base import BaseNet

if TYPE_CHECKING:
    from nnfast.net import Net

__all__ = ["from_torch", "to_torch"]

_DTYPES = {torch.float32: np.float32, torch.float64: np.float64}
_TO_MODULE = {
    "relu": lambda slope: torch.nn.ReLU(),
    "leaky_relu": lambda slope: torch.nn.LeakyReLU(slope),
    "tanh": lambda slope: torch.nn.Tanh(),
    "sigmoid": lambda slope: torch.nn.Sigmoid(),
}
_FROM_MODULE = {torch.nn.ReLU: "relu", torch.nn.LeakyReLU: "leaky_relu", torch.nn.Tanh: "tanh",
                torch.nn.Sigmoid: "sigmoid"}
# Modules that pass their input through at inference (Dropout in eval mode).
_PASS_THROUGH = (torch.nn.Identity, torch.nn.Dropout, torch.nn.Flatten)


def to_torch(net: BaseNet) -> torch.nn.Sequential:
    """Return ``net`` as a ``torch.nn.Sequential`` computing ``net.predict``.

    One ``torch.nn.Linear`` per layer, of the net's dtype, holding the
    transposed weights (torch's ``(fan_out, fan_in)``) and the bias, and
    after each hidden layer its activation module: ``ReLU``,
    ``LeakyReLU(negative_slope)``, ``Tanh``, ``Sigmoid``, none for
    ``"identity"``. The output is the raw outputs (logits for the
    classification losses; apply ``torch.softmax`` or ``torch.sigmoid``
    for probabilities). The parameters are copies and require gradients.

    Parameters
    ----------
    net : nnfast.Net or nnfast.reference.Net

    Returns
    -------
    torch.nn.Sequential
    """
    if not isinstance(net, BaseNet):
        raise TypeError(f"net must be an nnfast.Net or nnfast.reference.Net, got {type(net).__name__}")
    dtype = torch.float32 if net.dtype == np.float32 else torch.float64
    biases = iter(net.biases)
    modules: list[torch.nn.Module] = []
    for layer, (weight, has_bias) in enumerate(zip(net.weights, net.bias)):
        linear = torch.nn.Linear(*weight.shape, bias=has_bias, dtype=dtype)  # type: ignore[misc]  # shape is 2-D
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(weight.T)))
            if has_bias:
                linear.bias.copy_(torch.from_numpy(next(biases)))
        modules.append(linear)
        if layer < len(net.activation) and net.activation[layer] != "identity":
            modules.append(_TO_MODULE[net.activation[layer]](net.negative_slope))
    return torch.nn.Sequential(*modules)


def from_torch(module: torch.nn.Module | Mapping[str, torch.Tensor], *, activation: str | Sequence[str] | None = None,
               negative_slope: float = 0.01, loss: str | None = None) -> Net:
    """Read a PyTorch MLP into an ``nnfast.Net``.

    Parameters
    ----------
    module : torch.nn.Sequential or a state_dict
        A ``Sequential`` (nested ones are flattened) of ``Linear`` layers,
        each followed by at most one of ``ReLU``, ``LeakyReLU``, ``Tanh``,
        ``Sigmoid``; ``Identity``, ``Dropout`` and ``Flatten`` are read
        as what they are at inference, nothing. A last ``Softmax`` (or
        ``LogSoftmax``) over the outputs makes the loss
        ``"cross_entropy"``, a last ``Sigmoid`` ``"binary_cross_entropy"``,
        and the net's ``predict`` gives the outputs before them. Or a
        state_dict (a mapping of names to tensors) of such a module: its
        ``<name>.weight`` entries in order are the layers, each with the
        ``<name>.bias`` entry if there is one, and ``activation`` gives
        the activations.
    activation : str or list of str, optional
        With a state_dict only: the hidden layers' activations, as
        ``nnfast.Net`` takes them (default "relu").
    negative_slope : float, default 0.01
        With a state_dict only: ``"leaky_relu"``'s slope. A module's
        ``LeakyReLU`` gives its own.
    loss : str, optional
        The net's loss; default as above, else ``"mse"``.

    Returns
    -------
    nnfast.Net
        Of the dtype of the weights (float32 or float64), with ``seed=0``
        (immaterial: every parameter is copied from the module).

    Raises
    ------
    ValueError
        If the module holds something that is not such a layer or
        activation, or the shapes do not chain, naming the module.
    """
    import nnfast

    if isinstance(module, Mapping):
        if activation is None:
            activation = "relu"
        weights, biases = _read_state_dict(module)
        output = None
    else:
        if activation is not None:
            raise ValueError("activation is read from the module's own activation modules; give it only "
                             "with a state_dict")
        weights, biases, activation, negative_slope, output = _read_sequential(module)
    dtype = _numpy_dtype(weights[0].dtype, "the first layer's weights")
    layers = [weights[0].shape[1]]
    for index, weight in enumerate(weights):
        if weight.ndim != 2 or weight.shape[1] != layers[-1]:
            raise ValueError(f"layer {index}'s weight has shape {tuple(weight.shape)}, but the layer before "
                             f"has {layers[-1]} outputs (torch stores (fan_out, fan_in))")
        layers.append(weight.shape[0])
    if loss is None:
        loss = {"softmax": "cross_entropy", "sigmoid": "binary_cross_entropy", None: "mse"}[output]
    net = nnfast.Net(layers, activation=activation if len(layers) > 2 else "relu", negative_slope=negative_slope,
                     bias=[bias is not None for bias in biases], loss=loss, dtype=dtype, seed=0)
    net.weights = [_array(weight).T for weight in weights]
    net.biases = [_array(bias) for bias in biases if bias is not None]
    return net


def _numpy_dtype(dtype, what):
    if dtype not in _DTYPES:
        raise ValueError(f"{what} are {dtype}; nnfast nets are float32 or float64")
    return _DTYPES[dtype]


def _array(tensor):
    return tensor.detach().cpu().numpy().copy()


def _read_state_dict(state_dict):
    weights, biases = [], []
    for name, tensor in state_dict.items():
        if name.endswith(".weight"):
            weights.append(tensor)
            biases.append(state_dict.get(name[: -len("weight")] + "bias"))
        elif not name.endswith(".bias"):
            raise ValueError(f"state_dict entry {name!r} is neither a layer's weight nor its bias")
    if not weights:
        raise ValueError("the state_dict has no '<name>.weight' entry: there is no layer to read")
    return weights, biases


def _flattened(module):
    if isinstance(module, torch.nn.Sequential):
        for child in module:
            yield from _flattened(child)
    else:
        yield module


def _read_sequential(module):
    if not isinstance(module, torch.nn.Sequential):
        raise TypeError(f"module must be a torch.nn.Sequential or a state_dict, got {type(module).__name__}")
    weights, biases, activations, slopes = [], [], [], set()
    output = None
    modules = [child for child in _flattened(module) if not isinstance(child, _PASS_THROUGH)]
    for index, child in enumerate(modules):
        last = index == len(modules) - 1
        if isinstance(child, torch.nn.Linear):
            weights.append(child.weight)
            biases.append(child.bias)
            activations.append(None)
        elif not weights or activations[-1] is not None:
            raise ValueError(f"cannot read {child!r} (module {index}): nnfast has one activation after each "
                             f"Linear layer, and this one follows {'no layer' if not weights else 'another'}")
        elif isinstance(child, (torch.nn.Softmax, torch.nn.LogSoftmax)) and last:
            if child.dim not in (1, -1):
                raise ValueError(f"cannot read {child!r}: it normalizes along dim {child.dim}, not the outputs")
            output = "softmax"
        elif isinstance(child, torch.nn.Sigmoid) and last:
            output = "sigmoid"
        elif type(child) in _FROM_MODULE:
            activations[-1] = _FROM_MODULE[type(child)]
            if isinstance(child, torch.nn.LeakyReLU):
                slopes.add(float(child.negative_slope))
        else:
            raise ValueError(f"cannot read {child!r} (module {index}): nnfast reads Linear, ReLU, LeakyReLU, "
                             f"Tanh, Sigmoid, a last Softmax, and Identity, Dropout, Flatten")
    if not weights:
        raise ValueError("the module has no Linear layer")
    if activations[-1] is not None:
        raise ValueError(f"the last Linear layer is followed by a {activations[-1]} activation; nnfast nets "
                         f"end with a layer of raw outputs (optionally a Softmax or Sigmoid)")
    if len(slopes) > 1:
        raise ValueError(f"the LeakyReLU modules have different slopes {sorted(slopes)}; nnfast nets have one")
    hidden = [name or "identity" for name in activations[:-1]]
    return weights, biases, hidden, slopes.pop() if slopes else 0.01, output
