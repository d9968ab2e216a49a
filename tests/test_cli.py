"""The ``nnfast`` command line, driven through subprocesses on files written to tmp_path.

Real data: scikit-learn's iris (a classification with string labels) and
diabetes (a regression) data sets, saved as CSV.
"""
import csv
import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest

import nnfast
from nnfast import io
from nnfast.cli._data import read_table

# The package under test, whichever it is (a source tree on PYTHONPATH or an install).
PACKAGE_ROOT = os.path.dirname(os.path.dirname(nnfast.__file__))


# Where the commands run unless a test says otherwise: not the repository root, where
# `python -m nnfast` would import the unbuilt source folder instead of the package under test.
NEUTRAL_DIRECTORY = tempfile.TemporaryDirectory(prefix="nnfast-cli-")


def run_cli(*args, cwd=None, check_status=None):
    """Run ``python -m nnfast *args``; return the CompletedProcess (text output)."""
    env = dict(os.environ, PYTHONPATH=PACKAGE_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run([sys.executable, "-m", "nnfast", *map(str, args)], capture_output=True, text=True,
                            env=env, cwd=NEUTRAL_DIRECTORY.name if cwd is None else cwd, timeout=120)
    if check_status is not None:
        assert result.returncode == check_status, (result.stdout, result.stderr)
    return result


def run_here(*args, cwd=None):
    """``nnfast.cli.main(args)`` in this process, for the error paths (a subprocess costs ~1 s).

    Returns an object with ``returncode``, ``stdout`` and ``stderr`` like
    ``run_cli``'s; the tests that matter run both ways.
    """
    import contextlib
    import io as text_io
    import types

    from nnfast.cli import main

    stdout, stderr = text_io.StringIO(), text_io.StringIO()
    previous = os.getcwd()
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                status = main([str(arg) for arg in args])
            except SystemExit as exit:  # argparse's usage errors
                status = exit.code
    finally:
        os.chdir(previous)
    return types.SimpleNamespace(returncode=status, stdout=stdout.getvalue(), stderr=stderr.getvalue())


def assert_one_line_error(result, path, fragment):
    """Exit status 1, one stderr line ``nnfast: error: <path>: ...fragment...``, no traceback."""
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"nnfast: error: {path}: "), lines[0]
    assert fragment in lines[0], lines[0]


