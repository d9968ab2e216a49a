"""fit's progress display (``verbose``): what the lines say, where they go, that they end, and that they
change no number.

The live line is tested on a stand-in terminal (a StringIO whose ``isatty`` is true), once drawn by tqdm
and once by the plain fallback, which the tests force by hiding tqdm from ``import``.
"""
import copy
import io
import os
import re
import signal
import sys

import numpy as np
import pytest

import nnfast
from nnfast import _progress
from nnfast.schedules import Schedule
from tests.conftest import make_net, params_of, random_data

LAYERS = [3, 6, 2]
# A line of verbose=2: the epoch count, the numbers, the times.
LINE = re.compile(r"^epoch (\d+)/(\d+)  (.*)  elapsed (\d+\.\d\ds)  (ETA \d+\.\d\ds|stopped early)$")


class FakeTerminal(io.StringIO):
    """A stream that says it is a terminal, and keeps what is written to it."""

    def isatty(self):
        return True


def hide_tqdm(monkeypatch):
    """Make ``import tqdm`` fail, as where tqdm is not installed (the submodule too: a module
    already imported would be found in sys.modules whatever its package)."""
    for name in ("tqdm", "tqdm.autonotebook", "tqdm.auto"):
        monkeypatch.setitem(sys.modules, name, None)


@pytest.fixture(params=["tqdm", "plain"])
def live_display(request, monkeypatch):
    """The live line's two implementations in turn: tqdm's bar, and the plain line where tqdm is
    missing (forced by making ``import tqdm`` fail)."""
    if request.param == "tqdm":
        pytest.importorskip("tqdm.autonotebook", reason="tqdm is not installed (pip install nnfast[progress])")
    else:
        hide_tqdm(monkeypatch)
    return request.param


def problem(loss="mse", n=20, seed=0):
    rng = np.random.default_rng(seed)
    x, y = random_data(rng, n, LAYERS, loss)
    x_val, y_val = random_data(rng, 8, LAYERS, loss)
    return x, y, x_val, y_val


def expected_fields(history, epoch):
    """The numbers of ``epoch`` as the progress shows them: six digits, as ``repr(History)``."""
    text = f"loss {history.epoch_loss[epoch]:.6g}"
    if history.val_loss is not None:
        text += f"  val_loss {history.val_loss[epoch]:.6g}"
    if history.val_accuracy is not None:
        text += f"  val_accuracy {history.val_accuracy[epoch]:.4f}"
    return text


def fit_on_terminal(monkeypatch, fit):
    """Run ``fit()`` with a stand-in terminal as ``sys.stdout``; return its result (or exception)
    and the text written."""
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    try:
        result = fit()
    except BaseException as error:  # noqa: BLE001 - KeyboardInterrupt (TrainingInterrupted) included
        result = error
    finally:
        monkeypatch.undo()
    return result, terminal.getvalue()


def final_state(text):
    """The live line as it was left: what follows the last carriage return."""
    assert text.endswith("\n") and text.count("\n") == 1, repr(text[-300:])
    return text[:-1].rsplit("\r", 1)[-1].rstrip()


# -- the verbose argument -----------------------------------------------------


@pytest.mark.parametrize("verbose, expected", [(False, 0), (True, 1), (0, 0), (1, 1), (2, 2), (np.int64(2), 2),
                                               (np.bool_(True), 1)])
def test_verbose_takes_bools_and_0_1_2(verbose, expected):
    assert _progress.check_verbose(verbose) == expected
    assert type(_progress.check_verbose(verbose)) is int


@pytest.mark.parametrize("verbose, error", [(3, ValueError), (-1, ValueError), (np.int8(5), ValueError),
                                            (1.0, TypeError), ("2", TypeError), (None, TypeError),
                                            ([1], TypeError)])
def test_bad_verbose_values_raise_naming_verbose(net_class, verbose, error):
    x, y, _, _ = problem()
    with pytest.raises(error, match=r"^verbose must be False/0 \(silent\), True/1 \(a live line\) or 2 "
                                    r"\(a line per epoch\), got " + re.escape(repr(verbose))):
        make_net(net_class, LAYERS).fit(x, y, epochs=1, lr=0.01, verbose=verbose)


