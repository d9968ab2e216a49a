"""Time grid searches with nnfast's scikit-learn estimators and with scikit-learn's, side by side.

Usage::

    python bench/sklearn_grid_search.py

Two measurements, each run for both implementations in this one process,
with BLAS pinned to one thread (threadpoolctl):

1. The README's example: ``GridSearchCV`` of ``StandardScaler`` +
   ``MLPClassifier(max_iter=300, random_state=0)`` over
   ``hidden_layer_sizes`` in {(50,), (100,)} and ``alpha`` in {1e-4, 1e-2},
   ``cv=3``, ``n_jobs=2`` (joblib's default process backend), on three
   quarters of the digits; the best time of two runs (the first one also
   starts joblib's worker processes), the chosen parameters and the test
   accuracy on the last quarter.
2. The threading backend: ``GridSearchCV`` of ``MLPClassifier(max_iter=50)``
   over four ``alpha`` values, ``cv=2`` (eight fits) on the digits, under
   ``joblib.parallel_backend("threading")`` with ``n_jobs`` 1 and 2, best
   of three. nnfast's fits release the GIL, so two threads can run two at
   once; that needs an idle second core.
"""
import time
import warnings

import joblib
import sklearn.neural_network
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

import nnfast.sklearn

IMPLEMENTATIONS = {"nnfast": nnfast.sklearn, "scikit-learn": sklearn.neural_network}


def readme_grid_search(module, x, y, repeats=2):
    """Fit the README's search; return (best seconds, best parameters, test accuracy)."""
    x_train, x_test, y_train, y_test = train_test_split(x, y, random_state=0)
    best = float("inf")
    for _ in range(repeats):
        search = GridSearchCV(make_pipeline(StandardScaler(), module.MLPClassifier(max_iter=300, random_state=0)),
                              {"mlpclassifier__hidden_layer_sizes": [(50,), (100,)],
                               "mlpclassifier__alpha": [1e-4, 1e-2]},
                              cv=3, n_jobs=2)
        start = time.perf_counter()
        search.fit(x_train, y_train)
        best = min(best, time.perf_counter() - start)
    return best, search.best_params_, search.score(x_test, y_test)


def threaded_grid_search(module, x, y, n_jobs, repeats=3):
    """Best time of ``repeats`` fits of an eight-fit search on the threading backend."""
    best = float("inf")
    for _ in range(repeats):
        search = GridSearchCV(module.MLPClassifier(max_iter=50, random_state=0),
                              {"alpha": [1e-4, 1e-3, 1e-2, 1e-1]}, cv=2, n_jobs=n_jobs)
        start = time.perf_counter()
        with joblib.parallel_backend("threading"):
            search.fit(x, y)
        best = min(best, time.perf_counter() - start)
    return best


def main():
    threadpool_limits(1)
    warnings.simplefilter("ignore", ConvergenceWarning)
    x, y = load_digits(return_X_y=True)
    print("README grid search (digits, cv=3, n_jobs=2, best of 2):")
    for name, module in IMPLEMENTATIONS.items():
        seconds, params, accuracy = readme_grid_search(module, x, y)
        print(f"  {name:12s} {seconds:6.2f} s  {params}  test accuracy {accuracy:.4f}")
    print("threading backend, 8 fits of max_iter=50 (best of 3):")
    for name, module in IMPLEMENTATIONS.items():
        one, two = (threaded_grid_search(module, x, y, n_jobs) for n_jobs in (1, 2))
        print(f"  {name:12s} n_jobs=1 {one:.2f} s  n_jobs=2 {two:.2f} s  ({one / two:.2f}x)")


if __name__ == "__main__":
    main()
