"""Optimizers: trajectories by the documented update formulas, state across calls, reset, arguments.

The formulas are those of the docstrings of ``nnfast.optimizers`` (PyTorch's),
written out again here; the gradients they are fed come from
``nnfast.reference.Net.gradients``, which test_gradients.py checks against
central differences.
"""
import copy

import numpy as np
import pytest

import nnfast
import nnfast.reference
import nnfast.schedules
from tests.conftest import TOL, fit_recording, flat, make_net, params_of, rel_error, set_flat_params

LAYERS = [3, 4, 2]
NET_OPTIONS = dict(activation="tanh", loss="mse", seed=1)  # smooth: no kinks to straddle
STEPS = 6

# name -> the constructor's arguments; "kind" picks the class.
CASES = {
    "sgd": dict(kind="sgd", lr=0.1),
    "sgd-momentum": dict(kind="sgd", lr=0.1, momentum=0.9),
    "sgd-nesterov": dict(kind="sgd", lr=0.1, momentum=0.9, nesterov=True),
    "sgd-weight-decay": dict(kind="sgd", lr=0.1, weight_decay=0.05),
    "sgd-momentum-weight-decay": dict(kind="sgd", lr=0.05, momentum=0.5, weight_decay=0.1),
    "sgd-nesterov-weight-decay": dict(kind="sgd", lr=0.05, momentum=0.7, nesterov=True, weight_decay=0.1),
    "adam": dict(kind="adam", lr=0.01),
    "adam-betas-eps": dict(kind="adam", lr=0.02, betas=(0.8, 0.95), eps=1e-3),
    "adam-weight-decay": dict(kind="adam", lr=0.01, weight_decay=0.1),
    "adamw": dict(kind="adamw", lr=0.01, weight_decay=0.1),
    "adamw-default-decay": dict(kind="adamw", lr=0.01),
}
CLASSES = {"sgd": nnfast.SGD, "adam": nnfast.Adam, "adamw": nnfast.AdamW}
# The documented defaults.
DEFAULTS = {
    "sgd": dict(momentum=0.0, nesterov=False, weight_decay=0.0),
    "adam": dict(betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0),
    "adamw": dict(betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2),
}


def build(name):
    """A new optimizer for ``CASES[name]``."""
    case = dict(CASES[name])
    return CLASSES[case.pop("kind")](**case)


def problem():
    rng = np.random.default_rng(0)
    return rng.standard_normal((6, 3)), rng.standard_normal((6, 2))


def start_net(net_class, dtype=np.float64):
    return make_net(net_class, LAYERS, dtype=dtype, **NET_OPTIONS)


class Oracle:
    """Loss and gradient of the reference at given flat parameters."""

    def __init__(self):
        self.net = make_net(nnfast.reference.Net, LAYERS, **NET_OPTIONS)

    def gradient(self, params, x, y):
        set_flat_params(self.net, params)
        return flat(self.net.gradients(x, y))

    def loss(self, params, x, y):
        set_flat_params(self.net, params)
        return self.net.loss(x, y)


def hand_trajectory(name, x, y, learning_rates, batches=None, start=None):
    """Parameters after each step, by the docstring formulas; ``learning_rates`` gives each step's lr.

    ``batches`` lists the rows of each step's batch (default: all rows).
    Returns ``(params after each step, loss before each step)``.
    """
    case = {**DEFAULTS[CASES[name]["kind"]], **CASES[name]}
    oracle = Oracle()
    p = params_of(oracle.net) if start is None else start.copy()
    buffer, m, v = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
    trajectory, losses = [], []
    for t, lr in enumerate(learning_rates, start=1):
        rows = slice(None) if batches is None else batches[(t - 1) % len(batches)]
        losses.append(oracle.loss(p, x[rows], y[rows]))
        g = oracle.gradient(p, x[rows], y[rows])
        weight_decay = case["weight_decay"]
        if case["kind"] == "sgd":
            g = g + weight_decay * p
            if case["momentum"]:
                buffer = case["momentum"] * buffer + g
                g = g + case["momentum"] * buffer if case["nesterov"] else buffer
            p = p - lr * g
        else:
            beta1, beta2 = case["betas"]
            if case["kind"] == "adamw":
                p = p * (1 - lr * weight_decay)
            else:
                g = g + weight_decay * p
            m = beta1 * m + (1 - beta1) * g
            v = beta2 * v + (1 - beta2) * g * g
            p = p - (lr / (1 - beta1**t)) * m / (np.sqrt(v) / np.sqrt(1 - beta2**t) + case["eps"])
        trajectory.append(p)
    return trajectory, np.array(losses)


