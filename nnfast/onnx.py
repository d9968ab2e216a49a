"""ONNX export and import of nnfast nets: ``to_onnx``, ``from_onnx``, ``save_onnx``.

``to_onnx(net)`` writes a net as an ONNX graph of standard operators, one
``Gemm`` (or ``MatMul`` without a bias) per layer followed by its
activation, so that onnxruntime or any other ONNX runtime computes what
``net.predict`` does. ``from_onnx(model)`` reads such a graph back into an
``nnfast.Net``: one exported by nnfast, by ``torch.onnx.export`` of a
``torch.nn.Sequential`` of ``Linear`` layers and activations, or by skl2onnx
from a scikit-learn MLP.

ONNX is an optional dependency of nnfast: ``pip install nnfast[onnx]``
installs it with onnxruntime.
"""
from __future__ import annotations

import os
import pathlib
from typing import TYPE_CHECKING, Any, Union

import numpy as np

try:
    import onnx
    from onnx import TensorProto, helper, numpy_helper
except ImportError as error:
    raise ImportError(
        "nnfast.onnx needs the onnx package, which is not installed: "
        "pip install nnfast[onnx] (or pip install onnx onnxruntime)"
    ) from error

from nnfast._base import BaseNet
from nnfast._validation import BINARY_LOSSES, check_choice

if TYPE_CHECKING:
    from nnfast.net import Net

# What from_onnx reads: a model, its serialized bytes, or the path of a file.
ModelSource = Union[onnx.ModelProto, bytes, bytearray, memoryview, str, "os.PathLike[str]"]

__all__ = ["to_onnx", "from_onnx", "save_onnx", "DEFAULT_OPSET", "MIN_OPSET"]

#: The opset ``to_onnx`` writes unless told otherwise.
DEFAULT_OPSET = 17
#: The oldest opset ``to_onnx`` writes: 13 gave ``Softmax`` its per-row meaning
#: and ``Squeeze`` its axes input.
MIN_OPSET = 13
OUTPUTS = ("raw", "proba", "classes")
# The graph's output, by what it holds.
OUTPUT_NAMES = {"raw": "output", "proba": "probabilities", "classes": "classes"}
INPUT_NAME = "input"
_ELEMENT_TYPES = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.float64): TensorProto.DOUBLE}
# Protocol buffers cannot hold a message of 2 GiB or more.
_PROTOBUF_LIMIT = 2**31 - 1


