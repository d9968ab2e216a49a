"""``History.to_dict``, ``to_frame`` and ``plot``: the record of a fit as data and as a picture."""
import json
import struct
import subprocess
import sys

import numpy as np
import pytest

import nnfast


def fitted_history(validation=True, early_stopping=False):
    x, labels = nnfast.examples.spirals(60, seed=0)
    net = nnfast.Net([2, 16, 2], loss="cross_entropy", seed=0)
    extra = dict(validation_data=nnfast.examples.spirals(30, seed=1)) if validation else {}
    return net.fit(x, labels, epochs=12, batch_size=16, optimizer=nnfast.Adam(1e-2), seed=0,
                   early_stopping=early_stopping, patience=3, **extra)


def test_to_dict_is_json_and_holds_every_record():
    history = fitted_history(early_stopping=True)
    record = json.loads(json.dumps(history.to_dict()))
    np.testing.assert_array_equal(record["loss"], history.loss)
    np.testing.assert_array_equal(record["epoch_loss"], history.epoch_loss)
    np.testing.assert_array_equal(record["val_loss"], history.val_loss)
    np.testing.assert_array_equal(record["val_accuracy"], history.val_accuracy)
    assert (record["epochs"], record["steps_per_epoch"], record["best_epoch"], record["stopped_early"]) == (
        history.epochs, history.steps_per_epoch, history.best_epoch, history.stopped_early)
    assert fitted_history(validation=False).to_dict()["val_loss"] is None


def test_to_frame_has_one_row_per_epoch():
    pandas = pytest.importorskip("pandas")
    history = fitted_history()
    frame = history.to_frame()
    assert isinstance(frame, pandas.DataFrame)
    assert list(frame.columns) == ["loss", "penalty", "val_loss", "val_accuracy"]
    assert list(frame.index) == list(range(1, 13)) and frame.index.name == "epoch"
    np.testing.assert_array_equal(frame["val_loss"], history.val_loss)
    assert list(fitted_history(validation=False).to_frame().columns) == ["loss", "penalty"]


def png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", "not a PNG file"
    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize("validation", [True, False])
def test_plot_renders_a_png_of_the_expected_size(validation, tmp_path):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    history = fitted_history(validation=validation, early_stopping=validation)
    ax = history.plot(log=True)
    assert ax.get_xlabel() == "epoch" and ax.get_ylabel() == "loss (log scale)" and ax.get_yscale() == "log"
    axes = ax.figure.axes
    assert len(axes) == (2 if validation else 1)  # the accuracy's own axis
    labels = axes[-1].get_legend().get_texts()
    expected = ["training loss, per step", "training loss, per epoch"] + (
        ["validation loss", "best epoch", "validation accuracy"] if validation else [])
    assert [text.get_text() for text in labels] == expected
    path = tmp_path / "loss.png"
    ax.figure.savefig(path, dpi=100)
    assert png_size(path) == (640, 440)
    matplotlib.pyplot.close(ax.figure)


def test_plot_draws_on_a_given_axes():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    figure, given = matplotlib.pyplot.subplots()
    assert fitted_history(validation=False).plot(given) is given
    assert len(given.lines) == 2
    matplotlib.pyplot.close(figure)


@pytest.mark.parametrize("module, call", [("matplotlib", "plot()"), ("pandas", "to_frame()")])
def test_without_the_extra_the_error_says_what_to_install(module, call, tmp_path):
    code = (f"import sys; sys.modules[{module!r}] = None\n"
            "import nnfast\n"
            "history = nnfast.History([1.0], 1, 1, epoch_loss=[1.0])\n"
            "try:\n"
            f"    history.{call}\n"
            "except ImportError as error:\n"
            "    print(error)\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert "pip install nnfast[plot]" in result.stdout