def tolerance(dtype):
    """Trajectories in float64 agree with the hand formulas to rounding; float32 to TOL."""
    return 1e-12 if dtype == np.float64 else TOL[np.dtype(dtype)]


# -- trajectories ----------------------------------------------------------------------


@pytest.mark.parametrize("name", CASES)
def test_full_batch_trajectory_follows_the_formulas(net_class, dtype, name):
    """The parameters after each of several full-batch steps are the formulas' (one step per epoch)."""
    x, y = problem()
    net = start_net(net_class, dtype)
    optimizer = build(name)
    history, recorded = fit_recording(net, x, y, epochs=STEPS, optimizer=optimizer)
    expected, losses = hand_trajectory(name, x, y, [CASES[name]["lr"]] * STEPS)
    assert len(recorded) == STEPS
    for step, (got, want) in enumerate(zip(recorded, expected)):
        assert rel_error(got, want) <= tolerance(dtype), f"step {step}: relative error {rel_error(got, want):.3g}"
    np.testing.assert_allclose(history.loss, losses, rtol=tolerance(dtype) * 10)
    assert optimizer.step_count == STEPS and net.optimizer is optimizer
    # The steps did move the parameters (by more than any tolerance above).
    assert rel_error(recorded[-1], params_of(start_net(net_class, dtype))) > 1e-3


@pytest.mark.parametrize("name", ["sgd-nesterov-weight-decay", "adam", "adamw"])
def test_mini_batch_trajectory_follows_the_formulas(net_class, name):
    """Unshuffled mini-batches of 4, 2 rows: each batch is a step, Adam's t counts steps across epochs."""
    x, y = problem()
    net = start_net(net_class)
    history, recorded = fit_recording(net, x, y, epochs=3, optimizer=build(name), batch_size=4, shuffle=False)
    batches = [slice(0, 4), slice(4, 6)]
    expected, losses = hand_trajectory(name, x, y, [CASES[name]["lr"]] * 6, batches)
    assert history.steps_per_epoch == 2 and net.optimizer.step_count == 6
    for epoch, got in enumerate(recorded):
        assert rel_error(got, expected[2 * epoch + 1]) <= 1e-12
    np.testing.assert_allclose(history.loss, losses, rtol=1e-11)


def test_schedule_scales_each_steps_lr(net_class):
    """Adam with cosine annealing, full batch: step t uses its epoch's rate in lr / (1 - beta1**t), and t
    keeps counting (the bias correction does not restart with the rate)."""
    schedule = nnfast.schedules.CosineAnnealing(4, eta_min=0.001)
    x, y = problem()
    net = start_net(net_class)
    history, recorded = fit_recording(net, x, y, epochs=6, optimizer=nnfast.Adam(0.01), schedule=schedule)
    expected, losses = hand_trajectory("adam", x, y, schedule.learning_rates(0.01, 6))
    for got, want in zip(recorded, expected):
        assert rel_error(got, want) <= 1e-12
    np.testing.assert_allclose(history.loss, losses, rtol=1e-11)
    assert net.optimizer.lr == 0.01  # the base rate is kept


