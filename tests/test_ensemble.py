"""``nnfast.Ensemble``: K nets fitted together, each bit-identical to the net fitted alone.

Member ``i`` must equal ``Net(layers, seed=init_seeds[i], **options)``
fitted alone with ``seed=fit_seeds[i]`` and its own optimizer and weights,
to the bit, whatever ``n_threads``; ``nnfast.reference.Ensemble`` is the
specification (``tests.conftest.TOL``).
"""
import copy
import json
import os
import pickle
import signal

import numpy as np
import pytest

import nnfast
import nnfast.reference
from tests.conftest import TOL, assert_close, random_data, rel_error

LAYERS = [5, 8, 6, 3]
OPTIMIZERS = {
    "sgd": lambda: nnfast.SGD(0.02),
    "nesterov": lambda: nnfast.SGD(0.02, momentum=0.8, nesterov=True),
    "nesterov-sklearn": lambda: nnfast.SGD(0.02, momentum=0.8, nesterov=True, style="sklearn"),
    "adam": lambda: nnfast.Adam(1e-2),
    "adam-sklearn": lambda: nnfast.Adam(1e-2, style="sklearn"),
    "adamw": lambda: nnfast.AdamW(1e-2, weight_decay=0.1),
}
LOSSES = ["mse", "sse", "cross_entropy", "binary_cross_entropy", "poisson", "squared_error", "binary_log_loss"]


def data(loss, n_samples=40, seed=0):
    return random_data(np.random.default_rng(seed), n_samples, LAYERS, loss)


def alone(ensemble, i, x, y, epochs, optimizer, **kwargs):
    """Member ``i`` of ``ensemble``, fitted as a net alone; return (net, history)."""
    member = ensemble.members[i]
    net = nnfast.Net(LAYERS, seed=ensemble.init_seeds[i], activation=member.activation, loss=member.loss_name,
                     dtype=member.dtype, l2=member.l2)
    history = net.fit(x, y, epochs=epochs, optimizer=optimizer, seed=ensemble.fit_seeds[i], **kwargs)
    return net, history


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("rule", OPTIMIZERS)
def test_each_member_is_the_net_fitted_alone_to_the_bit(rule, loss, dtype):
    x, y = data(loss)
    results = []
    for n_threads in (1, 2, 3):
        ensemble = nnfast.Ensemble(LAYERS, n_members=4, seed=7, loss=loss, dtype=dtype, activation="tanh")
        histories = ensemble.fit(x, y, epochs=3, batch_size=16, optimizer=OPTIMIZERS[rule](), n_threads=n_threads)
        results.append(([m.parameters for m in ensemble.members], [h.loss for h in histories]))
    for i in range(4):
        net, history = alone(ensemble, i, x, y, 3, OPTIMIZERS[rule](), batch_size=16)
        for parameters, losses in results:
            np.testing.assert_array_equal(parameters[i], net.parameters)
            np.testing.assert_array_equal(losses[i], history.loss)
    assert not any(np.array_equal(results[0][0][0], p) for p in results[0][0][1:]), "members must differ"


def test_the_reference_ensemble_is_the_specification(dtype):
    x, y = data("cross_entropy")
    fits = []
    for cls in (nnfast.Ensemble, nnfast.reference.Ensemble):
        ensemble = cls(LAYERS, n_members=3, seed=1, loss="cross_entropy", dtype=dtype)
        histories = ensemble.fit(x, y, epochs=4, batch_size=8, lr=[0.05, 0.02, 0.01], momentum=[0.0, 0.5, 0.9],
                                 sample_weight=np.arange(40) % 3, bootstrap=True)
        fits.append((ensemble, histories))
    (fast, fast_histories), (ref, ref_histories) = fits
    assert fast.init_seeds == ref.init_seeds and fast.fit_seeds == ref.fit_seeds
    assert_close([m.parameters for m in fast.members], [m.parameters for m in ref.members], dtype)
    assert_close([h.loss for h in fast_histories], [h.loss for h in ref_histories], dtype)
    assert rel_error(fast.predict(x), ref.predict(x)) <= TOL[np.dtype(dtype)]


