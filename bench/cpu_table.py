"""Run the rows of the "fast on every x86-64 CPU" issue (#13) from bench/test_targets.py and print its table.

Usage::

    python bench/cpu_table.py [pytest options ...]
    python bench/cpu_table.py --json results.json

The baseline of most rows is the seed notebook's own NumPy code
(``numpy-seed`` in ``competitors.py``), not ``nnfast.reference``, whose
validation makes it slower than what a user would write. Each target is
checked from the run's medians; the header names the CPU, its caches, the
BLAS kernel and nnfast's crossover to BLAS.
"""
from report import format_seconds, markdown_table, print_table
from nnfast._bench.table import PYTORCH, collect_lines

MODULE = "test_targets.py"
SELECTION = ["-k", "test_fit_seed or test_step or test_predict"]


def _ratio(line, contender):
    """``contender``'s median over nnfast's, or None."""
    other, nnfast = line.median(contender), line.median("nnfast")
    return None if other is None or nnfast is None else other / nnfast


def _at_least(line, contender, name, target):
    ratio = _ratio(line, contender)
    if ratio is None:
        return f"{name}: not measured", None
    return f"{ratio:.2f}× {name}", ratio >= target


def _gemm(line, target):
    gemm, nnfast = line.median("numpy-gemm"), line.median("nnfast")
    if gemm is None or nnfast is None:
        return "gemm rate: not measured", None
    return f"{100 * gemm / nnfast:.0f}% of the gemm rate", gemm / nnfast >= target


def _beats_pytorch(line, or_equal=False):
    fastest = line.fastest(PYTORCH)
    nnfast = line.median("nnfast")
    if fastest is None:
        return "PyTorch: not measured", None
    return f"{fastest / nnfast:.2f}× PyTorch's time", nnfast <= fastest if or_equal else nnfast < fastest


# (row, dtype or None for both) -> (work, target, checks)
ROWS = [
    ("fit-seed", None, "whole `fit`, seed size, 500 epochs", "≥ 180× numpy-seed, ≥ 5× JAX's `jit(lax.scan)`",
     lambda line: [_at_least(line, "numpy-seed", "numpy-seed", 180), _at_least(line, "jax", "JAX", 5)]),
    ("predict-one", None, "`predict` of one sample", "≥ 8× numpy-seed, ≥ 10× onnxruntime",
     lambda line: [_at_least(line, "numpy-seed", "numpy-seed", 8),
                   _at_least(line, "onnxruntime", "onnxruntime", 10)]),
    ("step-one-sample", None, "one step, batch of 1", "≥ 5× numpy-seed",
     lambda line: [_at_least(line, "numpy-seed", "numpy-seed", 5)]),
    ("step-small", "float32", "one step", "≥ 6× numpy-seed in float32",
     lambda line: [_at_least(line, "numpy-seed", "numpy-seed", 6)]),
    ("step-small", "float64", "one step", "≥ 4× numpy-seed in float64",
     lambda line: [_at_least(line, "numpy-seed", "numpy-seed", 4)]),
    ("step-tutorial", None, "one step", "≥ 85% of the gemm rate; faster than PyTorch",
     lambda line: [_gemm(line, 0.85), _beats_pytorch(line)]),
    ("step-wide", None, "one step", "≥ 85% of the gemm rate; faster than PyTorch",
     lambda line: [_gemm(line, 0.85), _beats_pytorch(line)]),
    ("predict-batch", None, "`predict` of 1024 samples", "at least as fast as onnxruntime and PyTorch",
     lambda line: [_at_least(line, "onnxruntime", "onnxruntime", 1), _beats_pytorch(line, or_equal=True)]),
]
CONTENDERS = ["numpy-seed", "reference", "jax", "onnxruntime", "torch-tensors", "torch-nn", "torch"]


def cpu_targets_table(results):
    """The issue's targets as Markdown, one line per row and dtype.

    Parameters
    ----------
    results : dict
        pytest-benchmark's ``--benchmark-json`` document of ``test_targets.py``.

    Returns
    -------
    str
    """
    lines = collect_lines(results)
    body = []
    for row, dtype, work, target, check in ROWS:
        for (name, line_dtype, _), line in sorted(lines.items(), key=lambda item: item[0][1] != "float64"):
            if name != row or dtype not in (None, line_dtype):
                continue
            checks = check(line)
            passed = [ok for _, ok in checks]
            verdict = "**missed**" if False in passed else "met" if None not in passed else "not all measured"
            times = [format_seconds(line.median(c)) if line.median(c) is not None else "—" for c in CONTENDERS]
            marks = {True: " ✓", False: " ✗", None: ""}
            body.append([work, str(line.size()), line_dtype, format_seconds(line.median("nnfast")), *times,
                         target, verdict + ": " + "; ".join(text + marks[ok] for text, ok in checks)])
    return markdown_table(["work", "size", "dtype", "nnfast", *CONTENDERS, "target", "result"], body,
                          "lll" + "r" * (1 + len(CONTENDERS)) + "ll")


if __name__ == "__main__":
    import sys
    print_table(__doc__, MODULE, cpu_targets_table, SELECTION + sys.argv[1:])