def test_optimizer_defaults(net_class):
    """The documented defaults: Adam(lr=1e-3, betas=(0.9, 0.999), eps=1e-8), AdamW weight_decay=1e-2."""
    for kind, cls in CLASSES.items():
        optimizer = cls(0.5)
        assert optimizer.lr == 0.5 and optimizer.step_count == 0 and optimizer.buffers is None
        for key, value in DEFAULTS[kind].items():
            assert getattr(optimizer, key) == value, (kind, key)
    assert nnfast.Adam().lr == nnfast.AdamW().lr == 1e-3
    # The AdamW default decay is used: a trajectory with the default equals one with 1e-2 given.
    x, y = problem()
    a, b = start_net(net_class), start_net(net_class)
    a.fit(x, y, epochs=3, optimizer=nnfast.AdamW(0.01))
    b.fit(x, y, epochs=3, optimizer=nnfast.AdamW(0.01, weight_decay=1e-2))
    np.testing.assert_array_equal(params_of(a), params_of(b))


def test_optimizers_are_exported():
    """nnfast.SGD, nnfast.Adam and nnfast.AdamW, as the docstrings name them, are the optimizers' classes."""
    import nnfast.optimizers

    assert nnfast.SGD is nnfast.optimizers.SGD
    assert nnfast.Adam is nnfast.optimizers.Adam
    assert nnfast.AdamW is nnfast.optimizers.AdamW
    assert issubclass(nnfast.AdamW, nnfast.optimizers.Optimizer)


# -- state across calls ----------------------------------------------------------------


BATCHING = {"full-batch": dict(), "mini-batch-no-shuffle": dict(batch_size=4, shuffle=False)}


@pytest.mark.parametrize("batching", BATCHING.values(), ids=BATCHING.keys())
@pytest.mark.parametrize("name", ["sgd-nesterov-weight-decay", "adam-weight-decay", "adamw"])
def test_state_persists_across_fit_and_partial_fit(net_class, name, batching):
    """Two fits of 3 epochs, or six partial_fits, equal one fit of 6 epochs: the net keeps its
    optimizer with its state (momentum, moments, step count)."""
    x, y = problem()
    once = start_net(net_class)
    history = once.fit(x, y, epochs=6, optimizer=build(name), **batching)

    kept = start_net(net_class)  # continue with the net's optimizer: no lr, no optimizer
    losses = [kept.fit(x, y, epochs=3, optimizer=build(name), **batching).loss]
    losses.append(kept.fit(x, y, epochs=3, **batching).loss)

    same = start_net(net_class)  # continue by passing the same optimizer again
    optimizer = build(name)
    same.fit(x, y, epochs=3, optimizer=optimizer, **batching)
    same.fit(x, y, epochs=3, optimizer=optimizer, **batching)

    online = start_net(net_class)
    online_losses = [online.partial_fit(x, y, optimizer=build(name), **batching).loss]
    online_losses += [online.partial_fit(x, y, **batching).loss for _ in range(5)]

    for net in (kept, same, online):
        np.testing.assert_array_equal(params_of(net), params_of(once))
        assert net.optimizer.step_count == once.optimizer.step_count == 6 * history.steps_per_epoch
    np.testing.assert_array_equal(np.concatenate(losses), history.loss)
    np.testing.assert_array_equal(np.concatenate(online_losses), history.loss)

    # A new optimizer for the second fit starts from no state, and that shows.
    fresh = start_net(net_class)
    fresh.fit(x, y, epochs=3, optimizer=build(name), **batching)
    fresh.fit(x, y, epochs=3, optimizer=build(name), **batching)
    assert rel_error(params_of(fresh), params_of(once)) > 1e-6


@pytest.mark.parametrize("name", ["sgd-momentum", "adam", "adamw"])
def test_reset_optimizer_forgets_the_state(net_class, name):
    """reset_optimizer(): the next fit continues as with a new optimizer of the same hyper-parameters."""
    x, y = problem()
    reset = start_net(net_class)
    optimizer = build(name)
    reset.fit(x, y, epochs=3, optimizer=optimizer)
    assert optimizer.step_count == 3 and optimizer.buffers is not None
    reset.reset_optimizer()
    assert reset.optimizer is optimizer and optimizer.step_count == 0 and optimizer.buffers is None
    reset.fit(x, y, epochs=3)
    assert optimizer.step_count == 3

    renewed = start_net(net_class)
    renewed.fit(x, y, epochs=3, optimizer=build(name))
    renewed.fit(x, y, epochs=3, optimizer=build(name))
    np.testing.assert_array_equal(params_of(reset), params_of(renewed))

    continued = start_net(net_class)
    continued.fit(x, y, epochs=6, optimizer=build(name))
    assert rel_error(params_of(reset), params_of(continued)) > 1e-6