# -- one line per epoch ---------------------------------------------------------


@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
@pytest.mark.parametrize("validation", [True, False], ids=["validation", "no-validation"])
def test_verbose_2_prints_one_line_per_epoch_with_the_history_numbers(net_class, loss, validation, capsys):
    x, y, x_val, y_val = problem(loss)
    history = make_net(net_class, LAYERS, loss=loss).fit(
        x, y, epochs=4, lr=0.01, batch_size=7, seed=1, validation_data=(x_val, y_val) if validation else None,
        verbose=2)
    out, err = capsys.readouterr()
    assert err == ""
    lines = out.split("\n")
    assert lines[-1] == "" and len(lines) == 5  # four lines, each ended
    for epoch, line in enumerate(lines[:-1]):
        match = LINE.match(line)
        assert match, line
        assert match.group(1, 2) == (str(epoch + 1), "4")
        assert match.group(3) == expected_fields(history, epoch)
        assert ("val_loss" in line) == validation
        assert ("val_accuracy" in line) == (validation and loss == "cross_entropy")
    assert lines[-2].endswith("ETA 0.00s")


def test_verbose_2_on_a_terminal_still_prints_lines(net_class, monkeypatch):
    x, y, x_val, y_val = problem()
    history, text = fit_on_terminal(monkeypatch, lambda: make_net(net_class, LAYERS).fit(
        x, y, epochs=3, lr=0.01, validation_data=(x_val, y_val), verbose=2))
    assert "\r" not in text
    lines = text.splitlines()
    assert [LINE.match(line).group(3) for line in lines] == [expected_fields(history, e) for e in range(3)]


def test_verbose_true_on_a_file_prints_the_lines_of_verbose_2(net_class, capsys):
    """Where a line cannot be rewritten in place (here pytest's captured stdout), every redrawn version
    would stay in the text; verbose=True prints a line per epoch there instead."""
    x, y, x_val, y_val = problem("cross_entropy")
    texts = []
    for verbose in (True, 2):
        make_net(net_class, LAYERS, loss="cross_entropy").fit(x, y, epochs=6, lr=0.01, batch_size=5, seed=2,
                                                                validation_data=(x_val, y_val), verbose=verbose)
        out = capsys.readouterr().out
        assert "\r" not in out
        texts.append([LINE.match(line).group(1, 2, 3) for line in out.splitlines()])
    assert texts[0] == texts[1] and len(texts[0]) == 6


def test_verbose_output_goes_to_stdout_as_it_is_when_the_fit_starts(net_class, capsys, monkeypatch):
    x, y, _, _ = problem()
    net = make_net(net_class, LAYERS)
    net.fit(x, y, epochs=2, lr=0.01, verbose=True)
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 2 and err == ""
    elsewhere = io.StringIO()
    monkeypatch.setattr(sys, "stdout", elsewhere)
    net.fit(x, y, epochs=3, lr=0.01, verbose=2)
    monkeypatch.undo()
    assert len(elsewhere.getvalue().splitlines()) == 3
    assert capsys.readouterr() == ("", "")


def test_no_stdout_shows_nothing_and_fits(net_class, monkeypatch):
    """Under pythonw there is no sys.stdout: the fit runs, silently."""
    x, y, _, _ = problem()
    monkeypatch.setattr(sys, "stdout", None)
    history = make_net(net_class, LAYERS).fit(x, y, epochs=2, lr=0.01, verbose=True)
    assert history.epochs == 2


def test_silent_by_default(net_class, capsys):
    x, y, x_val, y_val = problem()
    make_net(net_class, LAYERS).fit(x, y, epochs=3, lr=0.01, validation_data=(x_val, y_val))
    make_net(net_class, LAYERS).fit(x, y, epochs=3, lr=0.01, verbose=0)
    assert capsys.readouterr() == ("", "")


# -- the live line ----------------------------------------------------------------


