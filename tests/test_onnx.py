"""ONNX export checked in onnxruntime, and import back into nnfast (``nnfast.onnx``).

Every exported model must pass ``onnx.checker.check_model(full_check=True)``
and, run by onnxruntime's CPUExecutionProvider on random inputs, give what
``net.predict`` (``predict_proba``, ``predict_classes``) gives: within 1e-5
relative in float32 and 1e-12 in float64 (norm-wise, ``tests.conftest.rel_error``).
``from_onnx`` must read back a net that predicts exactly what the original
does, and read the graphs that skl2onnx and PyTorch write.
"""
import io
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nnfast
import nnfast.reference
from tests.conftest import CLASSIFICATION_LOSSES, make_net, net_configs, rel_error

onnx = pytest.importorskip("onnx", reason="nnfast.onnx needs onnx: pip install nnfast[onnx]")
ort = pytest.importorskip("onnxruntime", reason="the export tests run models in onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import nnfast.onnx  # noqa: E402

RTOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}
PREDICTIONS = {"raw": "predict", "proba": "predict_proba", "classes": "predict_classes"}


def run_onnx(model, x):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (output,) = session.run(None, {"input": x})
    return output


def assert_same_classes(got, expected, logits, loss, tolerance):
    """Classes must agree wherever the decision is clear of rounding: a
    margin (top-two gap, or distance of the logit from 0) above ``tolerance``."""
    assert got.dtype == np.int64 and got.shape == expected.shape
    if loss == "cross_entropy":
        top_two = np.sort(logits, axis=1)[:, -2:]
        clear = top_two[:, 1] - top_two[:, 0] > tolerance
    else:
        clear = np.abs(logits.reshape(expected.shape)) > tolerance
    np.testing.assert_array_equal(got[clear], expected[clear])


@given(config=net_configs(max_hidden=3, losses=["mse", "sse", "cross_entropy", "binary_cross_entropy",
                                                  "binary_log_loss", "poisson"]),
       output=st.sampled_from(["raw", "proba", "classes"]), opset=st.sampled_from([None, 13, 21]))
def test_onnxruntime_computes_what_the_net_predicts(config, output, opset):
    if output != "raw" and config["loss"] not in CLASSIFICATION_LOSSES + ["binary_log_loss"]:
        output = "raw"
    dtype = config["dtype"]
    net = make_net(nnfast.Net, config["layers"], seed=config["seed"] % 1000, dtype=dtype, bias=config["bias"],
                   loss=config["loss"], activation=config["activation"],
                   negative_slope=config["negative_slope"])
    model = nnfast.onnx.to_onnx(net, output=output, opset=opset)
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version == (opset or nnfast.onnx.DEFAULT_OPSET)
    x = np.random.default_rng(config["seed"]).standard_normal((config["n_samples"], net.layers[0])).astype(dtype)
    got = run_onnx(model, x)
    expected = getattr(net, PREDICTIONS[output])(x)
    if output == "classes":
        assert_same_classes(got, expected, net.predict(x), net.loss_name, 1e-4)
    else:
        assert got.dtype == dtype and got.shape == expected.shape
        assert rel_error(got, expected) <= RTOL[dtype]
    back = nnfast.onnx.from_onnx(model)
    np.testing.assert_array_equal(back.predict(x), net.predict(x))
    assert (back.layers, back.dtype, back.activation[: len(net.activation)], back.bias) == (
        net.layers, net.dtype, net.activation if len(net.layers) > 2 else back.activation, net.bias)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_batch_axis_is_dynamic_and_the_names_are_fixed(dtype, tmp_path):
    net = nnfast.Net([3, 5, 2], loss="cross_entropy", dtype=dtype, seed=0)
    path = net.save_onnx(tmp_path / "net.onnx", output="proba")
    assert path == tmp_path / "net.onnx"
    model = onnx.load(path)
    (value,) = model.graph.input
    assert value.name == "input"
    assert [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim] == ["batch", 3]
    assert [o.name for o in model.graph.output] == ["probabilities"]
    for rows in (1, 7, 1024):
        x = np.linspace(-1, 1, rows * 3).reshape(rows, 3).astype(dtype)
        assert rel_error(run_onnx(model, x), net.predict_proba(x)) <= RTOL[np.dtype(dtype)]
    np.testing.assert_array_equal(nnfast.onnx.from_onnx(path).predict(x), net.predict(x))


def test_a_reference_net_exports_too():
    net = make_net(nnfast.reference.Net, [4, 6, 3], loss="cross_entropy", seed=3, activation="tanh")
    x = np.random.default_rng(0).standard_normal((5, 4))
    assert rel_error(run_onnx(nnfast.onnx.to_onnx(net, output="proba"), x), net.predict_proba(x)) <= 1e-12