def test_reset_optimizer_without_an_optimizer_is_harmless(net_class):
    net = start_net(net_class)
    net.reset_optimizer()
    assert net.optimizer is None


def test_fit_with_lr_is_plain_sgd(net_class):
    """fit(lr=...) is fit(optimizer=SGD(lr)): train_step after train_step; it replaces the net's optimizer."""
    x, y = problem()
    a, b, steps = start_net(net_class), start_net(net_class), start_net(net_class)
    history = a.fit(x, y, epochs=4, lr=0.1)
    np.testing.assert_array_equal(history.loss, b.fit(x, y, epochs=4, optimizer=nnfast.SGD(0.1)).loss)
    np.testing.assert_array_equal(params_of(a), params_of(b))
    np.testing.assert_allclose(history.loss, [steps.train_step(x, y, 0.1) for _ in range(4)], rtol=1e-13)
    np.testing.assert_allclose(params_of(a), params_of(steps), rtol=1e-13)
    assert type(a.optimizer) is nnfast.SGD
    assert (a.optimizer.lr, a.optimizer.momentum, a.optimizer.nesterov, a.optimizer.weight_decay) == (0.1, 0, False, 0)

    # After an Adam fit, lr= switches to plain SGD from where Adam left the net.
    c = start_net(net_class)
    c.fit(x, y, epochs=2, optimizer=nnfast.Adam(0.01))
    after_adam = copy.deepcopy(c)
    c.fit(x, y, epochs=3, lr=0.05)
    assert type(c.optimizer) is nnfast.SGD
    for _ in range(3):
        after_adam.train_step(x, y, 0.05)
    np.testing.assert_allclose(params_of(c), params_of(after_adam), rtol=1e-13)


def test_train_step_leaves_the_optimizer_alone(net_class):
    """train_step is plain SGD whatever the net's optimizer, and does not touch its state."""
    x, y = problem()
    net = start_net(net_class)
    net.fit(x, y, epochs=2, optimizer=nnfast.Adam(0.01))
    optimizer = net.optimizer
    state = (optimizer.step_count, optimizer.buffers.copy())
    before = params_of(net)
    gradient = flat(net.gradients(x, y))
    net.train_step(x, y, 0.1)
    np.testing.assert_allclose(params_of(net), before - 0.1 * gradient, rtol=1e-14, atol=1e-16)
    assert net.optimizer is optimizer and optimizer.step_count == state[0]
    np.testing.assert_array_equal(optimizer.buffers, state[1])


@pytest.mark.parametrize("name, n_moments", [("sgd", 0), ("sgd-momentum", 1), ("adam", 2)])
def test_optimizer_state_has_the_nets_dtype_and_size(net_class, dtype, name, n_moments):
    """The state is created at the first update, one (n_params,) row per moment the
    update keeps (none for plain SGD), in the net's dtype."""
    x, y = problem()
    net = start_net(net_class, dtype)
    optimizer = build(name)
    assert optimizer.buffers is None and optimizer.n_moments == n_moments
    net.fit(x, y, epochs=1, optimizer=optimizer)
    assert optimizer.buffers.shape == (n_moments, net.n_params) and optimizer.buffers.dtype == dtype
    assert all(np.abs(row).max() > 0 for row in optimizer.buffers)


