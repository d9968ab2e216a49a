"""nnfast's ``predict`` next to where its models go: onnxruntime, and scikit-learn.

Group ``interop-onnx``: a ``[64, 100, 10]`` ReLU net (the shape of
scikit-learn's default MLP on the digits data), exported with
``nnfast.onnx.to_onnx`` and run by onnxruntime (CPUExecutionProvider, one
thread, every graph optimization), against ``net.predict`` on the same
rows: 1 and 1024, float32 and float64. Group ``interop-sklearn``: a
scikit-learn ``MLPClassifier`` fitted on digits, its ``predict_proba``
against that of ``nnfast.sklearn.from_sklearn`` of it. BLAS is pinned to
one thread (``conftest.py``). ``bench/interop_table.py`` prints the table.

Skipped where onnxruntime (or scikit-learn) is not installed.
"""
import warnings

import numpy as np
import pytest

import nnfast

ROWS = [1, 1024]


def rows_of(x, n):
    """``n`` rows cycled from ``x``, C-contiguous."""
    return np.ascontiguousarray(np.resize(x, (n, x.shape[1])))


@pytest.mark.parametrize("implementation", ["nnfast", "onnxruntime"])
@pytest.mark.parametrize("rows", ROWS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_predict_onnx(benchmark, dtype, rows, implementation):
    ort = pytest.importorskip("onnxruntime", reason="the ONNX comparison needs onnxruntime")
    import nnfast.onnx

    net = nnfast.Net([64, 100, 10], loss="cross_entropy", dtype=dtype, seed=0)
    x = rows_of(np.random.default_rng(0).standard_normal((1024, 64)).astype(dtype), rows)
    if implementation == "nnfast":
        run = net.predict
    else:
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(nnfast.onnx.to_onnx(net).SerializeToString(), options,
                                       providers=["CPUExecutionProvider"])

        def run(x):
            return session.run(None, {"input": x})[0]
    benchmark.group = f"interop-onnx {dtype} {rows} rows"
    benchmark.extra_info.update(operation="predict", model="[64, 100, 10] ReLU net", dtype=dtype, rows=rows,
                                implementation=implementation)
    benchmark(run, x)


@pytest.mark.parametrize("implementation", ["nnfast (from_sklearn)", "scikit-learn"])
@pytest.mark.parametrize("rows", ROWS)
def test_predict_proba_from_sklearn(benchmark, rows, implementation):
    pytest.importorskip("sklearn", reason="the scikit-learn comparison needs scikit-learn")
    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    from nnfast.sklearn import from_sklearn

    x, y = load_digits(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = MLPClassifier(random_state=0, max_iter=20).fit(x, y)
    if implementation != "scikit-learn":
        model = from_sklearn(model)
    benchmark.group = f"interop-sklearn {rows} rows"
    benchmark.extra_info.update(operation="predict_proba", model="digits MLPClassifier (64, 100, 10)",
                                dtype="float64", rows=rows, implementation=implementation)
    benchmark(model.predict_proba, rows_of(x, rows))