def to_onnx(net: BaseNet, *, output: str = "raw", opset: int | None = None) -> onnx.ModelProto:
    """Return ``net`` as an ONNX model.

    The model has one input, ``"input"``, of shape ``(batch, layers[0])``
    with a dynamic batch axis, and one output, named after what it holds.
    Its element type is the net's dtype. Each layer is a ``Gemm`` of the
    input with the layer's weights, as nnfast stores them (``(fan_in,
    fan_out)``, so no transpose) and its bias, or a ``MatMul`` for a layer
    without bias, then the hidden layer's activation: ``Relu``, ``Tanh``,
    ``Sigmoid``, nothing for ``"identity"``, and ``LeakyRelu`` for
    ``"leaky_relu"`` in float32. In float64, ``"leaky_relu"`` is written as
    ``Where(Greater(x, 0), x, Mul(x, negative_slope))``, the same function,
    because onnxruntime has no float64 kernel for ``LeakyRelu`` or
    ``PRelu``.

    Parameters
    ----------
    net : nnfast.Net or nnfast.reference.Net
    output : {"raw", "proba", "classes"}, default "raw"
        What the model returns: ``"output"``, the raw outputs, as
        ``net.predict``; ``"probabilities"``, as ``net.predict_proba``
        (``Softmax`` for ``"cross_entropy"``, ``Sigmoid`` for the binary
        losses); or ``"classes"``, int64, as ``net.predict_classes``
        (``ArgMax``, or an output >= 0 for the binary losses, shaped
        ``(batch,)`` for one output). The last two need a classification
        loss.
    opset : int, optional
        The ONNX operator set, from ``MIN_OPSET`` (13) up to the newest
        the installed onnx knows. Default ``DEFAULT_OPSET`` (17). The
        model's IR version is the oldest that allows the opset, so that
        older runtimes load it.

    Returns
    -------
    onnx.ModelProto
        A model that passes ``onnx.checker.check_model(model, full_check=True)``.
    """
    if not isinstance(net, BaseNet):
        raise TypeError(f"net must be an nnfast.Net or nnfast.reference.Net, got {type(net).__name__}")
    output = check_choice("output", output, OUTPUTS)
    opset = _check_opset(opset)
    loss = net.loss_name
    if output != "raw" and loss != "cross_entropy" and loss not in BINARY_LOSSES:
        raise ValueError(f"output={output!r} needs a classification loss (cross_entropy or a binary loss), "
                         f"but the net's loss is {loss!r}; use output='raw'")
    dtype = net.dtype
    element = _ELEMENT_TYPES[dtype]
    size = net.n_params * dtype.itemsize
    if size >= _PROTOBUF_LIMIT:
        raise ValueError(f"the net's {net.n_params:,} parameters take {size:,} bytes, more than an ONNX "
                         f"model can hold in one protocol buffer (2 GiB)")
    graph = _GraphBuilder(element)
    value = INPUT_NAME
    weights, biases = net.weights, net.biases
    bias_of = iter(biases)
    activations = net.activation + ["identity"]
    for layer, (weight, has_bias, activation) in enumerate(zip(weights, net.bias, activations)):
        name = f"layer{layer}"
        inputs = [value, graph.constant(f"{name}.weight", weight)]
        if has_bias:
            inputs.append(graph.constant(f"{name}.bias", next(bias_of)))
        value = graph.node("Gemm" if has_bias else "MatMul", inputs, name)
        value = _activation(graph, activation, net.negative_slope, value, name)
    last = net.layers[-1]
    if output == "proba":
        if loss == "cross_entropy":
            value = graph.node("Softmax", [value], "probabilities", axis=1)
        else:
            value = graph.node("Sigmoid", [value], "probabilities")
    elif output == "classes":
        if loss == "cross_entropy":
            value = graph.node("ArgMax", [value], "classes", axis=1, keepdims=0)
        else:
            zero = graph.constant("zero", np.zeros((), dtype))
            positive = graph.node("GreaterOrEqual", [value, zero], "classes.positive")
            value = graph.node("Cast", [positive], "classes.cast", to=TensorProto.INT64)
            if last == 1:
                axes = graph.constant("classes.axes", np.array([1], np.int64))
                value = graph.node("Squeeze", [value, axes], "classes.squeeze")
    output_name = OUTPUT_NAMES[output]
    graph.rename_last(output_name)
    shape: list[str | int]
    if output == "classes":
        shape, element = (["batch"] if last == 1 or loss == "cross_entropy" else ["batch", last]), TensorProto.INT64
    else:
        shape = ["batch", last]
    model = helper.make_model(
        helper.make_graph(
            graph.nodes, "nnfast",
            [helper.make_tensor_value_info(INPUT_NAME, _ELEMENT_TYPES[dtype], ["batch", net.layers[0]])],
            [helper.make_tensor_value_info(output_name, element, shape)],
            graph.initializers,
        ),
        opset_imports=[helper.make_opsetid("", opset)],
        producer_name="nnfast",
        producer_version=_nnfast_version(),
        doc_string=f"{net!r}, output={output!r}",
    )
    model.ir_version = helper.find_min_ir_version_for(model.opset_import)
    return model


def save_onnx(net: BaseNet, path: str | os.PathLike[str], **options: Any) -> pathlib.Path:
    """Write ``to_onnx(net, **options)`` to ``path``, atomically, as ``nnfast.save`` writes.

    Returns
    -------
    pathlib.Path
        The path written (exactly ``path``: no suffix is added).
    """
    from nnfast import io

    data = to_onnx(net, **options).SerializeToString()
    path = pathlib.Path(os.fspath(path))
    io.write_atomically(path, lambda file: file.write(data))
    return path


def _check_opset(opset):
    newest = onnx.defs.onnx_opset_version()
    if opset is None:
        return min(DEFAULT_OPSET, newest)
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)) or not MIN_OPSET <= opset <= newest:
        raise ValueError(f"opset must be an integer from {MIN_OPSET} to {newest} (the newest the installed "
                         f"onnx {onnx.__version__} knows), got {opset!r}")
    return int(opset)


def _nnfast_version():
    import nnfast

    return nnfast.__version__


