"""The message of the ImportError raised when nnfast's compiled kernels do not import.

The usual cause is an unbuilt source folder found before the installed
package: ``python -c``, ``python -`` (stdin), ``python -m``, the interactive
prompt, and notebooks and scripts started in the repository root all put
the current directory first on ``sys.path``, so ``import nnfast`` finds the
repository's ``nnfast/``, which holds no compiled modules unless it was
built in place. This module tells that case from the others, so that the
message says what happened and what to do. It imports nothing from nnfast
and nothing outside the standard library: it runs when nnfast did not
import.
"""
import importlib.machinery
import os
import sys
from pathlib import Path

# The compiled module nnfast imports first (see nnfast/__init__.py).
FIRST_KERNEL = "_checks"

REMEDIES = (
    "To use an installed nnfast, run Python from another directory (for a "
    "notebook or a script: start it outside the repository root); to work "
    "on the sources, build the kernels in place with `pip install -e .`; "
    "for the demo, run the `nnfast demo` command, which does not put the "
    "current directory on sys.path."
)


def has_kernels(package_dir):
    """Whether ``package_dir`` holds the first kernel, compiled for this Python.

    Parameters
    ----------
    package_dir : pathlib.Path
        The directory of the ``nnfast`` package that was imported.

    Returns
    -------
    bool
    """
    return any((package_dir / f"{FIRST_KERNEL}{suffix}").is_file()
               for suffix in importlib.machinery.EXTENSION_SUFFIXES)


def installed_elsewhere(package_dir):
    """Return the directory of another ``nnfast`` package on ``sys.path``, or None.

    Parameters
    ----------
    package_dir : pathlib.Path
        The directory of the ``nnfast`` package that was imported, which is
        left out of the search.

    Returns
    -------
    pathlib.Path or None
    """
    for entry in sys.path:
        candidate = Path(entry or os.curdir, "nnfast")
        try:
            if (candidate / "__init__.py").is_file() and candidate.resolve() != package_dir:
                return candidate.resolve()
        except OSError:  # an unreadable or vanished sys.path entry
            continue
    return None


def message(package_dir, error):
    """Say why nnfast's kernels did not import from ``package_dir``, and what to do.

    Parameters
    ----------
    package_dir : str or pathlib.Path
        The directory of the ``nnfast`` package that was imported (the
        directory of its ``__init__.py``).
    error : ImportError
        The error importing the first kernel raised.

    Returns
    -------
    str
    """
    package_dir = Path(package_dir).resolve()
    if has_kernels(package_dir):
        # Built, but not loadable: for another CPU or C library, or a
        # sanitized build run without its runtime preloaded.
        return (f"nnfast's compiled kernels in {package_dir} failed to import ({error}). "
                "Rebuild them with `pip install --force-reinstall .` (or `pip install -e .` "
                "for a build in place).")
    try:
        in_current_directory = package_dir == Path.cwd().resolve() / "nnfast"
    except OSError:  # the current directory was deleted
        in_current_directory = False
    other = installed_elsewhere(package_dir)
    hidden = f" It hides the nnfast installed in {other}." if other is not None else ""
    if in_current_directory:
        return ("nnfast's compiled kernels are missing: `import nnfast` found the source "
                f"folder nnfast/ in the current directory ({package_dir.parent}), which is "
                "not built. `python -c`, `python -` (stdin), `python -m`, the interactive "
                "prompt, and notebooks and scripts started in this directory put it first "
                f"on sys.path.{hidden} {REMEDIES}")
    return (f"nnfast's compiled kernels are missing: nnfast was imported from {package_dir}, "
            "which has none built for this Python; it is probably a source folder, unbuilt, "
            f"ahead of the installed nnfast on sys.path.{hidden} Install nnfast with "
            "`pip install .` and import it with that folder off sys.path, or build it in "
            "place with `pip install -e .`.")
