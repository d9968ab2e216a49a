"""Ensembles of tiny nets trained side by side in SIMD lanes (``nnfast._lanes``).

Where ``nnfast._lockstep.plan`` takes an ensemble's fit, member ``i``
must still be, to the bit, the net fitted alone: its parameters, its
optimizer's state and step count, and its history. Each test checks that
the lanes did run (a spy on ``nnfast._lockstep.fit``), so that a plan that
silently fell back to per-member fits cannot pass for them.
"""
import numpy as np
import pytest

import nnfast
from nnfast import _kernels, _lockstep
from nnfast._history import DivergenceError

LANES = _kernels.BEST.lanes.LANE_COUNT
OPTIMIZERS = {
    "sgd": lambda: nnfast.SGD(0.02),
    "momentum": lambda: nnfast.SGD(0.02, momentum=0.9),
    "nesterov": lambda: nnfast.SGD(0.02, momentum=0.8, nesterov=True, weight_decay=0.01),
    "nesterov-sklearn": lambda: nnfast.SGD(0.02, momentum=0.8, nesterov=True, style="sklearn"),
    "adam": lambda: nnfast.Adam(1e-2),
    "adam-sklearn": lambda: nnfast.Adam(1e-2, weight_decay=0.01, style="sklearn"),
    "adamw": lambda: nnfast.AdamW(1e-2, weight_decay=0.1),
}


@pytest.fixture
def lanes_calls(monkeypatch):
    """The number of fits the lanes ran, counted as they happen."""
    calls = []
    fit = _lockstep.fit

    def counting(*args, **kwargs):
        calls.append(1)
        return fit(*args, **kwargs)

    monkeypatch.setattr(_lockstep, "fit", counting)
    return calls


def problem(n_samples, layers, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n_samples, layers[0])), rng.standard_normal((n_samples, layers[-1]))


def assert_members_fitted_alone(ensemble, histories, layers, x, y, make_optimizer, net_kwargs, fit_kwargs,
                                lrs=None):
    for i, member in enumerate(ensemble.members):
        net = nnfast.Net(layers, seed=ensemble.init_seeds[i], **net_kwargs)
        optimizer = make_optimizer()
        if lrs is not None:
            optimizer.lr = lrs[i]
        try:
            history = net.fit(x, y, optimizer=optimizer, seed=ensemble.fit_seeds[i], **fit_kwargs)
            assert not ensemble.diverged[i]
        except DivergenceError as error:
            history = error.history
            assert ensemble.diverged[i]
        np.testing.assert_array_equal(member.parameters, net.parameters, err_msg=f"member {i}")
        np.testing.assert_array_equal(histories[i].loss, history.loss)
        np.testing.assert_array_equal(histories[i].epoch_loss, history.epoch_loss)
        assert member.optimizer.step_count == net.optimizer.step_count
        if net.optimizer.buffers is not None and net.optimizer.buffers.size:
            np.testing.assert_array_equal(member.optimizer.buffers, net.optimizer.buffers)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("rule", OPTIMIZERS)
@pytest.mark.parametrize("loss", _lockstep.LANE_LOSSES)
def test_each_member_in_the_lanes_is_the_net_fitted_alone(lanes_calls, dtype, rule, loss):
    layers = [3, 4, 2]
    x, y = problem(10, layers)
    net_kwargs = {"loss": loss, "dtype": dtype, "l2": 0.01 if rule == "sgd" else 0.0}
    # Not a multiple of the lanes: the last block has lanes without a member.
    ensemble = nnfast.Ensemble(layers, n_members=LANES + 3, seed=1, **net_kwargs)
    fit_kwargs = {"epochs": 6, "batch_size": 4}
    histories = ensemble.fit(x, y, optimizer=OPTIMIZERS[rule](), **fit_kwargs)
    assert lanes_calls
    assert_members_fitted_alone(ensemble, histories, layers, x, y, OPTIMIZERS[rule], net_kwargs, fit_kwargs)


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "tanh", "sigmoid", "identity"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_every_activation_and_a_deeper_net(lanes_calls, activation, dtype):
    layers = [4, 3, 4, 2, 1]
    x, y = problem(12, layers, seed=2)
    net_kwargs = {"loss": "mse", "dtype": dtype, "activation": activation, "bias": [True, False, True, True]}
    ensemble = nnfast.Ensemble(layers, n_members=5, seed=3, **net_kwargs)
    fit_kwargs = {"epochs": 4, "batch_size": None, "shuffle": False}
    histories = ensemble.fit(x, y, optimizer=nnfast.Adam(1e-2), **fit_kwargs)
    assert lanes_calls
    assert_members_fitted_alone(ensemble, histories, layers, x, y, lambda: nnfast.Adam(1e-2), net_kwargs,
                                fit_kwargs)


