"""The benchmarked network in PyTorch, JAX and onnxruntime: now ``nnfast._bench.competitors``.

It moved into the package so that ``nnfast bench`` has the contenders in an
installed nnfast; the benchmark suites here import it under its old name.
"""
from nnfast._bench.competitors import *  # noqa: F401,F403
from nnfast._bench.competitors import __all__  # noqa: F401
