"""nnfast.sklearn: drop-in MLPClassifier and MLPRegressor, checked against scikit-learn's own.

The estimators draw scikit-learn's random numbers and keep its books, and
nnfast.Net does the arithmetic, so the same data, parameters and
``random_state`` must give scikit-learn's model: here the weights, the loss
curves, the counters and the validation scores of both, side by side, over
solvers, activations, targets, schedules and options; then scikit-learn's
tooling (Pipeline, GridSearchCV on both joblib backends, cross_val_score,
clone, pickle, joblib), its inputs (DataFrames, sparse matrices, string
labels, multilabel targets), its errors and messages, and finally
``parametrize_with_checks`` with no expected failures.
"""
import contextlib
import io
import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="nnfast.sklearn needs scikit-learn: pip install nnfast[sklearn]")

import joblib  # noqa: E402  (scikit-learn depends on it)
import scipy.sparse  # noqa: E402
from sklearn import neural_network as sk  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import ConvergenceWarning, NotFittedError  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import nnfast  # noqa: E402
from nnfast import sklearn as nf  # noqa: E402

# The agreement the issue asks for after 5 epochs in float64, and the looser one of float32.
RTOL64 = 1e-6
RTOL32 = 1e-4

ACTIVATIONS = ["identity", "logistic", "tanh", "relu"]
SOLVERS = ["sgd", "adam", "lbfgs"]
# Target kinds: (estimator name, extra parameters)
TARGETS = {
    "multiclass": ("MLPClassifier", {}),
    "binary": ("MLPClassifier", {}),
    "multilabel": ("MLPClassifier", {}),
    "regression": ("MLPRegressor", {}),
    "regression-2-outputs": ("MLPRegressor", {}),
    "poisson": ("MLPRegressor", {"loss": "poisson"}),
}


def make_data(kind, n_samples=120, n_features=5, seed=0, dtype=np.float64):
    rng = np.random.RandomState(seed)
    X = rng.randn(n_samples, n_features)
    if kind == "multiclass":
        y = np.digitize(X[:, 0] + 0.5 * X[:, 1] + 0.3 * rng.randn(n_samples), [-0.5, 0.5])
    elif kind == "binary":
        y = (X[:, 0] - X[:, 2] + 0.3 * rng.randn(n_samples) > 0).astype(int)
    elif kind == "multilabel":
        y = (X[:, :3] + 0.3 * rng.randn(n_samples, 3) > 0).astype(int)
    elif kind == "regression":
        y = X @ rng.randn(n_features) + 0.1 * rng.randn(n_samples)
    elif kind == "regression-2-outputs":
        y = X @ rng.randn(n_features, 2) + 0.1 * rng.randn(n_samples, 2)
    elif kind == "poisson":
        y = rng.poisson(np.exp(0.3 * X[:, 0])).astype(float)
    else:
        raise ValueError(kind)
    return X.astype(dtype), y


def pair(name, **params):
    """scikit-learn's estimator and nnfast's, with the same parameters."""
    return getattr(sk, name)(**params), getattr(nf, name)(**params)


