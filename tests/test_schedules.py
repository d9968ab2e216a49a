"""Learning-rate schedules: the closed forms of torch.optim.lr_scheduler, and how fit uses them."""
import math

import numpy as np
import pytest

import nnfast
from nnfast.schedules import Constant, CosineAnnealing, ExponentialDecay, Schedule, StepDecay
from tests.conftest import make_net, params_of, rel_error

BASE_LR = 0.1
EPOCHS = 13

# (schedule, closed form of epoch e), the forms of PyTorch's documentation.
SCHEDULES = {
    "constant": (Constant(), lambda e: BASE_LR),
    "step": (StepDecay(3), lambda e: BASE_LR * 0.1 ** (e // 3)),
    "step-gamma": (StepDecay(step_size=4, gamma=0.5), lambda e: BASE_LR * 0.5 ** (e // 4)),
    "step-size-1": (StepDecay(1, gamma=0.9), lambda e: BASE_LR * 0.9**e),
    "exponential": (ExponentialDecay(0.8), lambda e: BASE_LR * 0.8**e),
    "exponential-1": (ExponentialDecay(1.0), lambda e: BASE_LR),
    "cosine": (CosineAnnealing(5), lambda e: BASE_LR * (1 + math.cos(math.pi * e / 5)) / 2),
    "cosine-eta-min": (CosineAnnealing(t_max=10, eta_min=0.01),
                       lambda e: 0.01 + (BASE_LR - 0.01) * (1 + math.cos(math.pi * e / 10)) / 2),
}


@pytest.mark.parametrize("schedule, form", SCHEDULES.values(), ids=SCHEDULES.keys())
def test_learning_rates_are_the_closed_forms(schedule, form):
    """learning_rates(base_lr, epochs): float64, one per epoch from 0, the closed form's values."""
    rates = schedule.learning_rates(BASE_LR, EPOCHS)
    assert isinstance(rates, np.ndarray) and rates.dtype == np.float64 and rates.shape == (EPOCHS,)
    np.testing.assert_allclose(rates, [form(e) for e in range(EPOCHS)], rtol=1e-14, atol=1e-17)
    # Each rate depends on its epoch only: a longer run starts with the same rates.
    np.testing.assert_array_equal(schedule.learning_rates(BASE_LR, 5), rates[:5])
    assert schedule.learning_rates(BASE_LR, 0).shape == (0,)
    assert isinstance(schedule, Schedule)


def test_specific_values():
    """A few values worked out by hand."""
    assert list(StepDecay(2, gamma=0.5).learning_rates(1.0, 5)) == [1.0, 1.0, 0.5, 0.5, 0.25]
    assert list(ExponentialDecay(0.5).learning_rates(2.0, 4)) == [2.0, 1.0, 0.5, 0.25]
    cosine = CosineAnnealing(4, eta_min=0.1).learning_rates(1.1, 9)
    # Half a cosine from 1.1 down to 0.1 over 4 epochs, then back up over the next 4 (as torch).
    np.testing.assert_allclose(cosine, [1.1, 0.6 + 0.5 * math.sqrt(0.5), 0.6, 0.6 - 0.5 * math.sqrt(0.5), 0.1,
                                        0.6 - 0.5 * math.sqrt(0.5), 0.6, 0.6 + 0.5 * math.sqrt(0.5), 1.1],
                               rtol=1e-15)


def problem():
    rng = np.random.default_rng(3)
    return rng.standard_normal((10, 3)), rng.standard_normal((10, 2))


def start_net(net_class):
    return make_net(net_class, [3, 5, 2], seed=2, activation="tanh", loss="mse")


@pytest.mark.parametrize("batching", [dict(), dict(batch_size=4, shuffle=False)], ids=["full-batch", "mini-batch"])
@pytest.mark.parametrize("name", ["step-gamma", "exponential", "cosine-eta-min"])
def test_fit_with_a_schedule_is_per_epoch_plain_sgd(net_class, name, batching):
    """For plain SGD (no state), a scheduled fit equals one fit(epochs=1, lr=rate) per epoch."""
    schedule, form = SCHEDULES[name]
    x, y = problem()
    scheduled = start_net(net_class)
    history = scheduled.fit(x, y, epochs=8, lr=BASE_LR, schedule=schedule, **batching)
    manual = start_net(net_class)
    losses = [manual.fit(x, y, epochs=1, lr=form(e), **batching).loss for e in range(8)]
    np.testing.assert_allclose(history.loss, np.concatenate(losses), rtol=1e-14)
    np.testing.assert_allclose(params_of(scheduled), params_of(manual), rtol=1e-14, atol=1e-16)
    # The schedule matters: a constant lr ends elsewhere.
    constant = start_net(net_class)
    constant.fit(x, y, epochs=8, lr=BASE_LR, **batching)
    assert rel_error(params_of(constant), params_of(scheduled)) > 1e-4
    # The optimizer keeps its base lr.
    assert scheduled.optimizer.lr == BASE_LR


def test_schedule_scales_the_optimizers_lr_and_keeps_momentum(net_class):
    """With momentum, a scheduled fit is fit(epochs=1) per epoch continuing the same optimizer at
    that epoch's lr (the state carries over) -- not fresh plain-SGD calls."""
    schedule, form = SCHEDULES["step-size-1"]
    x, y = problem()
    scheduled = start_net(net_class)
    history = scheduled.fit(x, y, epochs=6, optimizer=nnfast.SGD(BASE_LR, momentum=0.9), schedule=schedule,
                            batch_size=4, shuffle=False)
    manual = start_net(net_class)
    optimizer = nnfast.SGD(BASE_LR, momentum=0.9)
    losses = []
    for epoch in range(6):
        optimizer.lr = form(epoch)
        losses.append(manual.fit(x, y, epochs=1, optimizer=optimizer, batch_size=4, shuffle=False).loss)
    np.testing.assert_allclose(history.loss, np.concatenate(losses), rtol=1e-14)
    np.testing.assert_allclose(params_of(scheduled), params_of(manual), rtol=1e-14, atol=1e-16)
    stateless = start_net(net_class)
    for epoch in range(6):
        stateless.fit(x, y, epochs=1, lr=form(epoch), batch_size=4, shuffle=False)
    assert rel_error(params_of(stateless), params_of(scheduled)) > 1e-4


def test_every_fit_call_counts_epochs_from_zero(net_class):
    """Two scheduled fits of 3 epochs restart the schedule: rates r0 r1 r2 r0 r1 r2."""
    schedule, form = SCHEDULES["exponential"]
    x, y = problem()
    twice = start_net(net_class)
    for _ in range(2):
        twice.fit(x, y, epochs=3, lr=BASE_LR, schedule=schedule)
    manual = start_net(net_class)
    for epoch in [0, 1, 2, 0, 1, 2]:
        manual.fit(x, y, epochs=1, lr=form(epoch))
    np.testing.assert_allclose(params_of(twice), params_of(manual), rtol=1e-14, atol=1e-16)


def test_schedule_with_zero_epochs(net_class):
    x, y = problem()
    net = start_net(net_class)
    saved = params_of(net)
    assert net.fit(x, y, epochs=0, lr=BASE_LR, schedule=CosineAnnealing(3)).epochs == 0
    np.testing.assert_array_equal(params_of(net), saved)


BAD_SCHEDULES = [
    ("step-size-zero", lambda: StepDecay(0), ValueError, r"^step_size must be in \[1, inf\), got 0"),
    ("step-size-negative", lambda: StepDecay(-2), ValueError, r"^step_size must be"),
    ("step-size-float", lambda: StepDecay(2.5), TypeError, r"^step_size must be an int, got 2.5"),
    ("step-size-bool", lambda: StepDecay(True), TypeError, r"^step_size must be an int"),
    ("step-gamma-zero", lambda: StepDecay(2, gamma=0), ValueError, r"^gamma must be in \(0, 1\]"),
    ("step-gamma-above-one", lambda: StepDecay(2, gamma=1.5), ValueError, r"^gamma must be in \(0, 1\], got 1.5"),
    ("step-gamma-negative", lambda: StepDecay(2, gamma=-0.5), ValueError, r"^gamma must be"),
    ("step-gamma-nan", lambda: StepDecay(2, gamma=float("nan")), ValueError, r"^gamma must be"),
    ("step-gamma-str", lambda: StepDecay(2, gamma="0.5"), TypeError, r"^gamma must be a number"),
    ("exponential-gamma-zero", lambda: ExponentialDecay(0.0), ValueError, r"^gamma must be in \(0, 1\]"),
    ("exponential-gamma-above-one", lambda: ExponentialDecay(1.01), ValueError, r"^gamma must be"),
    ("exponential-gamma-none", lambda: ExponentialDecay(None), TypeError, r"^gamma must be a number"),
    ("cosine-t-max-zero", lambda: CosineAnnealing(0), ValueError, r"^t_max must be in \[1, inf\), got 0"),
    ("cosine-t-max-float", lambda: CosineAnnealing(5.0), TypeError, r"^t_max must be an int, got 5.0"),
    ("cosine-eta-min-negative", lambda: CosineAnnealing(5, eta_min=-0.1), ValueError,
     r"^eta_min must be in \[0, inf\)"),
    ("cosine-eta-min-inf", lambda: CosineAnnealing(5, eta_min=float("inf")), ValueError, r"^eta_min must be"),
    ("cosine-eta-min-str", lambda: CosineAnnealing(5, eta_min="0"), TypeError, r"^eta_min must be a number"),
]


@pytest.mark.parametrize("call, exception, message", [case[1:] for case in BAD_SCHEDULES],
                         ids=[case[0] for case in BAD_SCHEDULES])
def test_bad_schedule_arguments_are_rejected(call, exception, message):
    with pytest.raises(exception, match=message):
        call()


@pytest.mark.parametrize("schedule", ["cosine", 0.5, CosineAnnealing, lambda epoch: 0.1],
                         ids=["str", "float", "class", "function"])
def test_fit_rejects_what_is_not_a_schedule(net_class, schedule):
    x, y = problem()
    net = start_net(net_class)
    saved = params_of(net)
    with pytest.raises(TypeError, match=r"^schedule must be"):
        net.fit(x, y, epochs=2, lr=0.1, schedule=schedule)
    np.testing.assert_array_equal(params_of(net), saved)


def test_integer_arguments_of_any_integer_type():
    assert StepDecay(np.int64(3)).step_size == 3 and CosineAnnealing(np.int32(4)).t_max == 4