def test_seeds_derive_as_documented():
    ensemble = nnfast.Ensemble([2, 3, 1], n_members=3, seed=11)
    words = [np.random.SeedSequence([11, i, 0]).generate_state(1, np.uint64)[0] for i in range(3)]
    assert ensemble.init_seeds == [int(w) for w in words]
    for i, member in enumerate(ensemble.members):
        np.testing.assert_array_equal(member.parameters, nnfast.Net([2, 3, 1], seed=int(words[i])).parameters)
    x, y = np.random.default_rng(0).standard_normal((6, 2)), np.zeros((6, 1))
    for k in range(2):
        ensemble.fit(x, y, epochs=1, lr=0.01, batch_size=2)
        assert ensemble.fit_seeds == [int(np.random.SeedSequence([11, i, 1, k]).generate_state(1, np.uint64)[0])
                                      for i in range(3)]
    given = nnfast.Ensemble([2, 3, 1], seeds=[5, 6])
    assert given.init_seeds == [5, 6] and given.n_members == 2
    np.testing.assert_array_equal(given.members[1].parameters, nnfast.Net([2, 3, 1], seed=6).parameters)
    given.fit(x, y, epochs=1, lr=0.01, seeds=[1, 2])
    assert given.fit_seeds == [1, 2]
    given.fit(x, y, epochs=1, lr=0.01)
    assert given.fit_seeds == [int(np.random.SeedSequence([s, 0, 1, 1]).generate_state(1, np.uint64)[0])
                               for s in (5, 6)]


def test_per_member_hyperparameters_and_weights_are_each_member_s_own():
    x, y = data("mse")
    weights = np.random.default_rng(3).uniform(0, 2, (3, 40))
    ensemble = nnfast.Ensemble(LAYERS, n_members=3, seed=2, loss="mse")
    ensemble.fit(x, y, epochs=2, batch_size=10, optimizer=nnfast.SGD(0.1, momentum=0.5), lr=[0.1, 0.05, 0.01],
                 weight_decay=[0.0, 0.1, 0.2], momentum=[0.5, 0.0, 0.9], sample_weight=weights)
    for i, (lr, decay, momentum) in enumerate(zip([0.1, 0.05, 0.01], [0.0, 0.1, 0.2], [0.5, 0.0, 0.9])):
        net, _ = alone(ensemble, i, x, y, 2, nnfast.SGD(lr, momentum=momentum, weight_decay=decay), batch_size=10,
                       sample_weight=weights[i])
        np.testing.assert_array_equal(ensemble.members[i].parameters, net.parameters)


def test_bootstrap_weights_are_multinomial_counts_of_the_fit_seed():
    x, y = data("mse", n_samples=30)
    ensemble = nnfast.Ensemble(LAYERS, n_members=2, seed=4, loss="mse")
    ensemble.fit(x, y, epochs=2, lr=0.01, batch_size=7, bootstrap=True, sample_weight=np.full(30, 0.5))
    for i in range(2):
        counts = np.random.default_rng(ensemble.fit_seeds[i]).multinomial(30, np.full(30, 1 / 30))
        net, _ = alone(ensemble, i, x, y, 2, nnfast.SGD(0.01), batch_size=7, sample_weight=0.5 * counts)
        np.testing.assert_array_equal(ensemble.members[i].parameters, net.parameters)


def test_continuing_a_fit_continues_each_member_s_optimizer():
    x, y = data("mse")
    ensemble = nnfast.Ensemble(LAYERS, n_members=2, seed=5, loss="mse")
    ensemble.fit(x, y, epochs=2, batch_size=8, optimizer=nnfast.Adam(1e-2))
    first_seeds = ensemble.fit_seeds
    ensemble.fit(x, y, epochs=2, batch_size=8)
    for i in range(2):
        net = nnfast.Net(LAYERS, seed=ensemble.init_seeds[i], loss="mse")
        net.fit(x, y, epochs=2, batch_size=8, optimizer=nnfast.Adam(1e-2), seed=first_seeds[i])
        net.fit(x, y, epochs=2, batch_size=8, seed=ensemble.fit_seeds[i])
        np.testing.assert_array_equal(ensemble.members[i].parameters, net.parameters)
        assert ensemble.members[i].optimizer.step_count == 4 * 5  # 4 epochs of 5 batches


