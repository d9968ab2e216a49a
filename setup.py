"""Build the Cython kernels: ``src/nnfast/_name.pyx`` becomes ``nnfast._name``.

Metadata lives in ``pyproject.toml``; this file only lists the extensions.
Set ``NNFAST_DEBUG=1`` to build with bounds, wrap-around and initialization
checks turned back on (CI runs the test suite once against such a build).

Set ``NNFAST_SANITIZE=1`` to build every kernel, in both builds, with
AddressSanitizer and UndefinedBehaviorSanitizer, so that an out-of-bounds
access or undefined behaviour in C stops the program with a report. Python
itself is not instrumented: run it with the compiler's ASan runtime in
``LD_PRELOAD`` and with ``ASAN_OPTIONS=detect_leaks=0`` (CPython's own
allocations look like leaks); ``.ci/run`` shows how. The two switches combine.

Each mode builds in its own setuptools tree (``build/`` for the default,
``build/debug``, ``build/sanitize``, ``build/debug-sanitize``), so no build
reuses another mode's object files or modules. Cython's C depends only on
the directives, so the sanitized build compiles the C of its NNFAST_DEBUG
setting.

On x86-64 with GCC or Clang every kernel is built a second time, for CPUs
with AVX2, as ``nnfast._avx2._name``; ``nnfast._kernels`` picks the build
for the CPU at import. The default flags stay portable: the wheel runs on
any x86-64, and the AVX2 modules are only imported where the CPU has AVX2.
"""
import os
import platform
import re
import sysconfig
from pathlib import Path

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

KERNELS = ["_checks", "_lock", "_matmul", "_dense", "_optim", "_shuffle", "_fit", "_lanes", "_fastpath"]

DEBUG = os.environ.get("NNFAST_DEBUG", "0") not in ("", "0")
SANITIZE = os.environ.get("NNFAST_SANITIZE", "0") not in ("", "0")

DIRECTIVES = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": not DEBUG,
    "embedsignature": True,
}

# Portable flags only: no -march=native and no -ffast-math (it would delete the
# NaN/inf checks). Nothing reads errno, and without -fno-math-errno GCC cannot
# vectorize a loop that calls sqrt (the Adam update).
FLAGS = ["-O3", "-fno-math-errno"] + (["-O0", "-g"] if DEBUG else [])
LINK_FLAGS = []

# Both sanitizers stop at the first error. -O1, the usual level for ASan,
# unless NNFAST_DEBUG asked for -O0. -fno-wrapv undoes the -fwrapv in
# Python's CFLAGS, under which signed overflow is defined and UBSan does not
# check it. Linking with the flags links the sanitizers' runtimes.
SANITIZE_FLAGS = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined",
                  "-fno-omit-frame-pointer", "-g", "-fno-wrapv"] + ([] if DEBUG else ["-O1"])
if SANITIZE:
    FLAGS += SANITIZE_FLAGS
    LINK_FLAGS += SANITIZE_FLAGS
MODE = "-".join(name for name, on in (("debug", DEBUG), ("sanitize", SANITIZE)) if on)

# AVX2 doubles the vector width; without FMA and with contraction off every
# operation rounds as in the baseline build, and GCC vectorizes no
# floating-point reduction without -ffast-math, so both builds give the same
# bits (tests/test_kernels.py checks it).
VARIANT = "_avx2"
VARIANT_FLAGS = ["-mavx2", "-ffp-contract=off"]
VARIANT_SOURCES = Path("build") / "variant-src"


def builds_variant():
    """Whether this platform and compiler get the AVX2 build."""
    compiler = sysconfig.get_config_var("CC") or ""
    return platform.machine().lower() in ("x86_64", "amd64") and os.name == "posix" and "cl.exe" not in compiler


def write_variant_sources():
    """Copy the sources for ``nnfast._avx2``, their cimports pointing at that package.

    A file is rewritten only when its text changes, so that incremental
    builds stay incremental.
    """
    target = VARIANT_SOURCES / "nnfast" / VARIANT
    target.mkdir(parents=True, exist_ok=True)
    for source in sorted(Path("src/nnfast").glob("*.p[xy]*")):
        text = re.sub(r"\bnnfast\._", f"nnfast.{VARIANT}._", source.read_text())
        path = target / source.name
        if not path.exists() or path.read_text() != text:
            path.write_text(text)


def extension(name, source, flags):
    return Extension(
        name,
        [str(source)],
        include_dirs=[np.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=flags,
        extra_link_args=LINK_FLAGS,
    )


extensions = [extension(f"nnfast.{name}", f"src/nnfast/{name}.pyx", FLAGS) for name in KERNELS]
if builds_variant():
    write_variant_sources()
    extensions += [
        extension(f"nnfast.{VARIANT}.{name}", VARIANT_SOURCES / "nnfast" / VARIANT / f"{name}.pyx",
                  FLAGS + VARIANT_FLAGS)
        for name in KERNELS
    ]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives=DIRECTIVES,
        include_path=["src", str(VARIANT_SOURCES)],
        # Generated C goes under build/, one tree per mode, so a checked build
        # never reuses C generated without the checks (or the reverse).
        build_dir="build/cython-debug" if DEBUG else "build/cython",
        nthreads=os.cpu_count() or 1,
    ),
    # Objects and modules, one tree per mode. setuptools skips compiling a
    # module newer than its C, and Cython rewrites C only when its inputs
    # change, so in a shared tree a default build after a checked one could
    # keep the checked modules (pip's isolated builds happen to rewrite all C).
    # The modules are independent: Cython translates them, and the compiler
    # builds them, on every core at once.
    options={"build": {"build_base": str(Path("build", MODE))}, "build_ext": {"parallel": os.cpu_count() or 1}},
)
