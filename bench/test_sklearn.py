"""nnfast's scikit-learn estimators against scikit-learn's own, side by side.

For each of scikit-learn's bundled data sets (digits, breast cancer, wine,
diabetes) and each solver, both ``MLPClassifier`` (or ``MLPRegressor``)
classes fit the same training split with scikit-learn's default parameters
and ``random_state`` 0 to 4; a round is those five fits, so the two sides
do the same work whatever the number of epochs each seed takes. The mean
test score of the five models is kept in ``extra_info``. A second group
times ``predict`` of one row with a fitted model. BLAS is pinned to one
thread (``conftest.py``). ``bench/sklearn_table.py`` prints the table.

Skipped where scikit-learn is not installed.
"""
import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn", reason="the scikit-learn comparison needs scikit-learn")
from sklearn import datasets  # noqa: E402
from sklearn import neural_network as theirs  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

import nnfast.sklearn as ours  # noqa: E402

DATASETS = {
    "digits": (datasets.load_digits, "MLPClassifier"),
    "breast_cancer": (datasets.load_breast_cancer, "MLPClassifier"),
    "wine": (datasets.load_wine, "MLPClassifier"),
    "diabetes": (datasets.load_diabetes, "MLPRegressor"),
}
SOLVERS = ["adam", "sgd", "lbfgs"]
IMPLEMENTATIONS = {"nnfast": ours, "scikit-learn": theirs}
SEEDS = range(5)


def split(dataset):
    """The data set's fixed train/test split (a quarter held out)."""
    loader, _ = DATASETS[dataset]
    x, y = loader(return_X_y=True)
    return train_test_split(x, y, test_size=0.25, random_state=0)


def fit_seeds(estimator_class, solver, x, y, seeds):
    """Fit one model per seed with default parameters; return them."""
    models = []
    with warnings.catch_warnings():
        # max_iter=200 stops most of these fits before convergence, on both sides.
        warnings.simplefilter("ignore", ConvergenceWarning)
        for seed in seeds:
            models.append(estimator_class(solver=solver, random_state=seed).fit(x, y))
    return models


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("dataset", DATASETS)
def test_fit(benchmark, dataset, solver, implementation):
    x_train, x_test, y_train, y_test = split(dataset)
    estimator_class = getattr(IMPLEMENTATIONS[implementation], DATASETS[dataset][1])
    # Untimed (CI's --benchmark-disable), one seed is enough to check the code runs.
    seeds = SEEDS if not benchmark.disabled else SEEDS[:1]
    benchmark.group = f"sklearn-fit {dataset} {solver}"
    models = benchmark.pedantic(fit_seeds, args=(estimator_class, solver, x_train, y_train, seeds),
                                rounds=1 if benchmark.disabled else 3, iterations=1)
    scores = [model.score(x_test, y_test) for model in models]
    benchmark.extra_info.update(
        operation="fit", dataset=dataset, solver=solver, implementation=implementation,
        n_train=len(x_train), seeds=len(seeds), mean_score=float(np.mean(scores)),
        mean_iterations=float(np.mean([model.n_iter_ for model in models])),
    )


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_predict_one_row(benchmark, implementation):
    x_train, x_test, y_train, _ = split("digits")
    (model,) = fit_seeds(getattr(IMPLEMENTATIONS[implementation], "MLPClassifier"), "adam",
                         x_train, y_train, SEEDS[:1])
    row = x_test[:1]
    benchmark.group = "sklearn-predict one row"
    benchmark.extra_info.update(operation="predict", dataset="digits", solver="adam",
                                implementation=implementation)
    benchmark(model.predict, row)