def _activation(graph, activation, negative_slope, value, name):
    """Append a hidden layer's activation to ``value``; return the activated value."""
    if activation == "identity":
        return value
    if activation == "relu":
        return graph.node("Relu", [value], f"{name}.relu")
    if activation == "tanh":
        return graph.node("Tanh", [value], f"{name}.tanh")
    if activation == "sigmoid":
        return graph.node("Sigmoid", [value], f"{name}.sigmoid")
    if graph.element == TensorProto.FLOAT:
        return graph.node("LeakyRelu", [value], f"{name}.leaky_relu", alpha=float(negative_slope))
    dtype = helper.tensor_dtype_to_np_dtype(graph.element)
    slope = graph.constant(f"{name}.negative_slope", np.array(negative_slope, dtype))
    zero = graph.constant(f"{name}.zero", np.zeros((), dtype))
    scaled = graph.node("Mul", [value, slope], f"{name}.leaky_relu.scaled")
    positive = graph.node("Greater", [value, zero], f"{name}.leaky_relu.positive")
    return graph.node("Where", [positive, value, scaled], f"{name}.leaky_relu")


class _GraphBuilder:
    """The nodes and initializers of a graph being written, each node with one output named after it."""

    def __init__(self, element):
        self.element = element
        self.nodes = []
        self.initializers = []

    def constant(self, name, array):
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(self, op_type, inputs, name, **attributes):
        self.nodes.append(helper.make_node(op_type, inputs, [name], name=name, **attributes))
        return name

    def rename_last(self, name):
        """Name the last node's output ``name`` (the graph's output)."""
        self.nodes[-1].output[0] = name


# -- import ------------------------------------------------------------------

# Nodes that pass the value through unchanged, as they act in an inference graph.
_PASS_THROUGH = ("Identity", "Dropout", "Flatten", "Cast")
_ACTIVATION_OPS = {"Relu": "relu", "Tanh": "tanh", "Sigmoid": "sigmoid"}


def from_onnx(model: ModelSource, *, loss: str | None = None) -> Net:
    """Read an MLP from an ONNX model into an ``nnfast.Net``.

    The graph must be a chain from its one input through layers and
    activations: a layer is a ``Gemm`` (``transA=0``; ``transB``,
    ``alpha`` and ``beta`` are folded into the weights and bias) or a
    ``MatMul``, optionally followed by an ``Add`` of its bias, with
    weights and biases that are initializers or ``Constant`` nodes
    (``Transpose`` of them included); an activation is ``Relu``, ``Tanh``,
    ``Sigmoid``, ``LeakyRelu``, a ``PRelu`` with one slope, or the float64
    form ``to_onnx`` writes for leaky ReLU (``LeakyRelu``'s ``alpha`` is a
    float32 attribute: it is read as the shortest decimal that rounds to
    it, 0.1 rather than 0.10000000149). ``Identity``, ``Dropout``,
    ``Flatten`` and ``Cast`` pass their input through. Models written by
    ``to_onnx``, by ``torch.onnx.export`` of a ``Sequential`` of
    ``Linear`` layers and those activations, and by skl2onnx from
    ``MLPClassifier``/``MLPRegressor`` read this way.

    A ``Softmax`` after the last layer makes the net's loss
    ``"cross_entropy"`` and a ``Sigmoid`` there ``"binary_cross_entropy"``,
    so that ``predict_proba`` gives the model's probabilities (an
    ``ArgMax``, or a ``GreaterOrEqual`` than 0, there does the same); what
    the graph computes after them (labels, skl2onnx's ``ZipMap``) is left
    out.
    ``predict`` gives the outputs of the last layer.

    Parameters
    ----------
    model : onnx.ModelProto, bytes, str or os.PathLike
        The model, its serialized bytes, or the path of a ``.onnx`` file
        (read only if it is a regular file).
    loss : str, optional
        The net's loss. Default: as above, and ``"mse"`` for a graph that
        ends with the last layer.

    Returns
    -------
    nnfast.Net
        Of the dtype of the model's weights (float32 or float64), with
        ``seed=0`` (immaterial: every parameter is copied from the model).

    Raises
    ------
    ValueError
        If the graph is not such a chain, naming the node or tensor that
        cannot be mapped and why.
    """
    model = _read_model(model)
    reader = _ChainReader(model.graph)
    for node in model.graph.node:
        if not reader.read(node):
            break
    return reader.net(loss)