def test_optimizer_with_state_for_another_net_is_refused(net_class):
    """An optimizer holding state for a net of another size or dtype raises (and says to reset);
    after reset() it is accepted."""
    x, y = problem()
    optimizer = nnfast.Adam(0.01)
    start_net(net_class).fit(x, y, epochs=1, optimizer=optimizer)
    other = net_class([3, 5, 2], seed=0)
    saved = params_of(other)
    with pytest.raises(ValueError, match=r"reset\(\)"):
        other.fit(x, y, epochs=1, optimizer=optimizer)
    float32 = start_net(net_class, np.float32)
    with pytest.raises(ValueError, match=r"reset\(\)"):
        float32.fit(x, y, epochs=1, optimizer=optimizer)
    np.testing.assert_array_equal(params_of(other), saved)
    assert other.optimizer is None
    optimizer.reset()
    other.fit(x, y, epochs=1, optimizer=optimizer)
    assert optimizer.step_count == 1 and other.optimizer is optimizer


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_divergence_leaves_the_optimizer_at_the_last_applied_step(net_class):
    """With a huge Adam lr the loss overflows at some step: that step is not applied, and the step
    count is that of the steps applied before it."""
    x, y = problem()
    net = start_net(net_class)
    optimizer = nnfast.Adam(1e300)
    with pytest.raises(nnfast.DivergenceError) as info:
        net.fit(x, y, epochs=10, optimizer=optimizer)
    assert info.value.step >= 1
    assert optimizer.step_count == info.value.step
    assert np.all(np.isfinite(params_of(net))) and np.all(np.isfinite(optimizer.buffers))


# -- arguments -------------------------------------------------------------------------


def test_lr_and_optimizer_together_are_refused(net_class):
    x, y = problem()
    net = start_net(net_class)
    saved = params_of(net)
    with pytest.raises(ValueError, match=r"lr.*optimizer.*not both"):
        net.fit(x, y, epochs=1, lr=0.1, optimizer=nnfast.SGD(0.1))
    with pytest.raises(ValueError, match=r"lr.*optimizer.*not both"):
        net.partial_fit(x, y, lr=0.1, optimizer=nnfast.Adam())
    np.testing.assert_array_equal(params_of(net), saved)
    assert net.optimizer is None


def test_training_needs_lr_or_an_optimizer(net_class):
    """Without lr, optimizer or a kept optimizer, fit and partial_fit raise naming both."""
    x, y = problem()
    net = start_net(net_class)
    with pytest.raises(ValueError, match=r"lr=.*optimizer="):
        net.fit(x, y, epochs=1)
    with pytest.raises(ValueError, match=r"lr=.*optimizer="):
        net.partial_fit(x, y)


@pytest.mark.parametrize("optimizer", ["adam", nnfast.Adam, 0.1, object()], ids=["str", "class", "float", "object"])
def test_optimizer_of_the_wrong_type_is_refused(net_class, optimizer):
    x, y = problem()
    with pytest.raises(TypeError, match=r"^optimizer must be"):
        start_net(net_class).fit(x, y, epochs=1, optimizer=optimizer)


def test_rejected_fit_keeps_the_previous_optimizer(net_class):
    """A fit refused for a bad argument neither trains nor replaces or touches the kept optimizer."""
    x, y = problem()
    net = start_net(net_class)
    optimizer = nnfast.Adam(0.01)
    net.fit(x, y, epochs=2, optimizer=optimizer)
    saved, buffers = params_of(net), optimizer.buffers.copy()
    for bad in [dict(optimizer=nnfast.SGD(0.1), epochs=-1), dict(lr=0.1, batch_size=0),
                dict(optimizer=nnfast.AdamW(), patience=0)]:
        with pytest.raises((TypeError, ValueError)):
            net.fit(x, y, **{"epochs": 1, **bad})
    assert net.optimizer is optimizer and optimizer.step_count == 2
    np.testing.assert_array_equal(optimizer.buffers, buffers)
    np.testing.assert_array_equal(params_of(net), saved)