@pytest.mark.parametrize("loss, validation", [("mse", False), ("mse", True), ("cross_entropy", True)])
def test_live_line_is_rewritten_in_place_and_left_at_the_last_epoch(net_class, live_display, loss, validation,
                                                                   monkeypatch, capsys):
    x, y, x_val, y_val = problem(loss)
    history, text = fit_on_terminal(monkeypatch, lambda: make_net(net_class, LAYERS, loss=loss).fit(
        x, y, epochs=5, lr=0.01, batch_size=6, seed=3, validation_data=(x_val, y_val) if validation else None,
        verbose=True))
    assert isinstance(history, nnfast.History)
    assert text.startswith("\r")
    last = final_state(text)
    fields = expected_fields(history, 4)
    if live_display == "tqdm":
        pattern = r"epoch 5/5 \|.{10}\| " + re.escape(fields) + r"  elapsed \d+\.\d\ds  ETA 0\.00s"
        assert re.fullmatch(pattern, last), last
    else:
        assert LINE.match(last).group(1, 2, 3) == ("5", "5", fields)
    assert ("val_accuracy" in text) == (loss == "cross_entropy")
    assert capsys.readouterr() == ("", "")  # nothing on stderr, where tqdm writes by default


def test_live_line_shows_each_chunk_of_epochs_as_it_finishes(net_class, live_display, monkeypatch):
    """With no redraw throttling and one epoch per chunk, every epoch's state is drawn in turn."""
    monkeypatch.setattr(_progress, "REDRAW_INTERVAL", 0.0)
    monkeypatch.setattr(_progress.Progress, "epochs_to_run", lambda self, run: 1)
    x, y, x_val, y_val = problem()
    history, text = fit_on_terminal(monkeypatch, lambda: make_net(net_class, LAYERS).fit(
        x, y, epochs=5, lr=0.01, validation_data=(x_val, y_val), verbose=True))
    states = [state.rstrip() for state in text[:-1].split("\r")[1:]]
    shown = []
    for state in states:
        epoch = int(re.match(r"epoch (\d+)/5 ", state).group(1))
        if epoch:  # tqdm draws an empty bar first
            assert expected_fields(history, epoch - 1) in state, state
        if not shown or shown[-1] != epoch:  # tqdm draws the last state again as it closes
            shown.append(epoch)
    assert shown == ([0] if live_display == "tqdm" else []) + [1, 2, 3, 4, 5]


def test_live_line_fallback_does_not_touch_tqdm(net_class, monkeypatch):
    """With tqdm hidden, the plain line is drawn: no bar."""
    hide_tqdm(monkeypatch)
    x, y, _, _ = problem()
    _, text = fit_on_terminal(monkeypatch, lambda: make_net(net_class, LAYERS).fit(x, y, epochs=3, lr=0.01,
                                                                                    verbose=True))
    assert "|" not in text and LINE.match(final_state(text)).group(1, 2) == ("3", "3")


def test_live_line_is_closed_on_early_stopping_and_says_so(net_class, live_display, monkeypatch):
    x, y, x_val, y_val = problem()
    history, text = fit_on_terminal(monkeypatch, lambda: make_net(net_class, LAYERS).fit(
        x, y, epochs=50, lr=0.01, validation_data=(x_val, y_val), early_stopping=True, patience=2, min_delta=1e9,
        verbose=True))
    assert history.epochs == 3 and history.stopped_early
    last = final_state(text)
    assert last.startswith("epoch 3/50 ") and expected_fields(history, 2) in last
    assert last.endswith("  stopped early") and "ETA" not in last


@pytest.mark.parametrize("verbose", [1, 2])
def test_a_stop_from_the_callback_is_shown_as_stopped_early(net_class, live_display, verbose, monkeypatch):
    """The callback stops the fit after the display showed the epoch with an ETA: the live line is
    restated; a line per epoch, already printed, is not."""
    x, y, _, _ = problem()
    history, text = fit_on_terminal(monkeypatch, lambda: make_net(net_class, LAYERS).fit(
        x, y, epochs=9, lr=0.01, verbose=verbose, callback=lambda epoch, history: epoch == 3))
    assert history.epochs == 4 and history.stopped_early
    if verbose == 1:
        last = final_state(text)
        assert last.startswith("epoch 4/9 ") and expected_fields(history, 3) in last
        assert last.endswith("  stopped early")
    else:
        lines = text.splitlines()
        assert len(lines) == 4 and all(LINE.match(line).group(5).startswith("ETA ") for line in lines)


