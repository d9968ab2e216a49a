"""Build the Cython kernels: ``src/nnfast/_name.pyx`` becomes ``nnfast._name``.

Metadata lives in ``pyproject.toml``; this file only lists the extensions.
Set ``NNFAST_DEBUG=1`` to build with bounds, wrap-around and initialization
checks turned back on (CI runs the test suite once against such a build).
"""
import os

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

KERNELS = ["_checks", "_matmul", "_dense", "_optim", "_shuffle", "_fit", "_fastpath"]

DEBUG = os.environ.get("NNFAST_DEBUG", "0") not in ("", "0")

DIRECTIVES = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": not DEBUG,
    "embedsignature": True,
}

extensions = [
    Extension(
        f"nnfast.{name}",
        [f"src/nnfast/{name}.pyx"],
        include_dirs=[np.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        # Portable flags only: no -march=native (wheels must run on any x86-64)
        # and no -ffast-math (it would delete the NaN/inf checks). Nothing reads
        # errno, and without -fno-math-errno GCC cannot vectorize a loop that
        # calls sqrt (the Adam update).
        extra_compile_args=["-O3", "-fno-math-errno"] + (["-O0", "-g"] if DEBUG else []),
    )
    for name in KERNELS
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives=DIRECTIVES,
        include_path=["src"],
        # Generated C goes under build/, one tree per mode, so a checked build
        # never reuses C generated without the checks (or the reverse).
        build_dir="build/cython-debug" if DEBUG else "build/cython",
    )
)