NAN, INF = float("nan"), float("inf")
# (id, constructor call, exception, message pattern): the message starts with the argument's name.
BAD_OPTIMIZERS = [
    ("sgd-lr-zero", lambda: nnfast.SGD(0.0), ValueError, r"^lr must be in \(0, inf\), got 0.0"),
    ("sgd-lr-negative", lambda: nnfast.SGD(-0.1), ValueError, r"^lr must be in \(0, inf\), got -0.1"),
    ("sgd-lr-nan", lambda: nnfast.SGD(NAN), ValueError, r"^lr must be"),
    ("sgd-lr-inf", lambda: nnfast.SGD(INF), ValueError, r"^lr must be"),
    ("sgd-lr-str", lambda: nnfast.SGD("0.1"), TypeError, r"^lr must be a number, got '0.1'"),
    ("sgd-lr-none", lambda: nnfast.SGD(None), TypeError, r"^lr must be a number, got None"),
    ("sgd-lr-bool", lambda: nnfast.SGD(True), TypeError, r"^lr must be a number, got True"),
    ("sgd-lr-array", lambda: nnfast.SGD(np.array([0.1])), TypeError, r"^lr must be a number"),
    ("momentum-negative", lambda: nnfast.SGD(0.1, momentum=-0.1), ValueError, r"^momentum must be in \[0, 1"),
    ("momentum-one", lambda: nnfast.SGD(0.1, momentum=1.0), ValueError, r"^momentum must be in \[0, 1\), got 1.0"),
    ("momentum-above-one", lambda: nnfast.SGD(0.1, momentum=1.5), ValueError, r"^momentum must be in \[0, 1"),
    ("momentum-nan", lambda: nnfast.SGD(0.1, momentum=NAN), ValueError, r"^momentum must be"),
    ("momentum-str", lambda: nnfast.SGD(0.1, momentum="0.9"), TypeError, r"^momentum must be a number"),
    ("nesterov-without-momentum", lambda: nnfast.SGD(0.1, nesterov=True), ValueError,
     r"^nesterov=True needs momentum > 0"),
    ("nesterov-int", lambda: nnfast.SGD(0.1, momentum=0.9, nesterov=1), TypeError,
     r"^nesterov must be True or False, got 1"),
    ("sgd-weight-decay-negative", lambda: nnfast.SGD(0.1, weight_decay=-1e-4), ValueError,
     r"^weight_decay must be in \[0, inf\), got -0.0001"),
    ("sgd-weight-decay-inf", lambda: nnfast.SGD(0.1, weight_decay=INF), ValueError, r"^weight_decay must be"),
    ("sgd-weight-decay-str", lambda: nnfast.SGD(0.1, weight_decay="0"), TypeError, r"^weight_decay must be a number"),
    ("adam-lr-zero", lambda: nnfast.Adam(0.0), ValueError, r"^lr must be in \(0, inf\)"),
    ("adam-lr-negative", lambda: nnfast.Adam(lr=-1e-3), ValueError, r"^lr must be in \(0, inf\)"),
    ("adam-lr-str", lambda: nnfast.Adam(lr="fast"), TypeError, r"^lr must be a number"),
    ("adam-beta1-one", lambda: nnfast.Adam(betas=(1.0, 0.999)), ValueError,
     r"^betas\[0\] must be in \[0, 1\), got 1"),
    ("adam-beta2-one", lambda: nnfast.Adam(betas=(0.9, 1.0)), ValueError,
     r"^betas\[1\] must be in \[0, 1\), got 1"),
    ("adam-beta1-above-one", lambda: nnfast.Adam(betas=(1.5, 0.999)), ValueError, r"^betas\[0\] must be in \[0, 1"),
    ("adam-beta2-negative", lambda: nnfast.Adam(betas=(0.9, -0.1)), ValueError, r"^betas\[1\] must be in \[0, 1"),
    ("adam-beta-nan", lambda: nnfast.Adam(betas=(NAN, 0.9)), ValueError, r"^betas\[0\] must be"),
    ("adam-beta-str", lambda: nnfast.Adam(betas=("0.9", 0.999)), TypeError, r"^betas\[0\] must be a number"),
    ("adam-betas-number", lambda: nnfast.Adam(betas=0.9), TypeError, r"^betas must be a pair"),
    ("adam-betas-triple", lambda: nnfast.Adam(betas=(0.9, 0.99, 0.9)), TypeError, r"^betas must be a pair"),
    ("adam-eps-zero", lambda: nnfast.Adam(eps=0.0), ValueError, r"^eps must be in \(0, inf\), got 0.0"),
    ("adam-eps-negative", lambda: nnfast.Adam(eps=-1e-8), ValueError, r"^eps must be in \(0, inf\)"),
    ("adam-eps-inf", lambda: nnfast.Adam(eps=INF), ValueError, r"^eps must be"),
    ("adam-eps-none", lambda: nnfast.Adam(eps=None), TypeError, r"^eps must be a number"),
    ("adam-weight-decay-negative", lambda: nnfast.Adam(weight_decay=-0.1), ValueError, r"^weight_decay must be in"),
    ("adamw-weight-decay-negative", lambda: nnfast.AdamW(weight_decay=-0.1), ValueError, r"^weight_decay must be in"),
    ("adamw-weight-decay-nan", lambda: nnfast.AdamW(weight_decay=NAN), ValueError, r"^weight_decay must be"),
    ("adamw-lr-zero", lambda: nnfast.AdamW(lr=0), ValueError, r"^lr must be in \(0, inf\)"),
    ("adamw-beta-one", lambda: nnfast.AdamW(betas=(0.9, 1)), ValueError, r"^betas\[1\] must be in \[0, 1\), got 1"),
    ("adamw-eps-zero", lambda: nnfast.AdamW(eps=0), ValueError, r"^eps must be in \(0, inf\)"),
    ("adamw-bool-weight-decay", lambda: nnfast.AdamW(weight_decay=False), TypeError, r"^weight_decay must be a number"),
]