def test_line_per_epoch_says_stopped_early_on_its_last_line(net_class, capsys):
    x, y, x_val, y_val = problem()
    make_net(net_class, LAYERS).fit(x, y, epochs=50, lr=0.01, validation_data=(x_val, y_val), early_stopping=True,
                                    patience=2, min_delta=1e9, verbose=2)
    ends = [LINE.match(line).group(5) for line in capsys.readouterr().out.splitlines()]
    assert len(ends) == 3 and ends[0].startswith("ETA ") and ends[1].startswith("ETA ")
    assert ends[2] == "stopped early"


class ExplodingRate(Schedule):
    """Sane rates for three epochs, then one that makes the parameters infinite."""

    def learning_rates(self, base_lr, epochs):
        rates = np.full(epochs, float(base_lr))
        rates[3:] = 1e300
        return rates


def raise_in_callback(error):
    def callback(epoch, history):
        if epoch == 2:
            raise error

    return callback


FAILURES = {
    "callback-error": (dict(callback=raise_in_callback(ValueError("from the callback"))), ValueError),
    "ctrl-c": (dict(callback=raise_in_callback(KeyboardInterrupt("ctrl-c"))), nnfast.TrainingInterrupted),
    "divergence": (dict(schedule=ExplodingRate()), nnfast.DivergenceError),
}


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the reference's NumPy overflows, as it should
@pytest.mark.parametrize("failure", FAILURES)
@pytest.mark.parametrize("verbose", [1, 2])
def test_display_is_closed_when_the_fit_raises(net_class, live_display, failure, verbose, monkeypatch):
    """Some epochs finish (three, or with the divergence, three or four), then the fit raises: the
    display shows them and ends its line."""
    kwargs, error_type = FAILURES[failure]
    x, y, _, _ = problem()
    net = make_net(net_class, LAYERS, seed=4)
    twin = copy.deepcopy(net)
    error, text = fit_on_terminal(monkeypatch, lambda: net.fit(x, y, epochs=8, lr=0.01, verbose=verbose, **kwargs))
    assert isinstance(error, error_type), error
    done = error.history.epochs if failure == "divergence" else 3
    assert done in (3, 4)
    # The numbers of the epochs that finished, from a fit that stops there.
    history = twin.fit(x, y, epochs=done, lr=0.01)
    if verbose == 2:
        lines = text.split("\n")
        assert lines[-1] == ""
        assert [LINE.match(line).group(1, 3) for line in lines[:-1]] == [
            (str(epoch + 1), expected_fields(history, epoch)) for epoch in range(done)]
    else:
        last = final_state(text)
        assert last.startswith(f"epoch {done}/8 ") and expected_fields(history, done - 1) in last


SIGINT_CHILD = """
import io, json, sys, time
if {hide_tqdm}:
    sys.modules["tqdm"] = sys.modules["tqdm.autonotebook"] = None
import numpy as np
import nnfast


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


rng = np.random.default_rng(0)
x, y = rng.standard_normal((64, 32)), rng.standard_normal((64, 4))
net = nnfast.Net([32, 64, 4], seed=1)
start = time.monotonic()
nnfast.Net([32, 64, 4], seed=1).fit(x, y, epochs=2000, lr=1e-4)
unit = (time.monotonic() - start) / 2000   # one step, one epoch
terminal, stdout = FakeTerminal(), sys.stdout
print("started", flush=True)
sys.stdout = terminal
try:
    net.fit(x, y, epochs=5 * 10**6, lr=1e-4, verbose=True)   # a minute or more
    raise SystemExit("the fit was not interrupted")
except nnfast.TrainingInterrupted as error:
    caught = time.monotonic()
    history = error.history
finally:
    sys.stdout = stdout
text = terminal.getvalue()
print(json.dumps(dict(caught=caught, delivered=delivered(), unit=unit, epochs=history.epochs,
                      fields=f"loss {{history.epoch_loss[-1]:.6g}}", text=text[-2000:], newlines=text.count("\\n"))))
"""


