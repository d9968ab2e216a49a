"""The ImportError raised where nnfast's compiled kernels are missing says why and what to do.

Each test imports a copy of nnfast's Python files, without compiled modules,
in a child interpreter, the way a user meets an unbuilt source folder: from
the repository root by ``python -c``, stdin, a script there or ``python -m``,
or through ``PYTHONPATH``.
"""
import importlib.machinery
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import nnfast

INSTALLED = Path(nnfast.__file__).resolve().parent


@pytest.fixture
def repository(tmp_path):
    """A directory holding an unbuilt copy of the nnfast package, as a fresh clone's root does."""
    root = tmp_path.resolve() / "repository"
    (root / "nnfast").mkdir(parents=True)
    for source in INSTALLED.glob("*.py"):
        shutil.copy(source, root / "nnfast" / source.name)
    return root


def import_nnfast(how, cwd, pythonpath):
    """Import nnfast in a child Python started in ``cwd`` in the way ``how`` names; return it finished.

    ``-S`` keeps site-packages off sys.path: an editable install's import
    hook would otherwise find ``nnfast._checks`` in its own tree even for a
    package imported from the copy. ``pythonpath`` (the installed nnfast's
    parent directory, or the copy's) stands in for it.
    """
    command = [sys.executable, "-S"]
    stdin = None
    if how == "-c":
        command += ["-c", "import nnfast"]
    elif how == "stdin":
        command += ["-"]
        stdin = "import nnfast\n"
    elif how == "script":
        (cwd / "analysis.py").write_text("import nnfast\n")
        command += ["analysis.py"]
    elif how == "-m":
        command += ["-m", "nnfast", "--no-timing"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(path) for path in pythonpath)}
    return subprocess.run(command, cwd=cwd, input=stdin, env=env, capture_output=True, text=True, timeout=120)


def last_line(result):
    """The child's final error line, after checking that it failed with an ImportError."""
    assert result.returncode != 0, result.stdout
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("ImportError: "), result.stderr
    return line


@pytest.mark.parametrize("how", ["-c", "stdin", "script", "-m"])
def test_source_folder_in_the_current_directory(repository, how):
    line = last_line(import_nnfast(how, repository, [INSTALLED.parent]))
    assert "compiled kernels are missing" in line
    assert f"the source folder nnfast/ in the current directory ({repository})" in line
    assert "`python -c`, `python -` (stdin), `python -m`" in line
    assert f"It hides the nnfast installed in {INSTALLED}." in line
    for remedy in ("run Python from another directory", "`pip install -e .`", "`nnfast demo`"):
        assert remedy in line


def test_source_folder_without_an_installed_nnfast(repository):
    line = last_line(import_nnfast("-c", repository, []))
    assert f"the current directory ({repository})" in line
    assert "hides" not in line


def test_source_folder_on_pythonpath(repository):
    elsewhere = repository.parent / "elsewhere"
    elsewhere.mkdir()
    line = last_line(import_nnfast("-c", elsewhere, [repository, INSTALLED.parent]))
    assert f"nnfast was imported from {repository / 'nnfast'}, which has none built for this Python" in line
    assert "current directory" not in line
    assert f"It hides the nnfast installed in {INSTALLED}." in line
    assert "`pip install -e .`" in line


def test_kernels_present_but_not_loadable(repository):
    broken = repository / "nnfast" / f"_checks{importlib.machinery.EXTENSION_SUFFIXES[0]}"
    broken.write_bytes(b"not a shared library")
    line = last_line(import_nnfast("-c", repository, [INSTALLED.parent]))
    assert f"nnfast's compiled kernels in {repository / 'nnfast'} failed to import" in line
    assert str(broken) in line  # the loader's own reason
    assert "compiled kernels are missing" not in line