def fit_both(name, X, y, sample_weight=None, **params):
    theirs, ours = pair(name, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        theirs.fit(X, y, sample_weight=sample_weight)
        ours.fit(X, y, sample_weight=sample_weight)
    return theirs, ours


def assert_close_arrays(expected, actual, rtol, what):
    """Each array of ``actual`` equals that of ``expected`` within ``rtol`` of the
    array's largest magnitude (an elementwise relative test fails on values near 0)."""
    assert len(actual) == len(expected), what
    for index, (a, e) in enumerate(zip(actual, expected)):
        assert a.shape == e.shape and a.dtype == e.dtype, (what, index, a.shape, e.shape, a.dtype, e.dtype)
        np.testing.assert_allclose(a, e, rtol=rtol, atol=rtol * np.max(np.abs(e)), err_msg=f"{what}[{index}]")


def assert_same_model(theirs, ours, rtol=RTOL64, same_loss=True):
    """The fitted state of ``ours`` is that of scikit-learn's ``theirs``."""
    assert_close_arrays(theirs.coefs_, ours.coefs_, rtol, "coefs_")
    assert_close_arrays(theirs.intercepts_, ours.intercepts_, rtol, "intercepts_")
    for name in ("n_iter_", "t_", "n_layers_", "n_outputs_", "out_activation_", "n_features_in_"):
        assert getattr(ours, name) == getattr(theirs, name), name
    if hasattr(theirs, "classes_"):
        np.testing.assert_array_equal(ours.classes_, theirs.classes_)
    for name in ("loss_curve_", "best_loss_", "validation_scores_", "best_validation_score_"):
        assert hasattr(ours, name) == hasattr(theirs, name), name
    if not same_loss:
        return
    np.testing.assert_allclose(ours.loss_, theirs.loss_, rtol=rtol)
    if hasattr(theirs, "loss_curve_"):
        np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=rtol)
        if theirs.best_loss_ is None:
            assert ours.best_loss_ is None
        else:
            np.testing.assert_allclose(ours.best_loss_, theirs.best_loss_, rtol=rtol)
        if theirs.validation_scores_ is None:
            assert ours.validation_scores_ is None and ours.best_validation_score_ is None
        else:
            np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_, rtol=rtol, atol=1e-12)
            np.testing.assert_allclose(ours.best_validation_score_, theirs.best_validation_score_,
                                       rtol=rtol, atol=1e-12)


# -- the same model as scikit-learn's ------------------------------------------