@pytest.mark.skipif(not hasattr(signal, "SIGINT") or os.name != "posix",
                    reason="sends SIGINT to a child process (POSIX)")
@pytest.mark.parametrize("display", ["tqdm", "plain"])
def test_ctrl_c_ends_the_live_line_at_the_last_epoch_and_stops_in_time(display):
    """A real SIGINT in the middle of a chunk of epochs: the fit still stops within Ctrl-C's bound,
    and the line, ended, shows the last whole epoch."""
    if display == "tqdm":
        pytest.importorskip("tqdm.autonotebook", reason="tqdm is not installed (pip install nnfast[progress])")
    from tests.test_interrupts import assert_stops_in_time

    result = assert_stops_in_time(SIGINT_CHILD.format(hide_tqdm=display == "plain"), delay=0.5)
    assert result["epochs"] > 0 and result["newlines"] == 1
    last = final_state(result["text"])
    assert last.startswith(f"epoch {result['epochs']}/5000000 ") and result["fields"] in last


# -- the numbers ------------------------------------------------------------------

RUNS = {
    "shuffled-batches-validation": dict(loss="cross_entropy", kwargs=dict(
        epochs=40, optimizer=lambda: nnfast.Adam(0.01), batch_size=6, seed=1, validation=True)),
    "early-stopping": dict(loss="mse", kwargs=dict(
        epochs=200, optimizer=lambda: nnfast.SGD(0.05, momentum=0.9), validation_fraction=0.3, seed=5,
        early_stopping=True, patience=3, min_delta=1e-3)),
}


def fit_run(net, name, **extra):
    loss, kwargs = RUNS[name]["loss"], dict(RUNS[name]["kwargs"])
    x, y, x_val, y_val = problem(loss)
    if kwargs.pop("validation", False):
        kwargs["validation_data"] = (x_val, y_val)
    kwargs["optimizer"] = kwargs["optimizer"]()
    return net.fit(x, y, **kwargs, **extra)


def assert_same_fit(net, history, twin, expected):
    for field in ["loss", "epoch_loss", "val_loss", "val_accuracy"]:
        got, want = getattr(history, field), getattr(expected, field)
        assert (got is None) == (want is None), field
        if want is not None:
            np.testing.assert_array_equal(got, want, err_msg=field)
    for field in ["epochs", "steps_per_epoch", "best_epoch", "stopped_early"]:
        assert getattr(history, field) == getattr(expected, field), field
    np.testing.assert_array_equal(params_of(net), params_of(twin))
    assert net.optimizer.step_count == twin.optimizer.step_count
    np.testing.assert_array_equal(net.optimizer.buffers, twin.optimizer.buffers)


@pytest.mark.parametrize("name", RUNS)
@pytest.mark.parametrize("verbose", [1, 2])
@pytest.mark.parametrize("where", ["file", "terminal"])
def test_verbose_changes_no_number(net_class, live_display, name, verbose, where, monkeypatch, capsys):
    loss = RUNS[name]["loss"]
    silent = make_net(net_class, LAYERS, seed=6, loss=loss, activation="tanh")
    shown = copy.deepcopy(silent)
    expected = fit_run(silent, name, verbose=0)
    if where == "terminal":
        history, text = fit_on_terminal(monkeypatch, lambda: fit_run(shown, name, verbose=verbose))
    else:
        history, text = fit_run(shown, name, verbose=verbose), capsys.readouterr().out
    assert f"epoch {history.epochs}/" in text
    assert_same_fit(shown, history, silent, expected)


