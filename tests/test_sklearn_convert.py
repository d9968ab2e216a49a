"""``nnfast.sklearn.from_sklearn`` and ``to_sklearn``: the same model on the other side.

A converted estimator must predict what the original does (labels exactly,
probabilities and outputs within 1e-13 relative in float64), carry every
fitted attribute, and continue training (``partial_fit``) as the original
continues, solver state included, within 1e-10 relative. Neither side may
be changed by a conversion or share an array with the other.
"""
import pickle
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="nnfast.sklearn needs scikit-learn: pip install nnfast[sklearn]")
from sklearn import neural_network  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402

import nnfast.sklearn  # noqa: E402
from nnfast.sklearn import from_sklearn, to_sklearn  # noqa: E402
from tests.conftest import rel_error  # noqa: E402

RNG = np.random.default_rng(0)
X = RNG.standard_normal((90, 6))
TARGETS = {
    "multiclass": np.array(["ant", "bee", "cow"])[np.arange(90) % 3],
    "binary": np.arange(90) % 2,
    "multilabel": (RNG.random((90, 2)) > 0.5).astype(int),
    "one output": X[:, 0] - 0.5 * X[:, 1] ** 2,
    "two outputs": np.column_stack([X[:, 0], X[:, 2] * X[:, 3]]),
    "counts": RNG.poisson(np.exp(0.3 * X[:, 0])).astype(float),
}
CASES = [("multiclass", "relu"), ("binary", "tanh"), ("multilabel", "logistic"), ("one output", "relu"),
         ("two outputs", "identity"), ("counts", "tanh")]


def fitted_sklearn(target, activation, solver, dtype=np.float64, **params):
    cls = neural_network.MLPRegressor if target in ("one output", "two outputs", "counts") else \
        neural_network.MLPClassifier
    if target == "counts":
        params["loss"] = "poisson"
    estimator = cls(hidden_layer_sizes=(7, 5), activation=activation, solver=solver, max_iter=4,
                    random_state=0, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: a few epochs are enough here
        return estimator.fit(X.astype(dtype), TARGETS[target])


def fitted_attributes(estimator):
    return {name: value for name, value in vars(estimator).items() if name.endswith("_") and not name.startswith("_")}


def assert_same_attributes(got, expected):
    got, expected = fitted_attributes(got), fitted_attributes(expected)
    assert got.keys() == expected.keys()
    for name, value in expected.items():
        if isinstance(value, list) and value and isinstance(value[0], np.ndarray):
            assert len(got[name]) == len(value)
            for a, b in zip(got[name], value):
                np.testing.assert_array_equal(a, b, err_msg=name)
        elif isinstance(value, np.ndarray):
            np.testing.assert_array_equal(got[name], value, err_msg=name)
        else:
            assert got[name] == value or (value != value and got[name] != got[name]), name


def predictions(estimator):
    out = {"predict": estimator.predict(X)}
    if hasattr(estimator, "predict_proba"):
        out["predict_proba"] = estimator.predict_proba(X)
    return out


def assert_same_predictions(got, expected, tolerance=1e-13):
    for name, value in predictions(expected).items():
        result = predictions(got)[name]
        if name == "predict" and not np.issubdtype(np.asarray(value).dtype, np.floating):
            np.testing.assert_array_equal(result, value)
        else:
            assert result.shape == value.shape and rel_error(result, value) <= tolerance, name


def arrays_of(estimator):
    found = []
    for value in vars(estimator).values():
        items = value if isinstance(value, list) else [value]
        found += [item for item in items if isinstance(item, np.ndarray)]
    return found


@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
@pytest.mark.parametrize("target, activation", CASES)
def test_from_sklearn_predicts_the_same_and_trains_on_the_same(target, activation, solver):
    original = fitted_sklearn(target, activation, solver)
    before = pickle.dumps(original)
    converted = from_sklearn(original)
    assert type(converted).__name__ == type(original).__name__
    assert type(converted).__module__.startswith("nnfast.sklearn")
    assert converted.get_params() == original.get_params()
    assert_same_attributes(converted, original)
    assert_same_predictions(converted, original)
    assert pickle.dumps(original) == before
    assert not any(np.shares_memory(a, b) for a in arrays_of(converted) for b in arrays_of(original))
    if solver != "lbfgs":  # both continue from the same weights and solver state
        for estimator in (original, converted):
            estimator.partial_fit(X, TARGETS[target])
        assert rel_error(converted.coefs_ + converted.intercepts_, original.coefs_ + original.intercepts_) <= 1e-10
        assert converted.n_iter_ == original.n_iter_ and converted.t_ == original.t_


@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
@pytest.mark.parametrize("target, activation", CASES[:2] + CASES[4:5])
def test_to_sklearn_is_the_inverse(target, activation, solver):
    original = fitted_sklearn(target, activation, solver)
    back = to_sklearn(from_sklearn(original))
    assert type(back) is type(original)
    assert back.get_params() == original.get_params()
    assert_same_attributes(back, original)
    assert_same_predictions(back, original, tolerance=0.0)
    assert all(array.flags.writeable for array in back.coefs_ + back.intercepts_)
    if solver != "lbfgs":
        for estimator in (original, back):
            estimator.partial_fit(X, TARGETS[target])
        np.testing.assert_array_equal(np.concatenate([a.ravel() for a in back.coefs_]),
                                      np.concatenate([a.ravel() for a in original.coefs_]))


def test_an_nnfast_fit_converts_to_sklearn_and_continues_there():
    nnfast_model = nnfast.sklearn.MLPRegressor(hidden_layer_sizes=(8,), max_iter=3, random_state=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nnfast_model.fit(X, TARGETS["two outputs"])
    converted = to_sklearn(nnfast_model)
    assert_same_predictions(converted, nnfast_model)
    for estimator in (nnfast_model, converted):
        estimator.partial_fit(X, TARGETS["two outputs"])
    assert rel_error(converted.coefs_, nnfast_model.coefs_) <= 1e-10


def test_a_float32_model_stays_float32():
    original = fitted_sklearn("multiclass", "relu", "adam", dtype=np.float32)
    converted = from_sklearn(original)
    assert converted.coefs_[0].dtype == np.float32 and converted._net.dtype == np.float32
    assert_same_predictions(converted, original, tolerance=1e-5)


def test_feature_names_are_kept():
    pandas = pytest.importorskip("pandas")
    frame = pandas.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        original = neural_network.MLPClassifier((4,), max_iter=2, random_state=0).fit(frame, TARGETS["binary"])
    converted = from_sklearn(original)
    np.testing.assert_array_equal(converted.feature_names_in_, frame.columns)
    np.testing.assert_array_equal(converted.predict(frame), original.predict(frame))
    with pytest.raises(ValueError, match="feature names"):
        converted.predict(frame.rename(columns={"f0": "other"}))


def test_unfitted_and_foreign_estimators_are_refused():
    with pytest.raises(NotFittedError):
        from_sklearn(neural_network.MLPClassifier())
    with pytest.raises(NotFittedError):
        to_sklearn(nnfast.sklearn.MLPRegressor())
    with pytest.raises(TypeError, match="estimator must be a fitted sklearn.neural_network.MLPClassifier"):
        from_sklearn(nnfast.sklearn.MLPClassifier())
    with pytest.raises(TypeError, match="estimator must be a fitted nnfast.sklearn.MLPClassifier"):
        to_sklearn(neural_network.MLPClassifier())