def test_sample_weights_sweeps_and_threads(lanes_calls):
    """Per-member weights (bootstrap) and learning rates, members split over two threads."""
    layers = [3, 3, 1]
    x, y = problem(16, layers, seed=4)
    k = 2 * LANES + 1
    lrs = list(np.geomspace(1e-4, 1e-2, k))
    ensemble = nnfast.Ensemble(layers, n_members=k, seed=5, loss="sse")
    fit_kwargs = {"epochs": 5, "batch_size": 8}
    histories = ensemble.fit(x, y, lr=lrs, bootstrap=True, n_threads=2, **fit_kwargs)
    assert lanes_calls
    for i, member in enumerate(ensemble.members):
        net = nnfast.Net(layers, seed=ensemble.init_seeds[i], loss="sse")
        counts = np.random.default_rng(ensemble.fit_seeds[i]).multinomial(16, np.full(16, 1 / 16))
        history = net.fit(x, y, lr=lrs[i], seed=ensemble.fit_seeds[i], sample_weight=counts.astype(float),
                          **fit_kwargs)
        np.testing.assert_array_equal(member.parameters, net.parameters)
        np.testing.assert_array_equal(histories[i].loss, history.loss)


def test_a_diverging_lane_stops_alone_and_keeps_its_last_finite_parameters(lanes_calls):
    layers = [3, 3, 1]
    x, y = problem(8, layers, seed=6)
    lrs = [1e-2] * 4 + [1e12] + [1e-2] * 4
    ensemble = nnfast.Ensemble(layers, n_members=len(lrs), seed=7, loss="sse")
    histories = ensemble.fit(x, y, lr=lrs, epochs=30, batch_size=4)
    assert lanes_calls
    assert ensemble.diverged == [lr > 1 for lr in lrs]
    assert np.isfinite(ensemble.members[4].parameters).all()
    assert_members_fitted_alone(ensemble, histories, layers, x, y, lambda: nnfast.SGD(1.0), {"loss": "sse"},
                                {"epochs": 30, "batch_size": 4}, lrs=lrs)


def test_continuing_fits_continue_each_member_s_optimizer(lanes_calls):
    layers = [2, 4, 1]
    x, y = problem(6, layers, seed=8)
    ensemble = nnfast.Ensemble(layers, seeds=range(3), loss="mse")
    ensemble.fit(x, y, optimizer=nnfast.Adam(1e-2), seeds=[10, 11, 12], epochs=3)
    ensemble.fit(x, y, seeds=[20, 21, 22], epochs=2)
    assert len(lanes_calls) == 2
    for i, member in enumerate(ensemble.members):
        net = nnfast.Net(layers, seed=i, loss="mse")
        net.fit(x, y, optimizer=nnfast.Adam(1e-2), seed=10 + i, epochs=3)
        net.fit(x, y, seed=20 + i, epochs=2)
        np.testing.assert_array_equal(member.parameters, net.parameters)
        np.testing.assert_array_equal(member.optimizer.buffers, net.optimizer.buffers)


