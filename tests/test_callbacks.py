"""fit's callback and verbose output: called once per epoch, can stop training, change no number."""
import copy
import re

import numpy as np
import pytest

import nnfast
from nnfast.schedules import StepDecay
from tests.conftest import make_net, params_of, random_data

LAYERS = [3, 6, 2]


def problem(loss="mse", n=20, seed=0):
    rng = np.random.default_rng(seed)
    x, y = random_data(rng, n, LAYERS, loss)
    x_val, y_val = random_data(rng, 8, LAYERS, loss)
    return x, y, x_val, y_val


def test_callback_is_called_once_per_epoch_with_the_history_so_far(net_class):
    x, y, x_val, y_val = problem()
    net = make_net(net_class, LAYERS, seed=1)
    calls = []

    def callback(epoch, history):
        calls.append((epoch, history.epochs, history.loss.copy(), history.epoch_loss.copy(), history.val_loss.copy()))

    history = net.fit(x, y, epochs=5, lr=0.01, batch_size=6, seed=2, validation_data=(x_val, y_val),
                      callback=callback)
    assert [call[0] for call in calls] == list(range(5))
    for epoch, epochs, loss, epoch_loss, val_loss in calls:
        assert epochs == epoch + 1
        np.testing.assert_array_equal(loss, history.loss[: (epoch + 1) * history.steps_per_epoch])
        np.testing.assert_array_equal(epoch_loss, history.epoch_loss[: epoch + 1])
        np.testing.assert_array_equal(val_loss, history.val_loss[: epoch + 1])
    assert history.stopped_early is False


@pytest.mark.parametrize("stop_at", [0, 2])
@pytest.mark.parametrize("verdict", [True, 1, "stop", [0]], ids=["True", "one", "str", "list"])
def test_a_true_return_value_stops_training(net_class, stop_at, verdict):
    """Returning a true value after epoch k ends the fit there: k + 1 epochs, as fit(epochs=k + 1)."""
    x, y, _, _ = problem()
    net = make_net(net_class, LAYERS, seed=1)
    twin = copy.deepcopy(net)
    calls = []

    def callback(epoch, history):
        calls.append(epoch)
        return verdict if epoch == stop_at else None

    history = net.fit(x, y, epochs=6, optimizer=nnfast.Adam(0.01), batch_size=7, seed=3, callback=callback)
    assert calls == list(range(stop_at + 1))
    assert history.epochs == stop_at + 1 and history.stopped_early is True
    assert len(history.loss) == (stop_at + 1) * history.steps_per_epoch
    expected = twin.fit(x, y, epochs=stop_at + 1, optimizer=nnfast.Adam(0.01), batch_size=7, seed=3)
    np.testing.assert_array_equal(history.loss, expected.loss)
    np.testing.assert_array_equal(params_of(net), params_of(twin))
    assert net.optimizer.step_count == len(history.loss)


@pytest.mark.parametrize("verdict", [None, False, 0, "", []], ids=["None", "False", "zero", "empty-str", "empty-list"])
def test_a_false_return_value_continues(net_class, verdict):
    x, y, _, _ = problem()
    history = make_net(net_class, LAYERS).fit(x, y, epochs=3, lr=0.01, callback=lambda epoch, h: verdict)
    assert history.epochs == 3 and history.stopped_early is False


def test_an_exception_in_the_callback_propagates_and_keeps_the_epochs_done(net_class):
    x, y, _, _ = problem()
    net = make_net(net_class, LAYERS, seed=1)
    twin = copy.deepcopy(net)

    def callback(epoch, history):
        if epoch == 1:
            raise KeyboardInterrupt("stop here")

    with pytest.raises(KeyboardInterrupt, match="stop here"):
        net.fit(x, y, epochs=5, optimizer=nnfast.SGD(0.01, momentum=0.9), batch_size=6, shuffle=False,
                callback=callback)
    twin.fit(x, y, epochs=2, optimizer=nnfast.SGD(0.01, momentum=0.9), batch_size=6, shuffle=False)
    np.testing.assert_array_equal(params_of(net), params_of(twin))
    assert net.optimizer.step_count == twin.optimizer.step_count == 2 * 4
    np.testing.assert_array_equal(net.optimizer.buffers, twin.optimizer.buffers)


@pytest.mark.parametrize("callback", ["print", 3, [print]], ids=["str", "int", "list"])
def test_callback_must_be_callable(net_class, callback):
    x, y, _, _ = problem()
    with pytest.raises(TypeError, match=r"^callback must be callable"):
        make_net(net_class, LAYERS).fit(x, y, epochs=1, lr=0.01, callback=callback)