def test_save_onnx_replaces_a_file_atomically_and_keeps_it_on_failure(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"the old model")
    net = nnfast.Net([2, 3, 1], seed=0)
    with pytest.raises(ValueError, match="output='proba' needs a classification loss"):
        net.save_onnx(path, output="proba")
    assert path.read_bytes() == b"the old model"
    net.save_onnx(path)
    assert nnfast.onnx.from_onnx(path).layers == (2, 3, 1)
    assert os.listdir(tmp_path) == ["model.onnx"]


@pytest.mark.parametrize("kwargs, message", [
    (dict(output="logits"), "output must be one of 'raw', 'proba', 'classes'"),
    (dict(opset=12), "opset must be an integer from 13"),
    (dict(opset=10_000), "opset must be an integer from 13"),
    (dict(opset=17.0), "opset must be an integer"),
    (dict(output="classes"), "output='classes' needs a classification loss"),
])
def test_bad_export_options_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        nnfast.onnx.to_onnx(nnfast.Net([2, 2], seed=0, loss="mse"), **kwargs)


def test_only_nets_export():
    with pytest.raises(TypeError, match="net must be an nnfast.Net"):
        nnfast.onnx.to_onnx("a net")


# -- reading graphs written elsewhere ----------------------------------------


def graph_model(nodes, initializers, n_in=3, n_out=2, element=TensorProto.DOUBLE, opset=17):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", element, [None, n_in])],
                              [helper.make_tensor_value_info(nodes[-1].output[0], element, [None, n_out])],
                              [numpy_helper.from_array(value, name) for name, value in initializers.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def test_gemm_attributes_and_transposed_weights_are_folded_in():
    rng = np.random.default_rng(1)
    w1, b1, w2 = rng.standard_normal((4, 3)), rng.standard_normal((1, 4)), rng.standard_normal((4, 2))
    model = graph_model(
        [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], transB=1, alpha=0.5, beta=2.0),
         helper.make_node("PRelu", ["h", "slope"], ["a"]),
         helper.make_node("Transpose", ["w2t"], ["w2"], perm=[1, 0]),
         helper.make_node("MatMul", ["a", "w2"], ["m"]),
         helper.make_node("Add", ["b2", "m"], ["y"])],
        {"w1": w1, "b1": b1, "slope": np.array([0.25]), "w2t": w2.T.copy(), "b2": np.array([0.5, -0.5])})
    net = nnfast.onnx.from_onnx(model)
    x = rng.standard_normal((6, 3))
    h = x @ (0.5 * w1.T) + 2.0 * b1
    expected = np.where(h > 0, h, 0.25 * h) @ w2 + np.array([0.5, -0.5])
    assert (net.layers, net.activation, net.negative_slope, net.loss_name) == ((3, 4, 2), ["leaky_relu"], 0.25, "mse")
    assert rel_error(net.predict(x), expected) <= 1e-14
    assert rel_error(run_onnx_named(model, x), expected) <= 1e-14


def run_onnx_named(model, x):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


@pytest.mark.parametrize("nodes, initializers, message", [
    ([helper.make_node("Conv", ["x", "w"], ["y"])], {"w": np.ones((2, 3))}, "cannot map Conv node 'y'"),
    ([helper.make_node("Gemm", ["x", "w"], ["h"]), helper.make_node("Add", ["h", "x"], ["y"])],
     {"w": np.ones((3, 3))}, "the graph branches at Add node 'y'"),
    ([helper.make_node("Gemm", ["x", "w"], ["h"]), helper.make_node("Relu", ["h"], ["y"])],
     {"w": np.ones((3, 2))}, "last layer is followed by a relu activation"),
    ([helper.make_node("MatMul", ["x", "w"], ["y"])], {"w": np.ones((4, 2))}, "has shape \\['\\?', 3\\]"),
    ([helper.make_node("MatMul", ["w", "x"], ["y"])], {"w": np.ones((2, 2))}, "from the right"),
    ([helper.make_node("Gemm", ["x", "w"], ["h"]), helper.make_node("Relu", ["h"], ["a"]),
      helper.make_node("Tanh", ["a"], ["y"])], {"w": np.ones((3, 2))}, "follows another activation"),
    ([helper.make_node("Gemm", ["x", "w"], ["h"]), helper.make_node("LeakyRelu", ["h"], ["a"], alpha=0.1),
      helper.make_node("Gemm", ["a", "v"], ["b"]), helper.make_node("LeakyRelu", ["b"], ["c"], alpha=0.2),
      helper.make_node("Gemm", ["c", "u"], ["y"])],
     {"w": np.ones((3, 2)), "v": np.ones((2, 2)), "u": np.ones((2, 2))}, "nnfast nets have one negative_slope"),
    ([helper.make_node("Gemm", ["x", "w"], ["h"]), helper.make_node("Gemm", ["h", "v"], ["y"])],
     {"w": np.ones((3, 2)), "v": np.ones((3, 2))}, "the layer before has 2 outputs"),
    ([helper.make_node("Gemm", ["x", "w"], ["y"], transA=1)], {"w": np.ones((3, 2))}, "transA=1"),
    ([helper.make_node("Gemm", ["x", "x"], ["y"])], {}, "weight matrix 'x' is not a constant"),
])
def test_graphs_that_are_not_mlps_are_refused_naming_the_node(nodes, initializers, message):
    with pytest.raises(ValueError, match=message):
        nnfast.onnx.from_onnx(graph_model(nodes, initializers))