@pytest.mark.parametrize("layers, fit_kwargs, net_kwargs", [
    ([3, 5, 1], {}, {}),                                      # a layer wider than the lanes take
    ([3, 3, 1], {"batch_size": 3}, {}),                       # a batch of one row (10 = 3 + 3 + 3 + 1)
    ([3, 3, 1], {"batch_size": 20}, {}),                      # more rows than the lanes take
    ([3, 3, 2], {}, {"loss": "cross_entropy"}),               # a loss they do not compute
    ([3, 3, 1], {"validation_fraction": 0.2}, {}),            # validation
    ([3, 3, 1], {"early_stopping": True}, {}),
])
def test_what_the_lanes_do_not_take_runs_member_by_member(lanes_calls, layers, fit_kwargs, net_kwargs):
    n_samples = 20 if fit_kwargs.get("batch_size") == 20 else 10
    x, y = problem(n_samples + (20 if fit_kwargs.get("batch_size") == 20 else 0), layers, seed=9)
    if net_kwargs.get("loss") == "cross_entropy":
        y = np.eye(layers[-1])[np.arange(len(x)) % layers[-1]]
    ensemble = nnfast.Ensemble(layers, n_members=3, seed=0, **{"loss": "mse", **net_kwargs})
    ensemble.fit(x, y, lr=1e-2, epochs=2, **fit_kwargs)
    assert not lanes_calls


def test_plan_declines_members_that_differ():
    layers = [3, 3, 1]
    ensemble = nnfast.Ensemble(layers, n_members=3, seed=0, loss="mse")
    optimizers = [nnfast.SGD(0.1), nnfast.Adam(0.1), nnfast.SGD(0.1)]
    assert _lockstep.plan(ensemble.members, [nnfast.SGD(0.1)] * 3, 8, {}) is not None
    assert _lockstep.plan(ensemble.members, optimizers, 8, {}) is None
    ensemble.members[1] = ensemble.members[0]  # one net twice
    assert _lockstep.plan(ensemble.members, [nnfast.SGD(0.1)] * 3, 8, {}) is None
    assert _lockstep.plan(ensemble.members[:1], [nnfast.SGD(0.1)], 8, {}) is None


def test_the_lanes_kernel_refuses_records_that_disagree():
    layers = [3, 3, 1]
    x, y = problem(8, layers)
    nets = [nnfast.Net(layers, seed=s, loss="mse") for s in range(2)]
    plan = nets[0]._plan_fit(x, y, epochs=2, lr=0.1, batch_size=4)
    optimizers = [nnfast.SGD(0.1), nnfast.SGD(0.1)]
    for optimizer in optimizers:
        optimizer._bind(nets[0].n_params, nets[0]._dtype)
    flag = np.zeros(1, dtype=np.uint8)
    lanes = _kernels.BEST.lanes

    def fit(records, nets=nets, optimizers=optimizers):
        net = nets[0]
        return lanes.fit_lanes(net._layout.table, net._loss_code(), 0.0, 0.0, plan.x, plan.y,
                               [n._params for n in nets], [n._fast.lock for n in nets], optimizers, records, 2)

    def records(n_members=2):
        return _lockstep.LaneRecords(plan, n_members, [plan.schedule.learning_rates(0.1, 2)] * n_members,
                                     None, [0] * n_members, flag)

    at_two_epochs = records()
    at_two_epochs.counters[1, 0] = 1
    with pytest.raises(ValueError, match="at one epoch"):
        fit(at_two_epochs)
    with pytest.raises(ValueError, match="2 rows of 3"):
        fit(records(3))
    one_row = records()
    one_row.batch_size = 1
    with pytest.raises(ValueError, match="batches of 2"):
        fit(one_row)
    wide = nnfast.Net([3, 8, 1], seed=0, loss="mse")
    with pytest.raises(ValueError, match="at most"):
        fit(records(1), [wide], optimizers[:1])
    assert fit(records()) and all(net.optimizer is None for net in nets)  # the records as they should be


def test_the_lanes_weigh_every_member_or_none():
    layers = [3, 3, 1]
    x, y = problem(8, layers)
    ensemble = nnfast.Ensemble(layers, n_members=2, seed=0, loss="mse")
    optimizers = [nnfast.SGD(0.1), nnfast.SGD(0.1)]
    lanes = _lockstep.plan(ensemble.members, optimizers, 8, {})
    with pytest.raises(ValueError, match="every member or of none"):
        _lockstep.fit(lanes, ensemble.members, x, y, 2, optimizers, [0, 1], [np.ones(8), None], {},
                      np.zeros(1, dtype=np.uint8), 1)
    assert all(member.optimizer is None for member in ensemble.members)