@pytest.mark.parametrize("call, exception, message", [case[1:] for case in BAD_OPTIMIZERS],
                         ids=[case[0] for case in BAD_OPTIMIZERS])
def test_bad_hyperparameters_are_rejected(call, exception, message):
    with pytest.raises(exception, match=message):
        call()


def test_edge_hyperparameters_are_accepted():
    """The closed ends of the ranges, and any real number type."""
    assert nnfast.SGD(1).lr == 1.0 and isinstance(nnfast.SGD(1).lr, float)
    assert nnfast.SGD(np.float32(0.5), momentum=0).momentum == 0.0
    assert nnfast.SGD(0.1, momentum=0.999, nesterov=np.True_).nesterov is True
    assert nnfast.Adam(betas=[0, 0]).betas == (0.0, 0.0)
    assert nnfast.Adam(eps=1e-300, weight_decay=0).eps == 1e-300
    assert nnfast.AdamW(weight_decay=0).weight_decay == 0.0


@pytest.mark.parametrize("value, error", [(-1, ValueError), (2**53 + 1, ValueError), (1.5, TypeError),
                                          (True, TypeError), ("3", TypeError)])
def test_step_count_refuses_what_no_training_reaches(value, error):
    optimizer = nnfast.Adam()
    with pytest.raises(error, match="step_count must be"):
        optimizer.step_count = value
    assert optimizer.step_count == 0


@pytest.mark.parametrize("optimizer", [nnfast.SGD(0.1, momentum=0.9, nesterov=True, weight_decay=0.01,
                                                  style="sklearn"),
                                       nnfast.Adam(0.01, betas=(0.8, 0.9), eps=1e-7, style="sklearn"),
                                       nnfast.AdamW(0.01, weight_decay=0.1)], ids=repr)
def test_fresh_copies_are_new_optimizers_of_the_same_settings(optimizer):
    """What an ensemble gives its members: as the constructor makes them, each with a state of its own."""
    net = nnfast.Net([3, 4, 1], seed=0)
    net.fit(np.ones((4, 3)), np.ones((4, 1)), epochs=2, optimizer=optimizer)  # state to leave behind
    copies = optimizer._fresh_copies(2)
    fresh = type(optimizer)(**optimizer._fields())
    for copy_ in copies:
        assert type(copy_) is type(optimizer) and vars(copy_).keys() == vars(fresh).keys()
        assert repr(copy_) == repr(fresh) and copy_.step_count == 0 and copy_.buffers is None
    copies[0].step_count = 5
    assert copies[1].step_count == 0 and optimizer.step_count == 2
