"""How much of the scikit-learn comparison's time budget the matrix products alone take.

Usage::

    python bench/sklearn_products.py

For each bundled data set with scikit-learn's default MLP (one hidden layer
of 100 ReLU units, adam, batches of min(200, n)), in one process with BLAS
pinned to one thread: the time of one training step of each implementation
(the median of five 50-epoch fits, divided by their batches), the
budget a speed-up target leaves for nnfast's step (scikit-learn's step
divided by the target), and the time NumPy takes for just the five matrix
products a step needs (forward: two; backward: three, the input's gradient
is not needed) at the same shapes and dtype. Where the products alone
exceed the budget, the target asks for products faster than the BLAS
library computes them.
"""
import time
import warnings

import numpy as np
from sklearn import datasets
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as TheirClassifier
from sklearn.neural_network import MLPRegressor as TheirRegressor
from threadpoolctl import threadpool_info, threadpool_limits

import nnfast.sklearn

DATASETS = {"digits": (datasets.load_digits, 10, 3.0), "breast_cancer": (datasets.load_breast_cancer, 1, 3.0),
            "wine": (datasets.load_wine, 3, 10.0), "diabetes": (datasets.load_diabetes, 1, 3.0)}
HIDDEN = 100


def median_time(function, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def step_time(estimator_class, x, y, n_batches, epochs=50):
    """Median time of a fit of ``epochs`` epochs (the tol rule switched off), per batch."""
    model = estimator_class(max_iter=epochs, n_iter_no_change=np.inf, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return median_time(lambda: model.fit(x, y), 5) / (epochs * n_batches)


def products_time(rows, n_in, n_out):
    rng = np.random.default_rng(0)
    x, w1, w2 = rng.standard_normal((rows, n_in)), rng.standard_normal((n_in, HIDDEN)), rng.standard_normal((HIDDEN, n_out))
    h, d2 = rng.standard_normal((rows, HIDDEN)), rng.standard_normal((rows, n_out))
    out1, out2 = np.empty((rows, HIDDEN)), np.empty((rows, n_out))
    g1, g2, dh = np.empty((n_in, HIDDEN)), np.empty((HIDDEN, n_out)), np.empty((rows, HIDDEN))

    def products():
        np.matmul(x, w1, out=out1)
        np.matmul(h, w2, out=out2)
        np.matmul(h.T, d2, out=g2)
        np.matmul(d2, w2.T, out=dh)
        np.matmul(x.T, dh, out=g1)

    return median_time(products, 2000)


def main():
    blas = ", ".join(f"{pool['internal_api']} {pool['version']} {pool.get('architecture')}"
                     for pool in threadpool_info() if pool["user_api"] == "blas")
    print(f"BLAS: {blas}; one thread; times per training step (one batch), float64")
    print()
    print("| data set | batch rows | scikit-learn | target | budget | nnfast | NumPy's 5 products alone |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    with threadpool_limits(1):
        for name, (loader, n_out, target) in DATASETS.items():
            x, y = loader(return_X_y=True)
            x, _, y, _ = train_test_split(x, y, test_size=0.25, random_state=0)
            rows = min(200, len(x))
            n_batches = -(-len(x) // rows)
            regression = name == "diabetes"
            theirs = step_time(TheirRegressor if regression else TheirClassifier, x, y, n_batches)
            ours = step_time(nnfast.sklearn.MLPRegressor if regression else nnfast.sklearn.MLPClassifier, x, y,
                             n_batches)
            products = products_time(rows, x.shape[1], n_out)
            print(f"| {name} | {rows} | {theirs * 1e6:.0f} µs | {target:g}× | {theirs / target * 1e6:.0f} µs | "
                  f"{ours * 1e6:.0f} µs | {products * 1e6:.0f} µs |")


if __name__ == "__main__":
    main()
