"""``nnfast.distributed.fit_ensemble`` on a real ``distributed.LocalCluster`` of two worker processes.

The members fitted on the workers must be, bit for bit, those that
``Ensemble.fit`` computes here, with every per-member option; the data
must go to the workers once per fit, not once per member. scikit-learn's
``GridSearchCV`` over nnfast's estimators must give the same search under
joblib's dask backend.
"""
import faulthandler

import numpy as np
import pytest

distributed = pytest.importorskip("distributed", reason="needs dask.distributed: pip install nnfast[dask]")

import nnfast  # noqa: E402
import nnfast.distributed  # noqa: E402

LAYERS = [4, 12, 2]


@pytest.fixture(autouse=True)
def no_hang():
    """A test that waits on the cluster for 3 minutes ends the run with every thread's traceback,
    rather than holding up the suite."""
    faulthandler.dump_traceback_later(180, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as client:
        client.wait_for_workers(2, timeout=120)
        yield client


def problem():
    rng = np.random.default_rng(0)
    return rng.standard_normal((60, 4)), rng.standard_normal((60, 2))


def assert_same_ensembles(got, expected):
    assert got.fit_seeds == expected.fit_seeds and got.diverged == expected.diverged
    for a, b in zip(got.members, expected.members):
        np.testing.assert_array_equal(a.parameters, b.parameters)
        assert a.optimizer.step_count == b.optimizer.step_count
    for a, b in zip(got.histories, expected.histories):
        np.testing.assert_array_equal(a.loss, b.loss)
        np.testing.assert_array_equal(a.val_loss, b.val_loss)


@pytest.mark.parametrize("n_parts", [None, 3])
def test_members_fitted_on_the_workers_are_the_local_ones(client, n_parts):
    x, y = problem()
    weights = np.random.default_rng(1).uniform(0.5, 1.5, (5, 60))
    options = dict(epochs=4, batch_size=12, optimizer=nnfast.SGD(0.05, momentum=0.5), lr=[0.05, 0.04, 0.03, 0.02, 0.01],
                   momentum=[0.0, 0.3, 0.5, 0.7, 0.9], sample_weight=weights, bootstrap=True, validate_held_out=True)
    local, remote = (nnfast.Ensemble(LAYERS, n_members=5, seed=2, loss="mse") for _ in range(2))
    local.fit(x, y, **options)
    assert nnfast.distributed.fit_ensemble(client, remote, x, y, n_parts=n_parts, **options) is remote
    assert_same_ensembles(remote, local)
    # Again: each member continues with its optimizer, and the seeds of a second fit.
    local.fit(x, y, epochs=2, batch_size=12)
    nnfast.distributed.fit_ensemble(client, remote, x, y, n_parts=n_parts, epochs=2, batch_size=12)
    assert_same_ensembles(remote, local)
    seeds = [11, 12, 13, 14, 15]
    local.fit(x, y, epochs=1, lr=0.01, seeds=seeds)
    nnfast.distributed.fit_ensemble(client, remote, x, y, n_parts=n_parts, epochs=1, lr=0.01, seeds=seeds)
    assert_same_ensembles(remote, local)


def test_the_data_goes_to_the_workers_once(client, monkeypatch):
    scattered = []
    scatter = client.scatter

    def counting_scatter(data, **kwargs):
        scattered.append((len(data), kwargs.get("broadcast")))
        return scatter(data, **kwargs)

    monkeypatch.setattr(client, "scatter", counting_scatter)
    x, y = problem()
    ensemble = nnfast.Ensemble(LAYERS, n_members=6, seed=3, loss="mse")
    nnfast.distributed.fit_ensemble(client, ensemble, x, y, epochs=1, lr=0.01)
    assert scattered == [(2, True)]  # x and y, once, to every worker


def test_bad_arguments_are_refused(client):
    x, y = problem()
    with pytest.raises(TypeError, match="ensemble must be an nnfast.Ensemble"):
        nnfast.distributed.fit_ensemble(client, nnfast.Net(LAYERS, seed=0), x, y, epochs=1, lr=0.1)
    with pytest.raises(TypeError, match="client must be a distributed.Client"):
        nnfast.distributed.fit_ensemble("tcp://nowhere", nnfast.Ensemble(LAYERS, n_members=2, seed=0), x, y,
                                        epochs=1, lr=0.1)
    with pytest.raises(ValueError, match="seeds must be 2 ints"):
        nnfast.distributed.fit_ensemble(client, nnfast.Ensemble(LAYERS, n_members=2, seed=0), x, y, epochs=1,
                                        lr=0.1, seeds=[1])


def test_a_cluster_without_workers_is_refused_at_once():
    with distributed.LocalCluster(n_workers=0, processes=False, dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as client:
        x, y = problem()
        with pytest.raises(ValueError, match="the cluster has no workers"):
            nnfast.distributed.fit_ensemble(client, nnfast.Ensemble(LAYERS, n_members=2, seed=0), x, y, epochs=1,
                                            lr=0.1)


def test_grid_search_runs_on_the_cluster_through_joblib(client):
    pytest.importorskip("sklearn")
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.model_selection import GridSearchCV

    from nnfast.sklearn import MLPClassifier

    x, y = load_iris(return_X_y=True)
    grid = {"hidden_layer_sizes": [(8,), (16,)], "alpha": [1e-4, 1e-2]}
    searches = []
    for backend in ("dask", "sequential"):
        search = GridSearchCV(MLPClassifier(max_iter=30, random_state=0), grid, cv=3)
        with joblib.parallel_backend(backend), pytest.warns(Warning):  # ConvergenceWarning at max_iter
            search.fit(x, y)
        searches.append(search)
    assert searches[0].best_params_ == searches[1].best_params_
    np.testing.assert_array_equal(searches[0].cv_results_["mean_test_score"],
                                  searches[1].cv_results_["mean_test_score"])