def test_a_diverging_member_stops_alone():
    x, y = data("mse")
    ensemble = nnfast.Ensemble(LAYERS, n_members=3, seed=6, loss="mse")
    histories = ensemble.fit(x, y, epochs=20, batch_size=8, lr=[0.01, 1e6, 0.01], n_threads=2)
    assert ensemble.diverged == [False, True, False]
    assert histories[1].epochs < 20 and histories[0].epochs == histories[2].epochs == 20
    net = nnfast.Net(LAYERS, seed=ensemble.init_seeds[1], loss="mse")
    with pytest.raises(nnfast.DivergenceError) as error:
        net.fit(x, y, epochs=20, batch_size=8, lr=1e6, seed=ensemble.fit_seeds[1])
    np.testing.assert_array_equal(ensemble.members[1].parameters, net.parameters)
    np.testing.assert_array_equal(histories[1].loss, error.value.history.loss)
    assert np.isfinite(ensemble.members[1].parameters).all()


def test_predictions_stack_the_members():
    x, y = data("cross_entropy")
    ensemble = nnfast.Ensemble(LAYERS, n_members=3, seed=8, loss="cross_entropy")
    ensemble.fit(x, y, epochs=2, lr=0.1)
    outputs = np.stack([m.predict(x) for m in ensemble.members])
    np.testing.assert_array_equal(ensemble.predict(x), outputs)
    np.testing.assert_array_equal(ensemble.predict_mean(x), outputs.mean(axis=0))
    np.testing.assert_array_equal(ensemble.predict_std(x), outputs.std(axis=0))
    np.testing.assert_array_equal(ensemble.predict_proba(x), np.stack([m.predict_proba(x) for m in ensemble.members]))
    assert ensemble.predict(x[:, :5].tolist()).shape == (3, 40, 3)


def test_pickle_and_deepcopy_keep_everything():
    x, y = data("mse")
    ensemble = nnfast.Ensemble(LAYERS, n_members=2, seed=9, loss="mse")
    ensemble.fit(x, y, epochs=2, optimizer=nnfast.Adam(1e-2))
    for copied in (pickle.loads(pickle.dumps(ensemble)), copy.deepcopy(ensemble)):
        np.testing.assert_array_equal(copied.predict(x), ensemble.predict(x))
        copied.fit(x, y, epochs=1)
        ensemble_copy = copy.deepcopy(ensemble)
        ensemble_copy.fit(x, y, epochs=1)
        np.testing.assert_array_equal(copied.predict(x), ensemble_copy.predict(x))


@pytest.mark.parametrize("make, message", [
    (lambda: nnfast.Ensemble([2, 1]), "give n_members"),
    (lambda: nnfast.Ensemble([2, 1], n_members=0), "n_members"),
    (lambda: nnfast.Ensemble([2, 1], seed=1, seeds=[1]), "not both"),
    (lambda: nnfast.Ensemble([2, 1], n_members=3, seeds=[1, 2]), "n_members=3 but 2 seeds"),
    (lambda: nnfast.Ensemble([2, 1], seeds=[]), "non-empty"),
    (lambda: nnfast.Ensemble([2, 1], seeds=[-1]), "seed"),
])
def test_bad_constructions_are_refused(make, message):
    with pytest.raises((TypeError, ValueError), match=message):
        make()


@pytest.mark.parametrize("kwargs, message", [
    (dict(lr=[0.1, 0.2, 0.3]), r"lr must be one number or one per member \(2\)"),
    (dict(optimizer=nnfast.Adam(), momentum=0.9), "momentum is an SGD option"),
    (dict(weight_decay=0.1), "give lr or optimizer"),
    (dict(optimizer="adam"), "optimizer must be an nnfast optimizer"),
    (dict(lr=0.1, sample_weight=np.ones((3, 6))), r"sample_weight must have shape \(6,\) or \(2, 6\)"),
    (dict(lr=0.1, seeds=[1]), "seeds must be 2 ints"),
    (dict(lr=0.1, n_threads=0), "n_threads"),
    (dict(lr=0.1, verbose=True), "does not take 'verbose'"),
    (dict(lr=0.1, order=np.arange(6)), "does not take 'order'"),
])
def test_bad_fit_arguments_are_refused_before_training(kwargs, message):
    ensemble = nnfast.Ensemble([2, 3, 1], n_members=2, seed=0)
    before = [m.parameters for m in ensemble.members]
    with pytest.raises((TypeError, ValueError), match=message):
        ensemble.fit(np.zeros((6, 2)), np.zeros((6, 1)), epochs=1, **kwargs)
    for member, parameters in zip(ensemble.members, before):
        np.testing.assert_array_equal(member.parameters, parameters)