def read_csv(path_or_text):
    text = path_or_text if "\n" in str(path_or_text) else open(path_or_text, newline="").read()
    rows = list(csv.reader(text.splitlines()))
    return rows[0], rows[1:]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    sklearn_datasets = pytest.importorskip("sklearn.datasets", reason="the real data sets come from scikit-learn")
    directory = tmp_path_factory.mktemp("cli")
    iris = sklearn_datasets.load_iris()
    with open(directory / "iris.csv", "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow([*iris.feature_names, "species"])
        for row, label in zip(iris.data, iris.target):
            writer.writerow([*map(repr, row.tolist()), iris.target_names[label]])
    diabetes = sklearn_datasets.load_diabetes(scaled=False)
    with open(directory / "diabetes.csv", "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow([*diabetes.feature_names, "progression"])
        writer.writerows([*map(repr, row.tolist()), repr(float(y))] for row, y in zip(diabetes.data, diabetes.target))
    return directory


@pytest.fixture(scope="module")
def iris_model(data_dir):
    """A model trained on iris.csv by ``nnfast train``, and the command's output."""
    path = data_dir / "iris.npz"
    result = run_cli("train", data_dir / "iris.csv", "--target", "species", "--layers", "16", "--epochs", "30",
                     "--seed", "3", "--out", path, check_status=0)
    return path, result


def iris_features(data_dir):
    table = read_table(str(data_dir / "iris.csv"))
    return np.array([table.columns[name].astype(float) for name in table.names[:4]]).T, table.columns["species"]


def test_train_reports_what_it_picked_and_did(iris_model):
    path, result = iris_model
    out = result.stdout
    assert "loss: cross_entropy (--loss auto: the target is not numeric; 3 classes)" in out
    assert "epoch 30/30" in out  # the progress of fit(verbose=True)
    assert "training: loss" in out and "validation: loss" in out and "accuracy" in out
    assert f"model saved to {path}" in out
    # 30 epochs of Adam on standardized iris separate the classes well; chance is 1/3.
    accuracy = float(out.split("validation: loss")[1].split("accuracy ")[1].split()[0])
    assert accuracy > 0.8


def test_the_model_file_is_a_net_file_with_the_scaling(iris_model, data_dir):
    path, _ = iris_model
    net = nnfast.load(path)
    assert isinstance(net, nnfast.Net) and net.layers == (4, 16, 3) and net.loss_name == "cross_entropy"
    _, metadata = io.load_with_metadata(path)
    assert metadata["classes"].tolist() == ["setosa", "versicolor", "virginica"]
    assert metadata["target"] == "species"
    x, _ = iris_features(data_dir)
    # Standardized on the training part (80% of the rows): close to the whole set's statistics.
    np.testing.assert_allclose(metadata["input_mean"], x.mean(axis=0), rtol=0.05)
    np.testing.assert_allclose(metadata["input_scale"], x.std(axis=0), rtol=0.1)


def test_predict_gives_the_loaded_nets_labels_with_the_scaling_applied(iris_model, data_dir, tmp_path):
    path, _ = iris_model
    run_cli("predict", path, data_dir / "iris.csv", "-o", tmp_path / "labels.csv", check_status=0)
    header, rows = read_csv(tmp_path / "labels.csv")
    net, metadata = io.load_with_metadata(path)
    x, species = iris_features(data_dir)
    expected = metadata["classes"][net.predict_classes((x - metadata["input_mean"]) / metadata["input_scale"])]
    assert header == ["species"]
    assert [row[0] for row in rows] == expected.tolist()
    assert np.mean(np.array(rows)[:, 0] == species) > 0.8
    # Without the scaling the same net predicts something else: the test can tell.
    assert not np.array_equal(net.predict_classes(x), net.predict_classes((x - metadata["input_mean"])
                                                                          / metadata["input_scale"]))


def test_predict_proba_rows_sum_to_one_and_match_the_net(iris_model, data_dir):
    path, _ = iris_model
    result = run_cli("predict", path, data_dir / "iris.csv", "--proba", check_status=0)
    header, rows = read_csv(result.stdout)
    assert header == ["p_setosa", "p_versicolor", "p_virginica"]
    proba = np.array(rows, dtype=float)
    assert proba.shape == (150, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-12)
    net, metadata = io.load_with_metadata(path)
    x, _ = iris_features(data_dir)
    np.testing.assert_array_equal(proba, net.predict_proba((x - metadata["input_mean"]) / metadata["input_scale"]))


def test_regression_round_trip_in_the_targets_units(data_dir, tmp_path):
    model = tmp_path / "diabetes.npz"
    result = run_cli("train", data_dir / "diabetes.csv", "--target", "progression", "--epochs", "20",
                     "--validation-fraction", "0", "--seed", "0", "--quiet", "--out", model, check_status=0)
    assert "loss: mse (--loss auto: the target is numeric" in result.stdout
    assert "RMSE" in result.stdout and "epoch 1/" not in result.stdout
    table = read_table(str(data_dir / "diabetes.csv"))
    x = np.array([table.columns[name].astype(float) for name in table.names[:-1]]).T
    y = table.columns["progression"].astype(float)
    net, metadata = io.load_with_metadata(model)
    # Without a validation part the scaling is exactly the whole file's.
    np.testing.assert_allclose(metadata["input_mean"], x.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(metadata["input_scale"], x.std(axis=0), rtol=1e-12)
    assert metadata["target_mean"] == pytest.approx(y.mean()) and metadata["target_scale"] == pytest.approx(y.std())
    header, rows = read_csv(run_cli("predict", model, data_dir / "diabetes.csv", check_status=0).stdout)
    predicted = np.array(rows, dtype=float)[:, 0]
    expected = net.predict((x - metadata["input_mean"]) / metadata["input_scale"])[:, 0]
    np.testing.assert_array_equal(predicted, expected * metadata["target_scale"] + metadata["target_mean"])
    assert header == ["progression"]
    # Better than predicting the mean, in the target's units.
    assert np.sqrt(np.mean((predicted - y) ** 2)) < 0.9 * y.std()


def test_auto_picks_classes_for_a_few_integer_values_and_predict_reorders_columns(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((60, 2)).tolist()
    label = [int(a > 0) + 1 for a, _ in x]  # the labels 1 and 2
    (tmp_path / "train.csv").write_text("a,b,label\n" + "".join(f"{a!r},{b!r},{c}\n" for (a, b), c in zip(x, label)))
    result = run_cli("train", "train.csv", "--target", "label", "--epochs", "40", "--seed", "1", "--lr", "0.01",
                     cwd=tmp_path, check_status=0)
    assert "loss: cross_entropy (--loss auto: the target has 2 integer values)" in result.stdout
    assert (tmp_path / "model.npz").is_file()  # the default --out, in the current directory
    # Columns in another order, and an extra one: matched by name.
    (tmp_path / "new.csv").write_text("extra,b,a\n" + "".join(f"x,{b!r},{a!r}\n" for a, b in x))
    header, rows = read_csv(run_cli("predict", "model.npz", "new.csv", cwd=tmp_path, check_status=0).stdout)
    assert header == ["label"] and {row[0] for row in rows} <= {"1", "2"}
    assert np.mean(np.array([int(row[0]) for row in rows]) == label) > 0.9


def test_npz_data(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((50, 3))
    np.savez(tmp_path / "data.npz", x=x, y=x @ [1.0, -2.0, 0.5])
    run_cli("train", tmp_path / "data.npz", "--epochs", "5", "--quiet", "--out", tmp_path / "m.npz", check_status=0)
    header, rows = read_csv(run_cli("predict", tmp_path / "m.npz", tmp_path / "data.npz", check_status=0).stdout)
    assert header == ["y"] and len(rows) == 50


def test_an_npz_of_x_alone_feeds_a_csv_trained_model_by_position(iris_model, data_dir, tmp_path):
    path, _ = iris_model
    x, _ = iris_features(data_dir)
    np.savez(tmp_path / "x.npz", x=x)
    from_npz = run_here("predict", path, tmp_path / "x.npz")
    from_csv = run_here("predict", path, data_dir / "iris.csv")
    assert from_npz.returncode == 0 and from_npz.stdout == from_csv.stdout
    np.savez(tmp_path / "x3.npz", x=x[:, :3])
    assert_one_line_error(run_here("predict", path, tmp_path / "x3.npz"), tmp_path / "x3.npz",
                          "its x has 3 columns, the model expects 4 features")


def test_info_describes_the_model(iris_model):
    path, _ = iris_model
    out = run_cli("info", path, check_status=0).stdout
    assert "architecture: 4-16-3" in out
    assert f"parameters:   {nnfast.load(path).n_params}" in out
    assert "loss:         cross_entropy" in out and "dtype:        float64" in out
    assert "Adam(lr=0.001)" in out and "steps taken" in out
    assert "classes:      setosa, versicolor, virginica" in out
    assert "30 epochs on iris.csv" in out


def test_info_on_a_plain_net_file(tmp_path):
    nnfast.Net([2, 3, 1], seed=0).save(tmp_path / "plain.npz")
    out = run_cli("info", tmp_path / "plain.npz", check_status=0).stdout
    assert "architecture: 2-3-1" in out and "a plain nnfast net file" in out


def test_export_onnx_runs_in_onnxruntime_with_the_same_outputs(iris_model, data_dir, tmp_path):
    pytest.importorskip("onnx", reason="ONNX export needs onnx, which is optional")
    onnxruntime = pytest.importorskip("onnxruntime", reason="checking the export needs onnxruntime")
    path, _ = iris_model
    run_cli("export", path, "--onnx", tmp_path / "iris.onnx", "--output", "proba", check_status=0)
    session = onnxruntime.InferenceSession(str(tmp_path / "iris.onnx"), providers=["CPUExecutionProvider"])
    x, _ = iris_features(data_dir)
    onnx_proba = session.run(None, {"input": x})[0]  # raw features: the scaling is in the graph
    _, rows = read_csv(run_cli("predict", path, data_dir / "iris.csv", "--proba", check_status=0).stdout)
    np.testing.assert_allclose(onnx_proba, np.array(rows, dtype=float), rtol=1e-9, atol=1e-12)


def test_export_torch(iris_model, data_dir, tmp_path):
    torch = pytest.importorskip("torch", reason="PyTorch export needs torch, which is optional")
    path, _ = iris_model
    run_cli("export", path, "--torch", tmp_path / "iris.pt", check_status=0)
    module = torch.load(tmp_path / "iris.pt", weights_only=False)
    x, _ = iris_features(data_dir)
    net, metadata = io.load_with_metadata(path)
    with torch.no_grad():
        logits = module(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(logits, net.predict((x - metadata["input_mean"]) / metadata["input_scale"]),
                               rtol=1e-9, atol=1e-9)


def test_plot_writes_a_png(data_dir, tmp_path):
    pytest.importorskip("matplotlib", reason="--plot needs matplotlib, which is optional")
    run_cli("train", data_dir / "iris.csv", "--target", "species", "--epochs", "3", "--quiet",
            "--out", tmp_path / "m.npz", "--plot", tmp_path / "loss.png", check_status=0)
    assert (tmp_path / "loss.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    # Refused before training: a format matplotlib has no writer for, a directory that is not there.
    for plot, problem in (("loss.txt", "--plot writes the formats"), ("no/loss.png", "directory")):
        result = run_cli("train", data_dir / "iris.csv", "--target", "species", "--out", tmp_path / "m2.npz",
                         "--plot", tmp_path / plot)
        assert_one_line_error(result, tmp_path / plot, problem)
        assert "epoch" not in result.stdout and not (tmp_path / "m2.npz").exists()


# -- bad command lines and bad files ---------------------------------------------------

@pytest.mark.parametrize("args", [
    ["train"],  # no DATA
    ["train", "x.csv", "--epochs", "0"],
    ["train", "x.csv", "--layers", "64,-1"],
    ["train", "x.csv", "--loss", "hinge"],
    ["predict", "m.npz"],
    ["frobnicate"],
    ["export", "m.npz"],  # neither --onnx nor --torch
])
def test_bad_command_lines_exit_2_with_usage(args, tmp_path):
    result = run_here(*args, cwd=tmp_path)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "usage: nnfast" in result.stderr


def test_a_bad_flag_exits_2_with_usage_from_the_shell(tmp_path):
    result = run_cli("train", "x.csv", "--target", "y", "--bogus", cwd=tmp_path)
    assert result.returncode == 2
    assert "usage: nnfast" in result.stderr and "unrecognized arguments: --bogus" in result.stderr
    assert "Traceback" not in result.stderr


def test_demo_runs_without_a_command():
    out = run_cli("--no-timing", check_status=0).stdout
    assert "largest relative difference over all 500 steps" in out
    assert run_here("demo", "--no-timing").stdout == out


def test_the_package_and_the_cli_work_without_docstrings(tmp_path):
    # python -OO drops docstrings: nothing may build on them.
    env = dict(os.environ, PYTHONPATH=PACKAGE_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    code = "import nnfast, nnfast.reference, nnfast.sklearn, sys; from nnfast.cli import main; sys.exit(main(sys.argv[1:]))"
    result = subprocess.run([sys.executable, "-OO", "-c", code, "demo", "--no-timing"], capture_output=True,
                            text=True, env=env, cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "largest relative difference over all 500 steps" in result.stdout


def test_missing_file(tmp_path):
    assert_one_line_error(run_cli("train", "nope.csv", "--target", "y", cwd=tmp_path), "nope.csv",
                          "No such file or directory")
    assert_one_line_error(run_here("info", "nope.npz", cwd=tmp_path), "nope.npz", "No such file or directory")


def test_bad_column_name(data_dir):
    path = data_dir / "iris.csv"
    assert_one_line_error(run_here("train", path, "--target", "colour"), path, "no target column 'colour'")
    assert_one_line_error(run_here("train", path, "--target", "species", "--features", "petal"), path,
                          "no feature column 'petal'")


def test_not_a_csv_file(tmp_path):
    (tmp_path / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    assert_one_line_error(run_here("train", "image.png", "--target", "y", cwd=tmp_path), "image.png",
                          "not a CSV file")


def test_non_numeric_feature_and_missing_value(tmp_path):
    (tmp_path / "words.csv").write_text("a,colour,y\n1,red,0\n2,blue,1\n")
    assert_one_line_error(run_here("train", "words.csv", "--target", "y", cwd=tmp_path), "words.csv",
                          "feature column 'colour' is not numeric (it holds 'red'): feature values must be numbers")
    (tmp_path / "holes.csv").write_text("a,b,y\n1,2,0\n3,,1\n")
    assert_one_line_error(run_here("train", "holes.csv", "--target", "y", cwd=tmp_path), "holes.csv",
                          "feature column 'b' has a missing value in data row 2")
    (tmp_path / "short.csv").write_text("a,b,y\n1,2,0\n3,4\n")  # as pandas reads it: an empty last field
    assert_one_line_error(run_here("train", "short.csv", "--target", "y", cwd=tmp_path), "short.csv",
                          "target column 'y' has a missing value in data row 2")
    (tmp_path / "long.csv").write_text("a,b,y\n1,2,0\n3,4,5,6\n")
    assert_one_line_error(run_here("train", "long.csv", "--target", "y", cwd=tmp_path), "long.csv", "fields")


def test_corrupt_model_file(iris_model, data_dir, tmp_path):
    path, _ = iris_model
    data = path.read_bytes()
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(data[: len(data) // 2])
    assert_one_line_error(run_cli("predict", corrupt, data_dir / "iris.csv"), corrupt, "not a valid nnfast file")
    for command in (["info", corrupt], ["export", corrupt, "--onnx", tmp_path / "x.onnx"]):
        assert_one_line_error(run_here(*command), corrupt, "not a valid nnfast file")
    assert not (tmp_path / "x.onnx").exists()
    flipped = bytearray(data)
    flipped[len(data) // 3] ^= 0xFF  # inside the parameters: the CRC-32 catches it
    corrupt.write_bytes(bytes(flipped))
    assert_one_line_error(run_here("info", corrupt), corrupt, "not a valid nnfast file")
    assert_one_line_error(run_here("predict", data_dir / "iris.csv", data_dir / "iris.csv"), data_dir / "iris.csv",
                          "not a valid nnfast file")


def test_predict_with_a_plain_net_file_says_what_is_missing(tmp_path):
    nnfast.Net([2, 3, 1], seed=0).save(tmp_path / "plain.npz")
    (tmp_path / "d.csv").write_text("a,b\n1,2\n")
    assert_one_line_error(run_here("predict", "plain.npz", "d.csv", cwd=tmp_path), "plain.npz",
                          "not a model written by `nnfast train`")


# -- CSV reading: pandas and the csv module agree ------------------------------------

def test_csv_reading_is_the_same_with_and_without_pandas(tmp_path):
    pytest.importorskip("pandas", reason="comparing with pandas needs pandas, which is optional")
    path = tmp_path / "mixed.csv"
    path.write_text('name,"x, quoted",y\n"Smith, J",1.5,a\n  Lee ,-2e3,b\n\nO\'Neil,0\n')
    with_pandas, without = read_table(str(path), use_pandas=True), read_table(str(path), use_pandas=False)
    assert with_pandas.names == without.names == ["name", "x, quoted", "y"]
    for name in with_pandas.names:
        np.testing.assert_array_equal(with_pandas.columns[name], without.columns[name])
    assert without.columns["name"].tolist() == ["Smith, J", "Lee", "O'Neil"]
    assert without.columns["x, quoted"].astype(float).tolist() == [1.5, -2000.0, 0.0]
    assert without.columns["y"].tolist() == ["a", "b", ""]  # the short row's missing field


# -- bench ----------------------------------------------------------------------------

def test_bench_table_times_every_contender_in_process():
    # In-process and tiny: `nnfast bench --quick` itself takes ~10 s, too long for this file.
    from nnfast._bench.run import run_benchmarks
    from nnfast._bench.table import collect_lines, targets_table

    results, skipped = run_benchmarks(["step-seed", "predict-one"], ("float64",), repeats=1, min_run_seconds=1e-4)
    assert skipped == []
    contenders = {(b["extra_info"]["operation"], b["extra_info"]["dtype"], b["extra_info"]["implementation"])
                  for b in results["benchmarks"]}
    assert {("step-seed", "float64", "nnfast"), ("step-seed", "float64", "reference"),
            ("predict-one", "float32", "nnfast"), ("predict-one", "float64", "reference")} <= contenders
    assert all(b["stats"]["median"] > 0 for b in results["benchmarks"])
    table = targets_table(collect_lines(results))
    lines = table.splitlines()
    assert lines[0].startswith("| work |") and len(lines) == 2 + 3  # header, rule, one line per row and dtype
    assert "one `train_step`" in table and "`predict` of one sample" in table


def test_bench_is_a_command():
    result = run_cli("bench", "--help", check_status=0)
    assert "--quick" in result.stdout


def test_out_never_replaces_a_file_that_is_not_an_nnfast_file(data_dir, tmp_path):
    precious = tmp_path / "notes.csv"
    precious.write_text("keep,me\n1,2\n")
    result = run_cli("train", data_dir / "iris.csv", "--target", "species", "--epochs", "1", "--out", precious)
    assert_one_line_error(result, precious, "exists and is not an nnfast file, so it is not replaced")
    assert "epoch" not in result.stdout  # refused before training
    assert precious.read_text() == "keep,me\n1,2\n"
    labels = tmp_path / "labels.csv"
    labels.write_text("old\n")
    model = tmp_path / "m.npz"
    run_cli("train", data_dir / "iris.csv", "--target", "species", "--epochs", "1", "--quiet", "--out", model,
            check_status=0)
    before = model.read_bytes()
    run_cli("train", data_dir / "iris.csv", "--target", "species", "--epochs", "2", "--quiet", "--out", model,
            "--seed", "9", check_status=0)
    assert model.read_bytes() != before  # a model file is replaced
    assert_one_line_error(run_here("predict", model, data_dir / "iris.csv", "-o", model), model,
                          "it is also an input of this command")


def test_metadata_that_does_not_fit_the_net_is_one_line(iris_model, tmp_path):
    path, _ = iris_model
    net, metadata = io.load_with_metadata(path)
    metadata["features"] = metadata["features"][:2]  # two names for four inputs
    io.save(net, tmp_path / "bad.npz", metadata=metadata)
    assert_one_line_error(run_here("info", tmp_path / "bad.npz"), tmp_path / "bad.npz",
                          "not a valid `nnfast train` model: its 'features' must be of kind 'U' and shape (4,)")


def test_ctrl_c_exits_130_and_writes_nothing(tmp_path):
    import signal

    rng = np.random.default_rng(2)
    np.savez(tmp_path / "big.npz", x=rng.standard_normal((20000, 20)), y=rng.standard_normal(20000))
    env = dict(os.environ, PYTHONPATH=PACKAGE_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    process = subprocess.Popen([sys.executable, "-m", "nnfast", "train", "big.npz", "--epochs", "100000",
                                "--batch-size", "8"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        while not process.stdout.readline().startswith("epoch 1/"):  # training is under way
            assert process.poll() is None, process.stderr.read()
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    assert "nnfast: interrupted" in stderr and "Traceback" not in stderr
    assert not (tmp_path / "model.npz").exists()


@pytest.mark.parametrize(("change", "problem"), [
    (dict(task=["classification", "regression"]), "unknown task"),
    (dict(cli_version=True), "its metadata version is True"),
    (dict(cli_version=2), "its metadata version is 2, this nnfast reads 1"),
    (dict(best_epoch="x"), "its 'best_epoch' must be of kind 'i'"),
    (dict(epoch_loss=[1, 2]), "its 'epoch_loss' must be of kind 'f'"),
    (dict(features=["a", "a", "b", "c"]), "its 'features' name a column twice"),
    (dict(classes=["a", "b"]), "its 'classes' must be of kind 'U' and shape (3,)"),
    (dict(input_scale=[1.0, 0.0, 1.0, 1.0]), "its 'input_scale' must be > 0"),
    (dict(target=["species"]), "its 'target' must be of kind 'U' and shape ()"),
])
def test_every_metadata_entry_is_checked_before_use(iris_model, tmp_path, change, problem):
    from nnfast.cli._data import DataError
    from nnfast.cli._model import load_model

    net, metadata = io.load_with_metadata(iris_model[0])
    io.save(net, tmp_path / "bad.npz", metadata={**metadata, **change})
    with pytest.raises(DataError) as raised:
        load_model(str(tmp_path / "bad.npz"))
    assert problem in raised.value.problem and raised.value.problem.startswith("not a valid `nnfast train` model")