@pytest.mark.parametrize("name", RUNS)
@pytest.mark.parametrize("chunks", [[1], [3, 1, 7, 2], [1000]], ids=["1", "3-1-7-2", "all"])
def test_any_chunking_of_the_epochs_gives_the_same_fit(net_class, name, chunks, monkeypatch, capsys):
    """The progress picks chunk sizes from the clock; the numbers must not depend on them. Here the
    chunks come from a fixed list, so this test does not depend on the clock."""
    sizes = iter(chunks * 1000)
    monkeypatch.setattr(_progress.Progress, "epochs_to_run", lambda self, run: next(sizes))
    calls = []
    original = net_class._run_epochs

    def counting(self, x, y, x_val, y_val, run, stop):
        calls.append((run.epoch, stop))
        return original(self, x, y, x_val, y_val, run, stop)

    monkeypatch.setattr(net_class, "_run_epochs", counting)
    silent = make_net(net_class, LAYERS, seed=7, loss=RUNS[name]["loss"])
    shown = copy.deepcopy(silent)
    expected = fit_run(silent, name)
    assert len(calls) == 1  # without verbose, the whole fit in one call
    calls.clear()
    history = fit_run(shown, name, verbose=2)
    assert_same_fit(shown, history, silent, expected)
    starts = [start for start, _ in calls]
    assert starts[0] == 0 and all(stop == start for (_, stop), start in zip(calls, starts[1:]))
    want = [min(size, RUNS[name]["kwargs"]["epochs"] - start) for size, start in zip(chunks * 1000, starts)]
    assert [stop - start for start, stop in calls] == want
    assert len(capsys.readouterr().out.splitlines()) == history.epochs


def test_a_callback_still_sees_every_epoch_with_verbose(net_class, capsys):
    x, y, _, _ = problem()
    seen = []
    make_net(net_class, LAYERS).fit(x, y, epochs=30, lr=0.01, verbose=True,
                                    callback=lambda epoch, history: seen.append((epoch, history.epochs)))
    assert seen == [(epoch, epoch + 1) for epoch in range(30)]
    assert len(capsys.readouterr().out.splitlines()) == 30


# -- the pieces ---------------------------------------------------------------------


@pytest.mark.parametrize("elapsed, done, remaining, expected", [
    (0.0, 0, 10, 1),        # nothing timed yet: one epoch
    (0.01, 10, 1000, 50),   # 1 ms epochs: 0.05 s worth
    (0.01, 10, 20, 20),     # but no more than are left
    (3.0, 2, 10, 1),        # slow epochs: one at a time
    (1e-9, 1, 5, 5),
])
def test_epochs_per_look(elapsed, done, remaining, expected):
    assert _progress.epochs_per_look(elapsed, done, remaining) == expected


@pytest.mark.parametrize("seconds, text", [(0.0, "0.00s"), (4.214, "4.21s"), (59.994, "59.99s"), (60.0, "1m00s"),
                                           (725.9, "12m05s"), (3600.0, "1h00m"), (10920.0, "3h02m")])
def test_format_duration(seconds, text):
    assert _progress.format_duration(seconds) == text


def test_is_interactive(tmp_path):
    class JupyterStream(io.StringIO):
        pass

    JupyterStream.__module__ = "ipykernel.iostream"  # the class of sys.stdout in a Jupyter kernel
    closed = io.StringIO()
    closed.close()
    with open(tmp_path / "log.txt", "w") as file:
        assert not _progress.is_interactive(file)
    assert _progress.is_interactive(FakeTerminal())
    assert _progress.is_interactive(JupyterStream())
    assert not _progress.is_interactive(io.StringIO())
    assert not _progress.is_interactive(closed)
    assert not _progress.is_interactive(object())


def test_import_tqdm_picks_the_terminal_bar_outside_jupyter_and_none_without_tqdm(monkeypatch):
    tqdm_std = pytest.importorskip("tqdm.std", reason="tqdm is not installed (pip install nnfast[progress])")
    assert _progress.import_tqdm() is tqdm_std.tqdm
    hide_tqdm(monkeypatch)
    assert _progress.import_tqdm() is None
