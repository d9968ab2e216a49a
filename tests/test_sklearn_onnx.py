"""skl2onnx converts nnfast's scikit-learn estimators, alone and in pipelines.

The converted models, run in onnxruntime, must give the labels of
``predict`` exactly and the probabilities of ``predict_proba`` (or the
outputs of a regressor's ``predict``) within 1e-5 relative in float32 and
1e-12 in float64, the precision of the input given to ``skl2onnx.to_onnx``.
"""
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="nnfast.sklearn needs scikit-learn: pip install nnfast[sklearn]")
pytest.importorskip("skl2onnx", reason="the converters need skl2onnx: pip install nnfast[onnx]")
ort = pytest.importorskip("onnxruntime", reason="the converted models run in onnxruntime")
from skl2onnx import to_onnx  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from nnfast.sklearn import MLPClassifier, MLPRegressor  # noqa: E402
from tests.conftest import rel_error  # noqa: E402

RTOL = {np.float32: 1e-5, np.float64: 1e-12}
RNG = np.random.default_rng(0)
X = RNG.standard_normal((80, 5))
TARGETS = {
    "string labels": np.array(["cat", "dog", "emu"])[np.arange(80) % 3],
    "binary": np.arange(80) % 2,
    "multilabel": (RNG.random((80, 3)) > 0.5).astype(int),
    "one output": X[:, 0] - X[:, 1] ** 2,
    "two outputs": np.column_stack([X[:, 0], X[:, 2] * X[:, 3]]),
    "counts": RNG.poisson(np.exp(0.3 * X[:, 0])).astype(float),
}


def run(model, x):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"X": x})


def fitted_pipeline(estimator, target):
    with pytest.warns(Warning):  # ConvergenceWarning: a few epochs are enough here
        return make_pipeline(StandardScaler(), estimator).fit(X, TARGETS[target])


# Multilabel in float32 only: skl2onnx writes a Binarizer for it, which onnxruntime has in float32 only.
@pytest.mark.parametrize("target, activation, dtype", [
    ("string labels", "relu", np.float32), ("string labels", "relu", np.float64), ("binary", "tanh", np.float32),
    ("binary", "tanh", np.float64), ("multilabel", "logistic", np.float32),
])
def test_a_classifier_pipeline_converts_with_its_labels_and_probabilities(target, activation, dtype):
    pipeline = fitted_pipeline(MLPClassifier((7, 4), activation=activation, max_iter=4, random_state=0), target)
    model = to_onnx(pipeline, X[:1].astype(dtype), options={MLPClassifier: {"zipmap": False}})
    labels, probabilities = run(model, X.astype(dtype))
    np.testing.assert_array_equal(labels, pipeline.predict(X))
    assert rel_error(probabilities, pipeline.predict_proba(X)) <= RTOL[dtype]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("target, loss", [("one output", "squared_error"), ("two outputs", "squared_error"),
                                          ("counts", "poisson")])
def test_a_regressor_pipeline_converts_with_every_output(target, loss, dtype):
    pipeline = fitted_pipeline(MLPRegressor(hidden_layer_sizes=(6,), loss=loss, max_iter=4, random_state=0),
                               target)
    (outputs,) = run(to_onnx(pipeline, X[:1].astype(dtype)), X.astype(dtype))
    expected = pipeline.predict(X).reshape(len(X), -1)
    assert outputs.shape == expected.shape and outputs.dtype == dtype
    assert rel_error(outputs, expected) <= RTOL[dtype]


@pytest.mark.parametrize("order", ["nnfast first", "skl2onnx first", "skl2onnx submodule first",
                                   "skl2onnx looked up first"])
def test_the_converters_are_registered_in_either_import_order(order, tmp_path):
    imports = {
        "nnfast first": "from nnfast.sklearn import MLPRegressor\nfrom skl2onnx import to_onnx\n",
        "skl2onnx first": "from skl2onnx import to_onnx\nfrom nnfast.sklearn import MLPRegressor\n",
        "skl2onnx submodule first": "import skl2onnx.common.data_types\nfrom nnfast.sklearn import MLPRegressor\n"
                                    "from skl2onnx import to_onnx\n",
        # A library checking whether skl2onnx is installed, before anything imports it.
        "skl2onnx looked up first": "from nnfast.sklearn import MLPRegressor\nimport importlib.util\n"
                                    "assert importlib.util.find_spec('skl2onnx') is not None\n"
                                    "from skl2onnx import to_onnx\n",
    }
    code = imports[order] + (
        "import numpy as np, warnings\n"
        "warnings.simplefilter('ignore')\n"
        "x = np.arange(12.0).reshape(6, 2)\n"
        "model = to_onnx(MLPRegressor(max_iter=2).fit(x, x[:, 0]), x[:1])\n"
        "print(sorted({node.op_type for node in model.graph.node}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['Cast', 'Gemm', 'Identity', 'Relu']"


def test_without_skl2onnx_the_estimators_import_and_nothing_is_registered(tmp_path):
    code = ("import sys; sys.modules['skl2onnx'] = None\n"
            "import warnings; warnings.simplefilter('error')\n"
            "import nnfast.sklearn\n"
            "print(any(type(finder).__module__.startswith('nnfast') for finder in sys.meta_path))\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