def test_a_member_s_own_error_is_raised_in_the_caller():
    ensemble = nnfast.Ensemble([2, 3, 1], n_members=2, seed=0)
    with pytest.raises(ValueError, match="needs a learning rate"):
        ensemble.fit(np.zeros((6, 2)), np.zeros((6, 1)), epochs=1, n_threads=2)
    with pytest.raises(ValueError, match="patience"):  # Net.fit's own check, in a worker thread
        ensemble.fit(np.zeros((6, 2)), np.zeros((6, 1)), epochs=1, lr=0.1, n_threads=2, patience=0)


ENSEMBLE_CHILD = """
import json, time
import numpy as np
import nnfast

LAYERS, MEMBERS, THREADS, EPOCHS = {layers}, {members}, {threads}, {epochs}
rng = np.random.default_rng(0)
x, y = rng.standard_normal((64, LAYERS[0])), rng.standard_normal((64, LAYERS[-1]))
ensemble = nnfast.Ensemble(LAYERS, n_members=MEMBERS, seed=0)
print("started", flush=True)
try:
    ensemble.fit(x, y, epochs=EPOCHS, lr=1e-4, batch_size=16, n_threads=THREADS)
    raise SystemExit("the fit was not interrupted")
except nnfast.TrainingInterrupted as error:
    caught = time.monotonic()
    histories = error.history
replays = []
for i, history in enumerate(histories):
    if history is None:
        replays.append(None)
        continue
    net = nnfast.Net(LAYERS, seed=ensemble.init_seeds[i])
    net.fit(x, y, epochs=history.epochs, lr=1e-4, batch_size=16, seed=ensemble.fit_seeds[i])
    replays.append(bool(history.epochs == 0 or len(history.loss) != history.epochs * 4
                        or np.array_equal(net.parameters, ensemble.members[i].parameters)))
print(json.dumps({{"caught": caught, "delivered": delivered(), "replays": replays,
                  "steps": [None if h is None else len(h.loss) for h in histories]}}))
"""


@pytest.mark.skipif(not hasattr(signal, "SIGINT") or os.name != "posix", reason="sends SIGINT to a child process")
@pytest.mark.parametrize("layers, members, threads, epochs", [
    ([16, 32, 2], 4, 2, 10**7),  # members on threads of their own
    # Tiny members in SIMD lanes (nnfast._lanes), in this thread, and their blocks on two
    # threads; fewer epochs, as all members' records are allocated before the first step.
    ([3, 3, 1], 12, 1, 10**6),
    ([3, 3, 1], 20, 2, 10**6),
])
def test_ctrl_c_stops_every_member_s_thread(layers, members, threads, epochs):
    from tests.test_interrupts import LATENCY, run_child

    result = run_child(ENSEMBLE_CHILD.format(layers=layers, members=members, threads=threads, epochs=epochs), delay=0.5)
    latency = result["caught"] - result["delivered"]
    print(f"SIGINT to TrainingInterrupted: {latency * 1e3:.1f} ms; steps per member {result['steps']}")
    # From the signal's delivery; the main thread waits in slices of 0.05 s, and each
    # member then finishes the step it is in.
    assert latency < LATENCY + 0.05 + 0.15
    started = [s for s in result["steps"] if s is not None]
    assert len(started) >= 2 and all(s > 0 for s in started)
    assert all(r is not False for r in result["replays"]), json.dumps(result)


def test_blas_runs_on_one_thread_while_members_share_the_cores(monkeypatch):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    seen = []
    fit = nnfast.Net.fit

    def recording_fit(net, *args, **kwargs):
        seen.append({pool["num_threads"] for pool in threadpoolctl.threadpool_info() if pool["user_api"] == "blas"})
        return fit(net, *args, **kwargs)

    monkeypatch.setattr(nnfast.Net, "fit", recording_fit)
    x, y = data("mse")
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        nnfast.Ensemble(LAYERS, n_members=2, seed=0, loss="mse").fit(x, y, epochs=1, lr=0.01, n_threads=2)
        assert seen == [{1}, {1}]
        after = {pool["num_threads"] for pool in threadpoolctl.threadpool_info() if pool["user_api"] == "blas"}
        assert after == {2}  # restored
        seen.clear()
        nnfast.Ensemble(LAYERS, n_members=2, seed=0, loss="mse").fit(x, y, epochs=1, lr=0.01, n_threads=1)
        assert seen == [{2}, {2}]  # one thread: BLAS keeps its threads


