"""The annotations: ``py.typed`` ships, signatures show the real parameters, and mypy accepts
tests/typing_usage.py (the public API used as a user would) and rejects wrong calls.

mypy checks the nnfast these tests import: from a source tree (or an
editable install) through MYPYPATH, which makes mypy check nnfast's own
modules too; from site-packages (CI's installed wheel) through the
interpreter, which finds it by its ``py.typed``. One cache for the module
keeps the second run of mypy short.
"""
import inspect
import os
import re
import runpy
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

import nnfast
import nnfast.reference

TESTS = Path(__file__).resolve().parent
PYPROJECT = TESTS.parent / "pyproject.toml"
PACKAGE = Path(nnfast.__file__).resolve().parent


@pytest.fixture(scope="module")
def run_mypy(tmp_path_factory):
    """Run mypy on one file against the nnfast under test; return (exit status, output)."""
    pytest.importorskip("mypy", reason="mypy is not installed (pip install mypy, or nnfast[test])")
    cache = tmp_path_factory.mktemp("mypy-cache")
    env = dict(os.environ)
    env.pop("MYPYPATH", None)
    installed = {Path(sysconfig.get_paths()[key]).resolve() for key in ("purelib", "platlib")}
    if PACKAGE.parent not in installed:
        env["MYPYPATH"] = str(PACKAGE.parent)

    def run(script):
        result = subprocess.run(
            [sys.executable, "-m", "mypy", "--config-file", str(PYPROJECT), "--cache-dir", str(cache),
             "--python-executable", sys.executable, "--show-error-codes", "--no-color-output", str(script)],
            capture_output=True, text=True, env=env, cwd=str(cache), timeout=600,
        )
        return result.returncode, result.stdout + result.stderr

    return run


def test_the_package_ships_py_typed():
    assert (PACKAGE / "py.typed").is_file()


@pytest.mark.parametrize("cls", [nnfast.Net, nnfast.reference.Net])
def test_net_signature_shows_the_real_parameters(cls):
    signature = inspect.signature(cls)
    assert list(signature.parameters) == ["layers", "activation", "negative_slope", "bias", "loss", "l2",
                                          "init", "init_std", "dtype", "seed"]
    assert signature.parameters["loss"].default == "sse"
    assert signature.parameters["seed"].annotation == "int | None"


def test_fit_signature_is_annotated():
    parameters = inspect.signature(nnfast.Net.fit).parameters
    assert parameters["epochs"].annotation == "int"
    assert parameters["verbose"].annotation == "bool | int"
    assert inspect.signature(nnfast.Net.fit).return_annotation == "History"


@pytest.mark.filterwarnings("ignore:Stochastic Optimizer")  # its few iterations do not converge
def test_typing_usage_runs():
    # The script mypy checks below is real code: it runs and its own asserts hold.
    pytest.importorskip("sklearn", reason="scikit-learn is not installed (the script uses nnfast.sklearn)")
    runpy.run_path(str(TESTS / "typing_usage.py"), run_name="__main__")


def test_mypy_accepts_the_public_api_used_as_documented(run_mypy):
    status, output = run_mypy(TESTS / "typing_usage.py")
    assert status == 0, output
    assert "Success: no issues found" in output


def test_mypy_rejects_wrong_calls(run_mypy, tmp_path):
    # One mistake per marked line; mypy must report exactly those lines, so the
    # annotations are real (an unannotated API would let every one pass as Any).
    script = tmp_path / "wrong_usage.py"
    script.write_text(textwrap.dedent("""\
        import nnfast
        from nnfast.sklearn import MLPRegressor
        net = nnfast.Net([2, 1])
        net.fit([[0.0, 1.0]], [1.0], epochs="10", lr=0.1)  # error
        label: str = net.predict([[0.0, 1.0]])  # error
        nnfast.SGD(lr="fast")  # error
        net.fit([[0.0, 1.0]], [1.0], epochs=1, schedule=nnfast.SGD(0.1))  # error
        nnfast.Ensemble([2, 1], n_members=2).fit([[0.0, 1.0]], [1.0], epochs=1).loss  # error
        count: int = nnfast.load("net.npz").n_params  # error
        MLPRegressor(hidden_layer_sizes="wide")  # error
        MLPRegressor().fit([[0.0]], [1.0]).partial_fit([[0.0]], [1.0], classes=[0])  # error
        history = net.fit([[0.0, 1.0]], [1.0], epochs=1, lr=0.1)
        first: float = history.val_loss[0]  # error
        """))
    expected = {number for number, line in enumerate(script.read_text().splitlines(), 1) if line.endswith("# error")}
    status, output = run_mypy(script)
    reported = {int(match) for match in re.findall(rf"^{re.escape(str(script))}:(\d+): error", output, re.M)}
    assert status == 1, output
    assert reported == expected, output