@pytest.mark.parametrize("target", list(TARGETS))
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("solver", SOLVERS)
def test_same_model_after_5_epochs(solver, activation, target, request):
    name, extra = TARGETS[target]
    if solver == "lbfgs" and target == "regression-2-outputs":
        # scikit-learn hands L-BFGS-B the loss averaged over the outputs with
        # the gradient of their sum; nnfast's loss is the sum, consistent with
        # the same gradient, so the line searches may take other steps.
        request.applymarker(pytest.mark.xfail(strict=False, reason="scikit-learn's multi-output lbfgs "
                                              "objective is not the one its gradient belongs to"))
    X, y = make_data(target)
    theirs, ours = fit_both(name, X, y, hidden_layer_sizes=(7, 4), activation=activation, solver=solver,
                            max_iter=5, batch_size=32, alpha=0.01, learning_rate_init=0.01, random_state=1,
                            **extra)
    # lbfgs's loss_ is nnfast's objective, summed over the outputs (the xfail above).
    assert_same_model(theirs, ours, same_loss=not (solver == "lbfgs" and target == "regression-2-outputs"))
    np.testing.assert_allclose(ours.predict(X) if name == "MLPRegressor" else ours.predict_proba(X),
                               theirs.predict(X) if name == "MLPRegressor" else theirs.predict_proba(X),
                               rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("alpha", [0.0, 0.5])
def test_multi_output_loss_is_reported_as_scikit_learn_does(solver, alpha):
    """scikit-learn reports its squared error averaged over the outputs (its gradient
    is the sum's); with a large tol its stopping rule fires on those numbers, at the
    same epoch on both sides."""
    X, y = make_data("regression-2-outputs")
    theirs, ours = fit_both("MLPRegressor", X, y, solver=solver, alpha=alpha, max_iter=60, tol=3e-2,
                            n_iter_no_change=2, random_state=0)
    assert theirs.n_iter_ < 60  # the tol rule stopped it
    assert_same_model(theirs, ours)


OPTION_CASES = [
    dict(solver="sgd", learning_rate="invscaling", learning_rate_init=0.1),
    dict(solver="sgd", learning_rate="invscaling", power_t=0.25, momentum=0.5, nesterovs_momentum=False),
    dict(solver="sgd", learning_rate="adaptive", tol=0.5, n_iter_no_change=2, max_iter=30),
    dict(solver="sgd", momentum=0.0),
    dict(solver="sgd", momentum=0.0, nesterovs_momentum=False),
    dict(solver="sgd", nesterovs_momentum=False),
    dict(solver="sgd", early_stopping=True, max_iter=20),
    dict(solver="sgd", early_stopping=True, validation_fraction=0.3, n_iter_no_change=2, max_iter=20),
    dict(solver="adam", early_stopping=True, max_iter=20, n_iter_no_change=3),
    dict(solver="adam", beta_1=0.5, beta_2=0.9, epsilon=1e-4),
    dict(solver="adam", shuffle=False),
    dict(solver="sgd", shuffle=False, batch_size=16),
    dict(solver="adam", tol=0.1, n_iter_no_change=2, max_iter=50),
    dict(solver="adam", n_iter_no_change=np.inf, tol=10.0),
    dict(solver="sgd", batch_size=1000),  # clipped, with scikit-learn's warning
    dict(solver="sgd", batch_size=7),
    dict(solver="adam", alpha=1.0, hidden_layer_sizes=()),
    dict(solver="lbfgs", max_iter=15),
    dict(solver="lbfgs", max_fun=7),
    # gtol stops these within 10 iterations; over ~100 iterations rounding
    # differences grow (1e-15 after 5, 1e-11 after 60) until paths can part.
    dict(solver="lbfgs", tol=0.05, max_iter=200),
]


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "sample_weight"])
@pytest.mark.parametrize("target", ["multiclass", "binary", "multilabel", "regression", "poisson"])
@pytest.mark.parametrize("options", OPTION_CASES, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
def test_same_model_with_options(options, target, weighted):
    name, extra = TARGETS[target]
    X, y = make_data(target, n_samples=150)
    sample_weight = np.random.RandomState(7).uniform(0, 2, len(y)) if weighted else None
    params = dict(hidden_layer_sizes=(6,), max_iter=5, random_state=3, learning_rate_init=0.01, **extra)
    params.update(options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the batch_size clipping
        theirs, ours = fit_both(name, X, y, sample_weight=sample_weight, **params)
    assert_same_model(theirs, ours)


@pytest.mark.parametrize("name", ["MLPClassifier", "MLPRegressor"])
@pytest.mark.parametrize("solver", SOLVERS)
def test_float32_trains_as_scikit_learn(solver, name):
    """float32 X: sgd and adam train in float32; lbfgs, as scikit-learn's, in float64."""
    X, y = make_data("multiclass" if name == "MLPClassifier" else "regression", dtype=np.float32)
    theirs, ours = fit_both(name, X, y, solver=solver, max_iter=5, random_state=0, hidden_layer_sizes=(8,))
    expected = np.float64 if solver == "lbfgs" else np.float32
    assert all(c.dtype == expected for c in ours.coefs_ + ours.intercepts_)
    assert_same_model(theirs, ours, rtol=RTOL32)
    predicted = ours.predict_proba(X) if name == "MLPClassifier" else ours.predict(X)
    assert predicted.dtype == expected


def test_random_state_instance_is_drawn_from_as_scikit_learn():
    """A RandomState passed as random_state ends in the same state: the same
    draws (weights, early-stopping split, shuffles), in the same number."""
    X, y = make_data("binary")
    theirs_state, ours_state = np.random.RandomState(11), np.random.RandomState(11)
    params = dict(solver="sgd", early_stopping=True, max_iter=7, hidden_layer_sizes=(5,))
    theirs = sk.MLPClassifier(random_state=theirs_state, **params)
    ours = nf.MLPClassifier(random_state=ours_state, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        theirs.fit(X, y)
        ours.fit(X, y)
    assert_same_model(theirs, ours)
    a, b = theirs_state.get_state(), ours_state.get_state()
    assert a[2] == b[2] and np.array_equal(a[1], b[1])


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_warm_start_as_scikit_learn(solver):
    X, y = make_data("multiclass")
    theirs, ours = pair("MLPClassifier", solver=solver, max_iter=3, random_state=0, warm_start=True,
                        learning_rate="invscaling", hidden_layer_sizes=(6,))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for _ in range(3):
            theirs.fit(X, y)
            ours.fit(X, y)
    assert len(ours.loss_curve_) == 9
    assert_same_model(theirs, ours)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("target", ["multiclass", "multilabel", "regression"])
def test_partial_fit_as_scikit_learn(target, solver):
    name, _ = TARGETS[target]
    X, y = make_data(target)
    # One RandomState each, drawn from at every call.
    params = dict(solver=solver, learning_rate="invscaling", hidden_layer_sizes=(6,))
    theirs = getattr(sk, name)(random_state=np.random.RandomState(5), **params)
    ours = getattr(nf, name)(random_state=np.random.RandomState(5), **params)
    for start in range(0, 120, 30):
        extra = {"classes": [0, 1, 2]} if target != "regression" else {}
        theirs.partial_fit(X[start:start + 30], y[start:start + 30], **extra)
        ours.partial_fit(X[start:start + 30], y[start:start + 30], **extra)
    assert ours.n_iter_ == 1 and ours.t_ == 120
    assert_same_model(theirs, ours)


# -- what differs, by design -----------------------------------------------------


def test_coefs_are_read_only_and_replacing_them_is_seen():
    X, y = make_data("multiclass")
    theirs, ours = fit_both("MLPClassifier", X, y, solver="lbfgs", max_iter=5, random_state=0)
    with pytest.raises(ValueError, match="read-only"):
        ours.coefs_[0][0, 0] = 1.0
    rng = np.random.RandomState(0)
    new_coefs = [rng.randn(*c.shape) for c in theirs.coefs_]
    theirs.coefs_ = [c.copy() for c in new_coefs]
    ours.coefs_ = [c.copy() for c in new_coefs]
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-10, atol=1e-12)
    theirs.intercepts_[1] = np.zeros_like(theirs.intercepts_[1])
    ours.intercepts_[1] = np.zeros_like(ours.intercepts_[1])
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-10, atol=1e-12)


def test_partial_fit_absent_for_lbfgs():
    for estimator in (nf.MLPClassifier(solver="lbfgs"), nf.MLPRegressor(solver="lbfgs")):
        assert not hasattr(estimator, "partial_fit")
        with pytest.raises(AttributeError, match=f"This '{type(estimator).__name__}' has no attribute 'partial_fit'"):
            estimator.partial_fit
    # scikit-learn's classifier says the same; its MLPRegressor(solver="lbfgs")
    # has a partial_fit that runs a whole L-BFGS fit (see the class docstring).
    assert outcome(lambda: nf.MLPClassifier(solver="lbfgs").partial_fit) == outcome(
        lambda: sk.MLPClassifier(solver="lbfgs").partial_fit)
    assert hasattr(nf.MLPRegressor(solver="adam"), "partial_fit")


# -- messages and errors as scikit-learn's ---------------------------------------


def outcome(call):
    """What ``call()`` printed, warned and raised, for comparing two estimators."""
    out = io.StringIO()
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(out):
        warnings.simplefilter("always")
        try:
            call()
            error = None
        except Exception as exc:  # noqa: BLE001 - compared, not swallowed
            error = (type(exc), str(exc))
    return out.getvalue(), [(w.category, str(w.message)) for w in caught], error


@pytest.mark.parametrize("params", [
    dict(solver="sgd", verbose=True, learning_rate="adaptive", tol=0.5, n_iter_no_change=2, max_iter=30),
    dict(solver="sgd", verbose=True, early_stopping=True, max_iter=15, n_iter_no_change=2),
    dict(solver="adam", verbose=True, max_iter=4),
    dict(solver="adam", tol=0.5, n_iter_no_change=1, verbose=True),
    dict(solver="lbfgs", max_iter=3),
], ids=["adaptive", "early_stopping", "max_iter", "converged", "lbfgs-max_iter"])
def test_prints_and_warnings_as_scikit_learn(params):
    X, y = make_data("multiclass")
    theirs, ours = pair("MLPClassifier", random_state=0, hidden_layer_sizes=(5,), **params)
    printed, warned, error = outcome(lambda: ours.fit(X, y))
    assert (printed, warned, error) == outcome(lambda: theirs.fit(X, y))
    assert error is None and (printed or warned)


@pytest.mark.parametrize("call", [
    lambda est, X, y: est.set_params(hidden_layer_sizes=(3, 0)).fit(X, y),
    lambda est, X, y: est.set_params(solver="newton").fit(X, y),
    lambda est, X, y: est.set_params(momentum=1.5).fit(X, y),
    lambda est, X, y: est.set_params(early_stopping=True, validation_fraction=0.01).fit(X, y),
    lambda est, X, y: est.set_params(early_stopping=True).partial_fit(X, y, classes=[0, 1, 2]),
    lambda est, X, y: est.partial_fit(X, y),
    lambda est, X, y: est.predict(X),
    lambda est, X, y: est.fit(X, y).predict(X[:, :3]),
    lambda est, X, y: est.fit(X, y).partial_fit(X, np.full(len(y), 7)),
    lambda est, X, y: est.set_params(warm_start=True).fit(X, y).fit(X, np.minimum(y, 1)),
    lambda est, X, y: est.fit(np.where(X > 2, np.nan, X), y),
    lambda est, X, y: est.fit(X, y, sample_weight=np.ones(3)),
    lambda est, X, y: est.fit(X, y).predict(np.where(X > 1, np.nan, X)),
    lambda est, X, y: est.fit(X, y).predict_proba(np.full_like(X, np.inf)),
    lambda est, X, y: est.fit(X, y).predict(X[:0]),
    lambda est, X, y: est.fit(X, y).predict(X[:, :, np.newaxis]),
    lambda est, X, y: est.fit(X, y).predict(X.astype(np.complex128)),
], ids=["hidden_layer_sizes", "solver", "momentum", "validation-too-small", "partial_fit-early_stopping",
        "partial_fit-classes", "not-fitted", "n_features", "new-class", "warm_start-classes", "nan", "sample_weight",
        "predict-nan", "predict-inf", "predict-no-rows", "predict-3-d", "predict-complex"])
def test_errors_as_scikit_learn(call):
    X, y = make_data("multiclass", n_samples=60)
    theirs, ours = pair("MLPClassifier", solver="sgd", max_iter=2, random_state=0, hidden_layer_sizes=(4,))
    _, _, expected = outcome(lambda: call(theirs, X, y))
    _, _, got = outcome(lambda: call(ours, X, y))
    assert expected is not None and got == expected


def test_not_fitted_error():
    with pytest.raises(NotFittedError):
        nf.MLPRegressor().predict(np.zeros((1, 2)))
    with pytest.raises(NotFittedError):
        nf.MLPClassifier().predict_proba(np.zeros((1, 2)))


@pytest.mark.parametrize("solver, scale", [("sgd", 1e150), ("adam", 1e150), ("lbfgs", 1e150), ("lbfgs", 1e200)])
def test_overflow_as_scikit_learn(solver, scale):
    """Targets that overflow the loss: scikit-learn's "non-finite parameter
    weights" error where it raises it (sgd, adam); where L-BFGS-B stops on the
    non-finite loss instead, the same stop, loss_ and weights."""
    X, y = make_data("regression")
    theirs, ours = pair("MLPRegressor", solver=solver, learning_rate_init=0.1, max_iter=5, random_state=0)
    _, _, expected = outcome(lambda: theirs.fit(X, scale * y))
    _, _, got = outcome(lambda: ours.fit(X, scale * y))
    assert got == expected
    if solver == "sgd":
        assert expected is not None and "Solver produced non-finite parameter weights" in expected[1]
    else:
        assert expected is None
        assert ours.n_iter_ == theirs.n_iter_
        np.testing.assert_allclose(ours.loss_, theirs.loss_, rtol=RTOL64)  # NaN where theirs is NaN
        assert_close_arrays(theirs.coefs_, ours.coefs_, RTOL64, "coefs_")


def test_infinite_loss_stops_training():
    """The documented difference: where only the loss overflows (Adam's steps
    stay finite), scikit-learn returns a model whose loss_ is inf; nnfast
    stops at the first non-finite loss with scikit-learn's error."""
    X, y = make_data("regression")
    theirs, ours = pair("MLPRegressor", solver="adam", max_iter=2, random_state=0)
    _, _, expected = outcome(lambda: theirs.fit(X, 1e200 * y))
    assert expected is None and theirs.loss_ == np.inf
    with pytest.raises(ValueError, match="Solver produced non-finite parameter weights"):
        ours.fit(X, 1e200 * y)


# -- inputs as scikit-learn takes them -------------------------------------------


def test_dataframe_feature_names_kept_and_checked():
    pd = pytest.importorskip("pandas")
    X, y = make_data("binary")
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    theirs, ours = fit_both("MLPClassifier", frame, y, solver="adam", max_iter=5, random_state=0)
    np.testing.assert_array_equal(ours.feature_names_in_, frame.columns)
    assert_same_model(theirs, ours)
    np.testing.assert_allclose(ours.predict_proba(frame), theirs.predict_proba(frame), rtol=1e-6)
    renamed = frame.rename(columns={"f0": "other"})
    for call in (lambda est: est.predict(renamed), lambda est: est.predict(X)):
        got = outcome(lambda: call(ours))
        expected = outcome(lambda: call(theirs))
        assert got[1:] == expected[1:] and (got[1] or got[2])


@pytest.mark.parametrize("container", [scipy.sparse.csr_matrix, scipy.sparse.csc_matrix, scipy.sparse.csr_array])
@pytest.mark.parametrize("solver", SOLVERS)
def test_sparse_input_same_model_as_dense(solver, container):
    X, y = make_data("multiclass")
    X[np.abs(X) < 0.8] = 0
    dense = nf.MLPClassifier(solver=solver, max_iter=5, random_state=0)
    sparse = clone(dense)
    theirs = sk.MLPClassifier(solver=solver, max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        dense.fit(X, y)
        sparse.fit(container(X), y)
        theirs.fit(container(X), y)
    assert_close_arrays(dense.coefs_, sparse.coefs_, 1e-12, "coefs_")
    assert_same_model(theirs, sparse)
    np.testing.assert_array_equal(sparse.predict(container(X)), dense.predict(X))
    np.testing.assert_allclose(sparse.predict_proba(container(X)), theirs.predict_proba(container(X)), rtol=1e-6)


def test_string_labels():
    X, y = make_data("multiclass")
    labels = np.array(["cat", "dog", "emu"])[y]
    theirs, ours = fit_both("MLPClassifier", X, labels, solver="adam", max_iter=5, random_state=0)
    np.testing.assert_array_equal(ours.classes_, ["cat", "dog", "emu"])
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    assert ours.predict(X).dtype == theirs.predict(X).dtype
    assert ours.score(X, labels) == theirs.score(X, labels)
    binary = np.where(y == 0, "no", "yes")
    theirs, ours = fit_both("MLPClassifier", X, binary, solver="lbfgs", max_iter=5, random_state=0)
    assert ours.predict_proba(X).shape == (len(y), 2)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    np.testing.assert_allclose(ours.predict_log_proba(X), theirs.predict_log_proba(X), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("labels", ["ints", "floats", "strings", "binary-strings", "one-class", "multilabel"])
@pytest.mark.parametrize("layout", ["C", "F", "list", "float32", "int"])
def test_predictions_as_scikit_learn_from_the_same_weights(labels, layout):
    """predict and predict_proba decide as scikit-learn's from the same weights,
    whatever the input's layout (plain arrays skip scikit-learn's validation)."""
    X, y = make_data("multilabel" if labels == "multilabel" else "multiclass")
    y = {"ints": y, "floats": y * 2.0 - 1, "strings": np.array(["a", "b", "c"])[y if y.ndim == 1 else 0],
         "binary-strings": np.where(y == 0, "no", "yes"), "one-class": np.full(len(y), 3),
         "multilabel": y}[labels]
    theirs, ours = fit_both("MLPClassifier", X, y, solver="adam", max_iter=3, random_state=0)
    ours.coefs_ = [c.copy() for c in theirs.coefs_]
    ours.intercepts_ = [c.copy() for c in theirs.intercepts_]
    X_in = {"C": X, "F": np.asfortranarray(X), "list": X.tolist(), "float32": X.astype(np.float32),
            "int": np.round(X).astype(int)}[layout]
    np.testing.assert_array_equal(ours.predict(X_in), theirs.predict(X_in))
    assert ours.predict(X_in).dtype == theirs.predict(X_in).dtype
    np.testing.assert_allclose(ours.predict_proba(X_in), theirs.predict_proba(X_in), rtol=1e-12, atol=1e-15)
    assert ours.score(X_in, y) == theirs.score(X_in, y)


@pytest.mark.parametrize("labels", [
    [0, 1, 2, 1], [3, 3, 3], [5, 7, 5], [0.0, 1.0, 0.0, 2.0], [-1.0, 1.0, 1.0], [True, False, True],
    ["b", "a", "c", "a"], ["yes", "no", "no"], np.array([1, 2, 3], dtype=np.int8), np.array(["x", "y"], dtype=object),
    [[1, 0, 1], [0, 0, 1]], [[1], [0], [1]],
], ids=lambda labels: repr(labels)[:30])
def test_targets_encoded_as_scikit_learn(labels):
    """The 0/1 targets the net trains on are scikit-learn's, whatever the labels."""
    from sklearn.preprocessing import LabelBinarizer

    from nnfast.sklearn._mlp import _binarize

    y = np.asarray(labels)
    lb = LabelBinarizer().fit(y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = lb.transform(y).astype(bool)
        got = _binarize(lb, y)
    assert got.dtype == bool and got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)
    for subset in (y[:1], y[::-1]):  # partial_fit batches: some of the classes, in any order
        np.testing.assert_array_equal(_binarize(lb, subset), lb.transform(subset).astype(bool))


def test_multilabel_indicator_targets():
    X, y = make_data("multilabel")
    theirs, ours = fit_both("MLPClassifier", X, y, solver="adam", max_iter=5, random_state=0)
    assert ours.out_activation_ == "logistic" and ours.n_outputs_ == 3
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    assert ours.predict_proba(X).shape == (len(y), 3)
    with pytest.raises(ValueError, match="classes must be passed"):
        nf.MLPClassifier(solver="adam").partial_fit(X, y)


def test_lists_and_integer_inputs():
    X, y = make_data("regression")
    theirs, ours = fit_both("MLPRegressor", np.round(X * 10).astype(np.int32).tolist(), y.tolist(),
                            solver="adam", max_iter=5, random_state=0)
    assert_same_model(theirs, ours)


# -- scikit-learn's tooling ------------------------------------------------------


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_pipeline_and_cross_val_score_as_scikit_learn():
    X, y = make_data("multiclass", n_samples=150)
    scores = [cross_val_score(make_pipeline(StandardScaler(), cls(solver="lbfgs", max_iter=20, random_state=0,
                                                                  hidden_layer_sizes=(10,))), X, y, cv=3)
              for cls in (sk.MLPClassifier, nf.MLPClassifier)]
    np.testing.assert_array_equal(scores[1], scores[0])


@pytest.mark.parametrize("backend", ["loky", "threading"])
def test_grid_search_n_jobs_2(backend):
    X, y = make_data("regression", n_samples=150)
    grid = {"alpha": [1e-4, 1e-1], "hidden_layer_sizes": [(5,), (10,)]}
    results = []
    for n_jobs, cls in ((1, sk.MLPRegressor), (2, nf.MLPRegressor)):
        search = GridSearchCV(cls(solver="adam", max_iter=10, random_state=0, learning_rate_init=0.01),
                              grid, cv=3, n_jobs=n_jobs)
        with joblib.parallel_backend(backend), warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            search.fit(X, y)
        results.append(search)
    theirs, ours = results
    assert ours.best_params_ == theirs.best_params_
    np.testing.assert_allclose(ours.cv_results_["mean_test_score"], theirs.cv_results_["mean_test_score"],
                               rtol=1e-8)
    assert isinstance(ours.best_estimator_, nf.MLPRegressor)


@pytest.mark.parametrize("solver", SOLVERS)
def test_clone_pickle_and_joblib_round_trips(solver, tmp_path):
    X, y = make_data("multiclass")
    estimator = nf.MLPClassifier(solver=solver, max_iter=5, random_state=0, hidden_layer_sizes=(6,))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator.fit(X, y)
        refit = clone(estimator).fit(X, y)
    assert clone(estimator).get_params() == estimator.get_params()
    assert not hasattr(clone(estimator), "coefs_")
    np.testing.assert_array_equal(refit.predict_proba(X), estimator.predict_proba(X))

    path = tmp_path / "model.joblib"
    joblib.dump(estimator, path)
    copies = [pickle.loads(pickle.dumps(estimator)), joblib.load(path), joblib.load(path, mmap_mode="r")]
    for copy in copies:
        np.testing.assert_array_equal(copy.predict_proba(X), estimator.predict_proba(X))
        assert_close_arrays(estimator.coefs_, copy.coefs_, 0.0, "coefs_")
        with pytest.raises(ValueError, match="read-only"):
            copy.coefs_[0][0, 0] = 0.0
    if solver != "lbfgs":  # training goes on from an unpickled (even memory-mapped) model
        for copy in copies:
            copy.partial_fit(X, y)
        estimator.partial_fit(X, y)
        for copy in copies:
            np.testing.assert_array_equal(copy.predict_proba(X), estimator.predict_proba(X))
    # The parameters are pickled once (as coefs_ and intercepts_), not also inside the net.
    n_bytes = sum(a.nbytes for a in estimator.coefs_ + estimator.intercepts_)
    assert len(pickle.dumps(estimator)) < 1.5 * n_bytes + 20_000


@pytest.mark.parametrize("verbose", [False, True])
def test_epochs_run_in_as_few_compiled_calls_as_the_tol_rule_allows(verbose, monkeypatch, capsys):
    """The tol rule can stop a fit (or adapt the learning rate) only after n_iter_no_change + 1
    epochs without progress, so that many epochs run in one Net.fit call; with verbose output
    (printed after every epoch), one at a time."""
    calls = []
    fit = nnfast.Net.fit

    def counting_fit(net, *args, **kwargs):
        calls.append(kwargs["epochs"])
        return fit(net, *args, **kwargs)

    monkeypatch.setattr(nnfast.Net, "fit", counting_fit)
    X, y = make_data("regression", n_samples=60)
    model = nf.MLPRegressor(hidden_layer_sizes=(5,), learning_rate_init=1e-3, tol=0.0, n_iter_no_change=10,
                         max_iter=33, random_state=0, verbose=verbose)
    with pytest.warns(ConvergenceWarning):
        model.fit(X, y)
    assert model.n_iter_ == 33 and max(model.loss_curve_) == model.loss_curve_[0]
    assert calls == ([1] * 33 if verbose else [11, 11, 11])


def test_import_without_scikit_learn_says_what_to_install(tmp_path):
    code = (
        "import sys; sys.modules['sklearn'] = None\n"
        "import nnfast\n"
        "try:\n"
        "    import nnfast.sklearn\n"
        "except ImportError as error:\n"
        "    print(error)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert "pip install nnfast[sklearn]" in result.stdout


# -- scikit-learn's estimator checks ----------------------------------------------

CHECKED = [
    nf.MLPClassifier(hidden_layer_sizes=(10,), max_iter=100, solver="adam"),
    nf.MLPClassifier(hidden_layer_sizes=(10,), max_iter=100, solver="sgd"),
    nf.MLPClassifier(hidden_layer_sizes=(10,), max_iter=100, solver="lbfgs"),
    nf.MLPRegressor(hidden_layer_sizes=(10,), max_iter=100, solver="adam", learning_rate_init=0.01),
    nf.MLPRegressor(hidden_layer_sizes=(10,), max_iter=100, solver="sgd", learning_rate_init=0.01),
    nf.MLPRegressor(hidden_layer_sizes=(10,), max_iter=100, solver="lbfgs"),
    nf.MLPRegressor(hidden_layer_sizes=(10,), max_iter=100, solver="lbfgs", loss="poisson"),
]


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("name, params", [("MLPClassifier", {}), ("MLPRegressor", {}),
                                          ("MLPRegressor", {"loss": "poisson"})])
def test_tags_as_scikit_learn(name, params, solver):
    from sklearn.utils import get_tags

    theirs, ours = pair(name, solver=solver, **params)
    expected = get_tags(theirs)
    if params.get("loss") == "poisson":  # the one addition: the Poisson loss needs y >= 0
        expected.target_tags.positive_only = True
    assert get_tags(ours) == expected


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@parametrize_with_checks(CHECKED)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("target", ["multiclass", "regression-2-outputs"])
def test_the_callers_arrays_are_left_as_they_were(solver, target):
    """fit, partial_fit, predict and score read X, y and sample_weight and write none of them."""
    name, extra = TARGETS[target]
    X, y = make_data(target)
    weights = np.linspace(0.5, 2.0, len(X))
    for array in (X, y, weights):
        array.flags.writeable = False  # a write raises instead of passing unseen
    before = [array.copy() for array in (X, y, weights)]
    _, ours = pair(name, solver=solver, max_iter=3, hidden_layer_sizes=(5,), random_state=0, **extra)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours.fit(X, y, sample_weight=weights)
        if solver != "lbfgs":
            ours.partial_fit(X, y, sample_weight=weights)
    ours.predict(X)
    ours.score(X, y, sample_weight=weights)
    for array, copy in zip((X, y, weights), before):
        np.testing.assert_array_equal(array, copy)