def test_cross_validate_is_one_member_per_fold_validated_on_it():
    x, y = data("cross_entropy", n_samples=43)
    result = nnfast.cross_validate(LAYERS, x, y, folds=4, epochs=3, seed=3, lr=0.05, batch_size=10,
                                   net_options=dict(loss="cross_entropy", activation="tanh"))
    rows = np.concatenate(result.folds)
    np.testing.assert_array_equal(np.sort(rows), np.arange(43))  # a partition of the rows
    assert sorted(len(f) for f in result.folds) == [10, 11, 11, 11]
    np.testing.assert_array_equal(rows, np.concatenate([np.sort(p) for p in np.array_split(
        np.random.default_rng(3).permutation(43), 4)]))
    for k, fold in enumerate(result.folds):
        mask = np.ones(43)
        mask[fold] = 0
        net, history = alone(result.ensemble, k, x, y, 3, nnfast.SGD(0.05), batch_size=10, sample_weight=mask,
                             validation_data=(x[fold], y[fold]))
        np.testing.assert_array_equal(result.ensemble.members[k].parameters, net.parameters)
        np.testing.assert_array_equal(result.histories[k].val_loss, history.val_loss)
        assert result.val_loss[k] == history.val_loss[-1]
    assert result.mean_val_loss == result.val_loss.mean()
    reference = nnfast.cross_validate(LAYERS, x, y, folds=4, epochs=3, seed=3, lr=0.05, batch_size=10,
                                      net_options=dict(loss="cross_entropy", activation="tanh"),
                                      ensemble_class=nnfast.reference.Ensemble)
    assert rel_error(reference.val_loss, result.val_loss) <= TOL[np.dtype(np.float64)]


def test_bagging_validates_each_member_out_of_bag():
    x, y = data("mse", n_samples=30)
    ensemble = nnfast.Ensemble(LAYERS, n_members=2, seed=4, loss="mse")
    histories = ensemble.fit(x, y, epochs=2, lr=0.01, batch_size=7, bootstrap=True, validate_held_out=True)
    for i in range(2):
        counts = np.random.default_rng(ensemble.fit_seeds[i]).multinomial(30, np.full(30, 1 / 30))
        out_of_bag = counts == 0
        _, history = alone(ensemble, i, x, y, 2, nnfast.SGD(0.01), batch_size=7, sample_weight=counts,
                           validation_data=(x[out_of_bag], y[out_of_bag]))
        np.testing.assert_array_equal(histories[i].val_loss, history.val_loss)


@pytest.mark.parametrize("call, message", [
    (lambda x, y: nnfast.cross_validate([5, 3], x, y, folds=1, epochs=1, lr=0.1), "folds"),
    (lambda x, y: nnfast.cross_validate([5, 3], x, y, folds=41, epochs=1, lr=0.1), "at most the number of samples"),
    (lambda x, y: nnfast.Ensemble([5, 3], n_members=2, seed=0).fit(x, y, epochs=1, lr=0.1, validate_held_out=True),
     "needs weights that leave rows out"),
    (lambda x, y: nnfast.Ensemble([5, 3], n_members=2, seed=0).fit(
        x, y, epochs=1, lr=0.1, validate_held_out=True, sample_weight=np.ones(40)), "leave no row out"),
    (lambda x, y: nnfast.Ensemble([5, 3], n_members=2, seed=0).fit(
        x, y, epochs=1, lr=0.1, validate_held_out=True, bootstrap=True, validation_data=(x, y)),
     "not with validation_data"),
])
def test_bad_validation_requests_are_refused(call, message):
    x, y = data("mse")
    with pytest.raises(ValueError, match=message):
        call(x, y)


@pytest.mark.parametrize("cls", [nnfast.Ensemble, nnfast.reference.Ensemble], ids=["fast", "reference"])
def test_save_and_load_keep_everything_and_training_continues_the_same(cls, tmp_path):
    x, y = data("cross_entropy")
    ensemble = cls(LAYERS, n_members=3, loss="cross_entropy")  # fresh entropy, recorded in the file
    ensemble.fit(x, y, epochs=2, batch_size=8, optimizer=nnfast.Adam(1e-2), lr=[1e-2, 5e-3, 1e-3])
    path = ensemble.save(tmp_path / "ensemble.npz")
    loaded = nnfast.load(path)
    assert type(loaded) is cls and loaded.init_seeds == ensemble.init_seeds
    np.testing.assert_array_equal(loaded.predict(x), ensemble.predict(x))
    for copy_ in (ensemble, loaded):
        copy_.fit(x, y, epochs=2, batch_size=8)
    assert loaded.fit_seeds == ensemble.fit_seeds
    for a, b in zip(loaded.members, ensemble.members):
        np.testing.assert_array_equal(a.parameters, b.parameters)


