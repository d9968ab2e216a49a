"""The compiled kernel modules, chosen for this CPU and for each net.

setup.py builds every kernel twice on x86-64: for any x86-64 (SSE2), and
for CPUs with AVX2 (``nnfast._avx2``). Both builds give the same results to
the bit (tests/test_kernels.py checks it); the AVX2 one runs the
elementwise loops (activations, updates, finiteness scans) on vectors twice
as wide. A net whose layers are all at most 4 wide runs only the unrolled
small products, where wider vectors have nothing to do: on a seed-size fit
the AVX2 build measured 2-6% slower over two runs of
``python bench/kernel_builds.py``, which times both builds side by side.
So such nets keep the baseline.

The environment variable ``NNFAST_KERNELS`` chooses: ``auto`` (the
default, as above), ``baseline`` or ``avx2`` (every net; for tests and
benchmarks).

Attributes
----------
BASELINE : Kernels
AVX2 : Kernels or None
    None where the CPU, the OS or the install lacks it.
BEST : Kernels
    What ``NNFAST_KERNELS`` and the CPU allow; ``checks`` comes from it.
"""
import os
from typing import NamedTuple

from nnfast import _checks, _dense, _fastpath, _fit, _lanes  # type: ignore[attr-defined]  # compiled: no stubs

_CHOICES = ("auto", "baseline", "avx2")
# Nets whose widest layer is at most this stay on the baseline under "auto".
TINY_WIDTH = 4


class Kernels(NamedTuple):
    """One build's modules."""

    name: str
    checks: object
    dense: object
    fastpath: object
    fit: object
    lanes: object


def avx2_kernels():
    """Return the AVX2 build's ``Kernels``, or None where the CPU (or OS) or this
    install has none, whatever ``NNFAST_KERNELS`` says."""
    if not _checks.cpu_has_avx2():
        return None
    try:
        from nnfast._avx2 import _checks as checks, _dense as dense, _fastpath as fastpath, _fit as fit
        from nnfast._avx2 import _lanes as lanes
    except ImportError:  # built without it (not x86-64, or another compiler)
        return None
    return Kernels("avx2", checks, dense, fastpath, fit, lanes)


CHOICE = os.environ.get("NNFAST_KERNELS", "auto")
if CHOICE not in _CHOICES:
    raise ImportError(f"NNFAST_KERNELS must be one of {', '.join(_CHOICES)}, got {CHOICE!r}")
BASELINE = Kernels("baseline", _checks, _dense, _fastpath, _fit, _lanes)
AVX2 = None if CHOICE == "baseline" else avx2_kernels()
if CHOICE == "avx2" and AVX2 is None:
    raise ImportError("NNFAST_KERNELS=avx2, but this CPU, its OS or this install of nnfast has no AVX2 build")
BEST = AVX2 or BASELINE
checks = BEST.checks


def for_layers(layers):
    """Return the ``Kernels`` for a net with these layer sizes.

    Parameters
    ----------
    layers : sequence of int

    Returns
    -------
    Kernels
    """
    if CHOICE == "auto" and max(layers) <= TINY_WIDTH:
        return BASELINE
    return BEST