# Fits whose numbers must not depend on running epoch by epoch (with a callback or verbose).
RUNS = {
    "sgd-shuffled-batches": dict(loss="mse", kwargs=dict(epochs=4, lr=0.01, batch_size=6, seed=1)),
    "momentum-schedule": dict(loss="sse", kwargs=dict(
        epochs=5, optimizer=lambda: nnfast.SGD(0.002, momentum=0.9, nesterov=True), schedule=StepDecay(2, 0.5),
        batch_size=7, seed=2)),
    "adam-validation": dict(loss="cross_entropy", kwargs=dict(
        epochs=4, optimizer=lambda: nnfast.Adam(0.01), batch_size=5, seed=3, validation=True)),
    "adamw-early-stopping": dict(loss="binary_cross_entropy", kwargs=dict(
        epochs=30, optimizer=lambda: nnfast.AdamW(0.05, weight_decay=0.1), batch_size=4, seed=4, validation=True,
        early_stopping=True, patience=2)),
    "fraction-early-stopping": dict(loss="mse", kwargs=dict(
        epochs=30, optimizer=lambda: nnfast.Adam(0.05), validation_fraction=0.3, seed=5, early_stopping=True,
        patience=3, min_delta=1e-3)),
}


def run(net, loss, kwargs, **extra):
    x, y, x_val, y_val = problem(loss)
    kwargs = dict(kwargs)
    if kwargs.pop("validation", False):
        kwargs["validation_data"] = (x_val, y_val)
    if "optimizer" in kwargs:
        kwargs["optimizer"] = kwargs["optimizer"]()
    return net.fit(x, y, **kwargs, **extra)


def assert_same_history(got, expected):
    for name in ["loss", "epoch_loss", "val_loss", "val_accuracy"]:
        a, b = getattr(got, name), getattr(expected, name)
        assert (a is None) == (b is None), name
        if b is not None:
            np.testing.assert_array_equal(a, b, err_msg=name)
    for name in ["epochs", "steps_per_epoch", "best_epoch", "stopped_early"]:
        assert getattr(got, name) == getattr(expected, name), name


@pytest.mark.parametrize("name", RUNS)
def test_callback_and_verbose_change_no_number(net_class, name, capsys):
    """With a callback or verbose the loop runs epoch by epoch; the results are identical to the one-call loop."""
    loss, kwargs = RUNS[name]["loss"], RUNS[name]["kwargs"]
    plain = make_net(net_class, LAYERS, seed=6, loss=loss, activation="tanh")
    with_callback, with_verbose = copy.deepcopy(plain), copy.deepcopy(plain)
    expected = run(plain, loss, kwargs)
    assert_same_history(run(with_callback, loss, kwargs, callback=lambda epoch, history: None), expected)
    assert_same_history(run(with_verbose, loss, kwargs, verbose=True), expected)
    capsys.readouterr()
    for net in (with_callback, with_verbose):
        np.testing.assert_array_equal(params_of(net), params_of(plain))
        assert net.optimizer.step_count == plain.optimizer.step_count
        np.testing.assert_array_equal(net.optimizer.buffers, plain.optimizer.buffers)


@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_verbose_prints_one_line_per_epoch(net_class, loss, capsys):
    x, y, x_val, y_val = problem(loss)
    net = make_net(net_class, LAYERS, loss=loss)
    history = net.fit(x, y, epochs=3, lr=0.01, validation_data=(x_val, y_val), verbose=True)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    for epoch, line in enumerate(lines):
        assert line.startswith(f"epoch {epoch + 1}/3")
        numbers = dict(re.findall(r"(\w+) ([-\d.e+]+)", line))
        assert float(numbers["loss"]) == pytest.approx(history.epoch_loss[epoch], rel=1e-5)
        assert float(numbers["val_loss"]) == pytest.approx(history.val_loss[epoch], rel=1e-5)
        assert ("val_accuracy" in numbers) == (loss == "cross_entropy")
        if loss == "cross_entropy":
            assert float(numbers["val_accuracy"]) == pytest.approx(history.val_accuracy[epoch], abs=1e-4)


def test_verbose_prints_only_the_epochs_run(net_class, capsys):
    x, y, x_val, y_val = problem()
    net = make_net(net_class, LAYERS)
    history = net.fit(x, y, epochs=50, lr=0.01, validation_data=(x_val, y_val), early_stopping=True, patience=2,
                      min_delta=1e9, verbose=True)
    lines = capsys.readouterr().out.splitlines()
    assert history.epochs == 3 and len(lines) == 3 and lines[-1].startswith("epoch 3/50")
    net.fit(x, y, epochs=2, lr=0.01)
    assert capsys.readouterr().out == ""  # silent by default


@pytest.mark.parametrize("verbose", [1.0, "yes", None], ids=["float", "str", "None"])
def test_verbose_must_be_a_bool_or_an_int(net_class, verbose):
    x, y, _, _ = problem()
    with pytest.raises(TypeError, match=r"^verbose must be False/0"):
        make_net(net_class, LAYERS).fit(x, y, epochs=1, lr=0.01, verbose=verbose)