def _read_model(model: ModelSource) -> onnx.ModelProto:
    if isinstance(model, onnx.ModelProto):
        return model
    if isinstance(model, (bytes, bytearray, memoryview)):
        return _parse_model(bytes(model), "the bytes given")
    if not isinstance(model, (str, os.PathLike)):
        raise TypeError(f"model must be an onnx.ModelProto, bytes or a path, got {type(model).__name__}")
    from nnfast import io

    name = os.fspath(model)
    descriptor, _ = io.open_regular_file(name, "ONNX file")
    with os.fdopen(descriptor, "rb") as file:
        model = _parse_model(file.read(), name)
    if any(init.data_location == TensorProto.EXTERNAL for init in model.graph.initializer):
        onnx.external_data_helper.load_external_data_for_model(model, os.path.dirname(os.path.abspath(name)))
    return model


def _parse_model(data: bytes, where: str) -> onnx.ModelProto:
    try:
        return onnx.load_model_from_string(data)
    except Exception as error:  # protobuf's DecodeError, which onnx does not re-export
        raise ValueError(f"{where} is not a valid ONNX file: {error}") from error


def _node_name(node):
    return f"{node.op_type} node {node.name or node.output[0]!r}"


class _ChainReader:
    """The layers read so far along the graph's chain of values (see ``from_onnx``)."""

    def __init__(self, graph):
        self.constants = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
        inputs = [value for value in graph.input if value.name not in self.constants]
        if len(inputs) != 1:
            raise ValueError(f"an MLP graph has one input, this one has {len(inputs)}: "
                             f"{[value.name for value in inputs]}")
        (self.input,) = inputs
        self.value = self.input.name  # the end of the chain
        self.earlier = set()  # values of the chain before its end: reading one again is a branch
        self.weights, self.biases, self.activations = [], [], []
        self.slopes = set()
        self.leaky = {}  # the parts of the float64 leaky ReLU: value -> ("scaled", slope) or ("positive",)
        self.output = None  # "Softmax" or "Sigmoid" after the last layer
        self.squeezed = False  # the one output of the last layer reshaped to (batch,)

    def read(self, node):
        """Take in ``node``; return False once the rest of the graph no longer matters."""
        if node.op_type == "Constant":
            self.constants[node.output[0]] = numpy_helper.to_array(
                next(a.t for a in node.attribute if a.name == "value"))
            return True
        if node.op_type == "Transpose" and node.input[0] in self.constants:
            perm = [a.ints for a in node.attribute if a.name == "perm"]
            self.constants[node.output[0]] = np.transpose(self.constants[node.input[0]], *(perm or [None]))
            return True
        if self.earlier.intersection(node.input):
            raise ValueError(f"the graph branches at {_node_name(node)}, which reads an earlier value of the "
                             f"chain: an MLP is a chain of layers")
        if self.value not in node.input and not self.leaky.keys() & set(node.input):
            return True  # not on the chain (shape computations and the like)
        op = node.op_type
        if self.activations and self.activations[-1] == "sigmoid" and op not in ("Gemm", "MatMul", *_PASS_THROUGH):
            self.activations[-1], self.output = "identity", "Sigmoid"  # no layer follows: the probabilities
        if self.output is not None or self.squeezed:
            return False  # what the graph computes from the net's outputs is not the net
        if op in ("Gemm", "MatMul"):
            self._read_layer(node)
        elif op == "Add":
            self._read_bias(node)
        elif op in _ACTIVATION_OPS:
            self._set_activation(node, _ACTIVATION_OPS[op])
        elif op == "LeakyRelu":
            alpha = [a.f for a in node.attribute if a.name == "alpha"]
            # A float32 attribute: read as the shortest decimal that rounds to it (0.1, not
            # 0.10000000149), the slope its writer most likely meant.
            self._set_activation(node, "leaky_relu", float(str(np.float32(alpha[0]))) if alpha else 0.01)
        elif op == "PRelu":
            slope = self._constant(node, 1, "slope")
            if np.unique(slope).size != 1:
                raise ValueError(f"{_node_name(node)} has {slope.size} different slopes; nnfast nets have one")
            self._set_activation(node, "leaky_relu", float(slope.flat[0]))
        elif op == "Softmax":
            axis = [a.i for a in node.attribute if a.name == "axis"]
            if axis and axis[0] not in (1, -1):
                raise ValueError(f"{_node_name(node)} normalizes along axis {axis[0]}, not along the outputs")
            self._set_activation(node, "softmax")
            self.activations[-1] = "identity"
            self.output = "Softmax"
        elif op == "ArgMax" or (op == "GreaterOrEqual" and self._is_zero(node, 1)):
            # The classes of to_onnx(output="classes"): the raw outputs are a classifier's.
            self._set_activation(node, "identity")
            self.output = "Softmax" if op == "ArgMax" else "Sigmoid"
        elif op in _PASS_THROUGH:
            self._advance(node)
        elif op in ("Reshape", "Squeeze"):
            self._read_reshape(node)
        elif op in ("Mul", "Greater", "Where"):
            self._read_leaky_part(node)
        else:
            raise ValueError(f"cannot map {_node_name(node)} to an MLP: nnfast reads Gemm, MatMul, Add, "
                             f"Relu, LeakyRelu, PRelu, Tanh, Sigmoid, Softmax and pass-through nodes")
        return True

    def _advance(self, node):
        self.earlier.add(self.value)
        self.value = node.output[0]

    def _constant(self, node, index, what):
        name = node.input[index] if index < len(node.input) else ""
        if name not in self.constants:
            raise ValueError(f"{_node_name(node)}: its {what} {name!r} is not a constant of the graph")
        return self.constants[name]

    def _read_layer(self, node):
        if node.input[0] != self.value:
            raise ValueError(f"{_node_name(node)} multiplies the chain's value from the right; "
                             f"an MLP layer multiplies it from the left")
        if self.activations and self.activations[-1] is None:
            self.activations[-1] = "identity"  # two layers in a row: the first has no activation
        weight = np.asarray(self._constant(node, 1, "weight matrix"))
        attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if attributes.get("transA", 0):
            raise ValueError(f"{_node_name(node)} has transA=1: it would transpose the batch")
        if weight.ndim != 2:
            raise ValueError(f"{_node_name(node)}: its weights have shape {weight.shape}, not a matrix")
        if attributes.get("transB", 0):
            weight = weight.T
        if attributes.get("alpha", 1.0) != 1.0:
            weight = weight * attributes["alpha"]
        fan_in = self.weights[-1].shape[1] if self.weights else None
        if fan_in is not None and weight.shape[0] != fan_in:
            raise ValueError(f"{_node_name(node)}: its weights have shape {weight.shape}, but the layer "
                             f"before has {fan_in} outputs")
        self.weights.append(weight)
        self.biases.append(None)
        self.activations.append(None)
        if node.op_type == "Gemm" and len(node.input) > 2 and node.input[2]:
            bias = self._constant(node, 2, "bias") * attributes.get("beta", 1.0)
            self.biases[-1] = self._bias_vector(node, bias)
        self._advance(node)

    def _bias_vector(self, node, bias):
        fan_out = self.weights[-1].shape[1]
        bias = np.asarray(bias)
        if bias.size == 1:
            return np.full(fan_out, bias.item(), dtype=bias.dtype)
        if bias.shape not in ((fan_out,), (1, fan_out)):
            raise ValueError(f"{_node_name(node)}: its bias has shape {bias.shape}, not ({fan_out},)")
        return bias.reshape(fan_out)

    def _read_bias(self, node):
        if not self.weights or self.activations[-1] is not None or self.biases[-1] is not None:
            raise ValueError(f"cannot map {_node_name(node)}: an Add is mapped only as the bias right "
                             f"after a layer's Gemm or MatMul")
        other = node.input[1] if node.input[0] == self.value else node.input[0]
        self.biases[-1] = self._bias_vector(node, self._constant(node, list(node.input).index(other), "bias"))
        self._advance(node)

    def _set_activation(self, node, activation, slope=None):
        if not self.weights or self.activations[-1] is not None:
            raise ValueError(f"cannot map {_node_name(node)}: nnfast has one activation after each layer, "
                             f"and this one follows {'no layer' if not self.weights else 'another activation'}")
        if slope is not None:
            self.slopes.add(float(slope))
            if len(self.slopes) > 1:
                raise ValueError(f"{_node_name(node)}: its negative slope {slope} differs from an earlier "
                                 f"layer's; nnfast nets have one negative_slope")
        self.activations[-1] = activation
        self._advance(node)

    def _read_reshape(self, node):
        """A ``Reshape`` to ``(batch, width)`` passes through; one (or a ``Squeeze``) of a last
        layer with one output to ``(batch,)``, as skl2onnx ends a regressor, ends the net."""
        width = self.weights[-1].shape[1] if self.weights else self.input.type.tensor_type.shape.dim[1].dim_value
        shape = self._constant(node, 1, "shape") if node.op_type == "Reshape" else None
        if shape is not None and shape.size == 2 and shape[1] == width and shape[0] in (-1, 0):
            self._advance(node)
        elif width == 1 and self.weights and (shape is None or list(shape) in ([-1], [0])):
            self.squeezed = True
            self._advance(node)
        else:
            raise ValueError(f"cannot map {_node_name(node)}: it reshapes the (batch, {width}) value "
                             f"of the chain to {'a smaller rank' if shape is None else list(shape)}")

    def _is_zero(self, node, index):
        return node.input[index] in self.constants and not np.any(self.constants[node.input[index]])

    def _read_leaky_part(self, node):
        """``Where(Greater(x, 0), x, Mul(x, slope))``, the float64 leaky ReLU of ``to_onnx``."""
        inputs = list(node.input)
        if node.op_type == "Mul" and inputs[0] == self.value and inputs[1] in self.constants \
                and np.size(self.constants[inputs[1]]) == 1:
            self.leaky[node.output[0]] = ("scaled", float(np.asarray(self.constants[inputs[1]]).item()))
            return
        if node.op_type == "Greater" and inputs[0] == self.value and self._is_zero(node, 1):
            self.leaky[node.output[0]] = ("positive",)
            return
        if node.op_type == "Where" and len(inputs) == 3 and inputs[1] == self.value \
                and self.leaky.get(inputs[0]) == ("positive",) and self.leaky.get(inputs[2], ("",))[0] == "scaled":
            slope = self.leaky[inputs[2]][1]
            self.leaky.clear()
            self._set_activation(node, "leaky_relu", slope)
            return
        raise ValueError(f"cannot map {_node_name(node)}: nnfast reads Mul, Greater and Where only as "
                         f"Where(Greater(x, 0), x, Mul(x, slope)), a leaky ReLU")

    def net(self, loss):
        import nnfast

        if not self.weights:
            raise ValueError("the graph has no Gemm or MatMul layer on the chain from its input")
        if self.activations[-1] == "sigmoid":
            self.activations[-1], self.output = "identity", "Sigmoid"
        if self.activations[-1] not in (None, "identity"):
            raise ValueError(f"the graph's last layer is followed by a {self.activations[-1]} activation; "
                             f"nnfast nets end with a layer of raw outputs (optionally Softmax or Sigmoid)")
        if self.leaky:
            raise ValueError("the graph ends inside a Where(Greater(x, 0), x, Mul(x, slope)) pattern")
        dtype = self.weights[0].dtype
        if dtype not in _ELEMENT_TYPES:
            raise ValueError(f"the first layer's weights are {dtype}; nnfast nets are float32 or float64")
        layers = [self.weights[0].shape[0]] + [weight.shape[1] for weight in self.weights]
        dims = self.input.type.tensor_type.shape.dim
        if len(dims) != 2 or dims[1].dim_value not in (0, layers[0]):
            declared = [dim.dim_value or dim.dim_param or "?" for dim in dims]
            raise ValueError(f"the graph's input {self.input.name!r} has shape {declared}, but its first layer "
                             f"takes (batch, {layers[0]})")
        if loss is None:
            loss = {"Softmax": "cross_entropy", "Sigmoid": "binary_cross_entropy", None: "mse"}[self.output]
        hidden = [activation or "identity" for activation in self.activations[:-1]]
        net = nnfast.Net(layers, activation=hidden or "relu", bias=[bias is not None for bias in self.biases],
                         negative_slope=self.slopes.pop() if self.slopes else 0.01, loss=loss, dtype=dtype, seed=0)
        net.weights = self.weights
        net.biases = [bias for bias in self.biases if bias is not None]
        return net