def test_a_file_that_is_not_onnx_is_refused(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"\xff\xff\xff not protobuf")
    with pytest.raises(ValueError, match="is not a valid ONNX file"):
        nnfast.onnx.from_onnx(path)
    with pytest.raises(FileNotFoundError):
        nnfast.onnx.from_onnx(tmp_path / "missing.onnx")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="is not a valid ONNX file: it is a FIFO"):
        nnfast.onnx.from_onnx(fifo)  # at once: a FIFO is never waited on
    with pytest.raises(TypeError, match="model must be an onnx.ModelProto"):
        nnfast.onnx.from_onnx(3)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["multiclass", "binary", "multilabel", "regression"])
def test_skl2onnx_graphs_of_scikit_learn_mlps_read_back(kind, dtype):
    pytest.importorskip("skl2onnx", reason="needs skl2onnx: pip install nnfast[onnx]")
    from skl2onnx import to_onnx
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    rng = np.random.default_rng(0)
    x = rng.standard_normal((60, 5))
    targets = {"multiclass": np.arange(60) % 3, "binary": np.arange(60) % 2,
               "multilabel": (rng.random((60, 3)) > 0.5).astype(int), "regression": rng.standard_normal(60)}
    model_class = MLPRegressor if kind == "regression" else MLPClassifier
    with pytest.warns(Warning):  # ConvergenceWarning: a few epochs are enough here
        mlp = model_class(hidden_layer_sizes=(6, 4), activation="tanh", max_iter=3, random_state=0).fit(x, targets[kind])
    net = nnfast.onnx.from_onnx(to_onnx(mlp, x[:1].astype(dtype)))
    assert net.dtype == dtype and net.activation == ["tanh", "tanh"]
    tolerance = RTOL[np.dtype(dtype)] * 10
    if kind == "regression":
        assert rel_error(net.predict(x)[:, 0], mlp.predict(x)) <= tolerance
    else:
        probabilities = mlp.predict_proba(x)
        expected = probabilities[:, 1:] if kind == "binary" else probabilities
        assert net.loss_name == ("cross_entropy" if kind == "multiclass" else "binary_cross_entropy")
        assert rel_error(net.predict_proba(x), expected) <= tolerance


@pytest.mark.parametrize("exporter", ["torchscript", "dynamo"])
def test_a_torch_export_reads_back(exporter):
    torch = pytest.importorskip("torch", reason="needs torch, which CI does not install")
    if exporter == "dynamo":
        pytest.importorskip("onnxscript", reason="torch's dynamo exporter needs onnxscript")
    nn = torch.nn
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(4, 6), nn.LeakyReLU(0.1), nn.Linear(6, 5, bias=False), nn.Sigmoid(),
                           nn.Linear(5, 3), nn.Softmax(dim=1)).double()
    x = torch.randn(7, 4, dtype=torch.float64)
    if exporter == "dynamo":
        model = torch.onnx.export(module, (x,), dynamo=True,
                                  dynamic_shapes=({0: torch.export.Dim("batch")},)).model_proto
    else:
        buffer = io.BytesIO()
        torch.onnx.export(module, (x,), buffer, dynamo=False, input_names=["x"], dynamic_axes={"x": {0: "batch"}})
        model = buffer.getvalue()
    net = nnfast.onnx.from_onnx(model)
    assert (net.layers, net.activation, net.bias, net.negative_slope) == (
        (4, 6, 5, 3), ["leaky_relu", "sigmoid"], [True, False, True], 0.1)
    assert rel_error(net.predict_proba(x.numpy()), module(x).detach().numpy()) <= 1e-12


def test_import_without_onnx_says_what_to_install(tmp_path):
    code = (
        "import sys; sys.modules['onnx'] = None\n"
        "import nnfast\n"
        "net = nnfast.Net([2, 1], seed=0)\n"
        "try:\n"
        "    net.save_onnx('net.onnx')\n"
        "except ImportError as error:\n"
        "    print(error)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert "pip install nnfast[onnx]" in result.stdout
    assert os.listdir(tmp_path) == []