def ensemble_file(tmp_path, edit):
    """An ensemble's file, with its entries changed by ``edit(arrays)``."""
    from nnfast import io

    ensemble = nnfast.Ensemble([3, 4, 2], n_members=2, seed=0)
    arrays = io._ensemble_arrays(ensemble)
    edit(arrays)
    path = tmp_path / "edited.npz"
    with open(path, "wb") as file:
        np.savez(file, **arrays)
    return path


@pytest.mark.parametrize("edit, message", [
    (lambda a: a.update(n_members=np.array(3)), r"n_members is 3, but the file holds the members \['member0', 'member1'\]"),
    (lambda a: a.pop("member1/params"), "member 1: entry 'params' is missing"),
    (lambda a: a.update({"member0/params": np.full(26, np.nan)}), "member 0: .*finite"),
    (lambda a: a.update(extra=np.array(1)), "unexpected entries 'extra'"),
    (lambda a: a.update({"member1/layers": np.array([3, 5, 2])}), "member 1"),
    (lambda a: a.update({"class": np.array("nnfast.Bag")}), "unknown ensemble class 'nnfast.Bag'"),
    (lambda a: a.update(init_seeds=np.array([1.5, 2.5])), "entry 'init_seeds' must be"),
    (lambda a: a.update({"member1/class": np.array("nnfast.reference.Net")}), "the members of an nnfast.Ensemble must be nnfast.Net"),
])
def test_an_edited_ensemble_file_is_refused_naming_the_problem(tmp_path, edit, message):
    path = ensemble_file(tmp_path, edit)
    with pytest.raises(ValueError, match=f"is not a valid nnfast file: {message}"):
        nnfast.load(path)


@pytest.fixture
def restore_num_threads():
    yield
    nnfast.set_num_threads(None)


def test_num_threads_defaults_to_the_cpus_this_process_may_use(restore_num_threads):
    assert nnfast.get_num_threads() == len(os.sched_getaffinity(0))
    nnfast.set_num_threads(3)
    assert nnfast.get_num_threads() == 3
    nnfast.set_num_threads(None)
    assert nnfast.get_num_threads() == len(os.sched_getaffinity(0))


@pytest.mark.parametrize("bad, error", [(0, ValueError), (-2, ValueError), (2.5, TypeError), ("2", TypeError)])
def test_set_num_threads_refuses_what_is_not_a_count(restore_num_threads, bad, error):
    with pytest.raises(error, match=r"n must be an int >= 1, got"):
        nnfast.set_num_threads(bad)
    assert nnfast.get_num_threads() == len(os.sched_getaffinity(0))


def test_set_num_threads_is_the_default_of_n_threads(restore_num_threads, monkeypatch):
    """With one thread set, members are fitted one after another, and the same bits come out
    as on as many threads as members; n_threads given still wins."""
    rng = np.random.default_rng(4)
    x, y = random_data(rng, 24, LAYERS)
    kwargs = {"epochs": 3, "batch_size": 8, "lr": 0.01}
    parallel = nnfast.Ensemble(LAYERS, n_members=3, seed=0, loss="mse")
    parallel.fit(x, y, n_threads=3, **kwargs)

    nnfast.set_num_threads(1)
    serial = nnfast.Ensemble(LAYERS, n_members=3, seed=0, loss="mse")
    assert serial._thread_count(None) == 1
    monkeypatch.setattr(nnfast.Ensemble, "_run_threads", lambda *args: pytest.fail("ran members on threads"))
    serial.fit(x, y, **kwargs)
    for fitted, reference in zip(serial.members, parallel.members):
        for a, b in zip(fitted.weights + fitted.biases, reference.weights + reference.biases):
            np.testing.assert_array_equal(a, b)
    assert serial._thread_count(2) == 2

    nnfast.set_num_threads(8)
    assert serial._thread_count(None) == 3  # at most one per member
