"""The performance issue's targets table (#4): one line per row, dtype and variant, as Markdown.

``bench/table.py`` renders it from a pytest-benchmark run of
``bench/test_targets.py``; ``nnfast bench`` from ``nnfast._bench.run``'s
records, which have the same shape (``{"benchmarks": [{"extra_info": ...,
"stats": {"median": ...}}]}``). Lines a run did not measure are left out.
"""
from dataclasses import dataclass, field

from nnfast._bench.formatting import format_ratio, format_seconds, markdown_table

__all__ = ["Line", "collect_lines", "ROWS", "targets_table", "notes", "competitor_versions", "LEGEND",
           "COMPETITOR_COLUMNS"]

# Competitor columns: header -> the contenders shown in it (a trainer or a predictor).
COMPETITOR_COLUMNS = {
    "PyTorch tensors": ("torch-tensors",),
    "PyTorch nn": ("torch-nn", "torch"),
    "JAX": ("jax",),
    "onnxruntime": ("onnxruntime",),
}
PYTORCH = ("torch-tensors", "torch-nn", "torch")
# Lines of a row: thread counts, or phases of the long fit, in this order.
VARIANT_ORDER = {None: 0, 1: 0, 2: 1, "start": 0, "transit": 1, "end": 2}


@dataclass
class Line:
    """One line of the table: a row of the issue at one dtype and variant (thread count or phase)."""

    row: str
    dtype: str
    variant: object
    benchmarks: dict = field(default_factory=dict)  # contender -> pytest-benchmark entry

    def median(self, contender):
        """The contender's median time per call, or None if it did not run."""
        bench = self.benchmarks.get(contender)
        return None if bench is None else bench["stats"]["median"]

    def per_step(self, contender):
        """The contender's median time per training step (a call may take several), or None."""
        median = self.median(contender)
        return None if median is None else median / self.info(contender).get("steps", 1)

    def info(self, contender="nnfast"):
        """The contender's ``extra_info`` (empty if it did not run)."""
        bench = self.benchmarks.get(contender)
        return {} if bench is None else bench["extra_info"]

    def size(self):
        """The line's size, as every contender of it records it."""
        return tuple(next(iter(self.benchmarks.values()))["extra_info"]["size"])

    def fastest(self, contenders):
        """The smallest median among ``contenders`` that ran, or None."""
        return min((m for m in map(self.median, contenders) if m is not None), default=None)


def collect_lines(results):
    """Group a run's benchmarks into the table's lines.

    Parameters
    ----------
    results : dict
        pytest-benchmark's ``--benchmark-json`` document of ``test_targets.py``.

    Returns
    -------
    dict
        ``{(row, dtype, variant): Line}``; the variant is the thread count,
        the long fit's phase, or None.
    """
    lines = {}
    for bench in results["benchmarks"]:
        info = bench["extra_info"]
        variant = info.get("threads", info.get("phase"))
        key = (info["operation"], info["dtype"], variant)
        lines.setdefault(key, Line(*key)).benchmarks[info["implementation"]] = bench
    return lines


# -- checks: each returns (text, passed), passed None when not measured -------------

def _at_least(ratio, target, what):
    """Check ``ratio >= target``; ``what`` names the ratio (``"× the reference"``)."""
    if ratio is None:
        return f"{what.lstrip('× ')}: not measured", None
    return f"{ratio:.2f}{what}", ratio >= target


def _at_most(seconds, limit, what):
    """Check a time against a limit."""
    if seconds is None:
        return f"{what}: not measured", None
    return f"{format_seconds(seconds)} {what}", seconds <= limit


def _faster_than(nnfast, other, name, or_equal=False):
    """Check that nnfast's time beats ``other``'s (a competitor that may be missing)."""
    if nnfast is None or other is None:
        return f"{name}: not measured", None
    return f"{other / nnfast:.2f}× {name}'s speed", nnfast <= other if or_equal else nnfast < other


def _speed_up(line):
    """Reference time over nnfast time, or None."""
    reference, nnfast = line.median("reference"), line.median("nnfast")
    return None if reference is None or nnfast is None else reference / nnfast


def _gemm_share(line):
    """nnfast's share of NumPy's gemm rate: NumPy's time for the step's products over nnfast's step."""
    gemm, nnfast = line.median("numpy-gemm"), line.median("nnfast")
    return None if gemm is None or nnfast is None else gemm / nnfast


def _check_fit_seed(line, lines):
    """Per-step time, speed-up over the reference, and JAX's one-call scan."""
    return [
        _at_most(line.per_step("nnfast"), 0.10e-6, "per step"),
        _at_least(_speed_up(line), 180, "× the reference"),
        _faster_than(line.median("nnfast"), line.median("jax"), "JAX"),
    ]


def _check_speed_up(minimum):
    """A check of the speed-up over the reference; ``minimum`` is a number or ``{dtype: number}``."""
    def check(line, lines):
        target = minimum[line.dtype] if isinstance(minimum, dict) else minimum
        return [_at_least(_speed_up(line), target, "× the reference")]
    return check


def _check_gemm_share(minimum, beat_pytorch=False):
    """A check of the share of the gemm rate, and optionally of the fastest PyTorch variant."""
    def check(line, lines):
        share = _gemm_share(line)
        checks = [("gemm rate: not measured", None) if share is None else
                  (f"{100 * share:.0f}% of the gemm rate", share >= minimum)]
        if beat_pytorch:
            checks.append(_faster_than(line.median("nnfast"), line.fastest(PYTORCH), "PyTorch"))
        return checks
    return check


def _check_predict_one(line, lines):
    """Latency of one prediction."""
    return [_at_most(line.median("nnfast"), 1.0e-6, "per call")]


def _check_predict_batch(line, lines):
    """nnfast no slower than onnxruntime and the fastest PyTorch variant."""
    nnfast = line.median("nnfast")
    return [_faster_than(nnfast, line.median("onnxruntime"), "onnxruntime", or_equal=True),
            _faster_than(nnfast, line.fastest(PYTORCH), "PyTorch", or_equal=True)]


def _check_threads(line, lines):
    """nnfast's two-thread speed-up, unless the machine could not run two threads at once.

    NumPy's gemm on the same products is the control: if it does not reach
    the target speed-up either, the second core was busy (on a shared
    machine), and the line measures the machine rather than nnfast.
    """
    one = lines.get((line.row, line.dtype, 1))

    def ratio(contender):
        times = None if one is None else (one.median(contender), line.median(contender))
        return None if times is None or None in times else times[0] / times[1]

    nnfast, control = ratio("nnfast"), ratio("numpy-gemm")
    check = _at_least(nnfast, 1.7, "× one thread")
    if check[1] is False and control is not None and control < 1.7:
        check = (f"{check[0]}, but NumPy's gemm only {control:.2f}×: the second core was busy", None)
    return [check]


def _check_memory(line, lines):
    """The peak against the bound, and no growth with epochs beyond the loss records."""
    memory = line.info("nnfast").get("memory")
    if memory is None:
        return [("memory: not measured", None)]
    peak = memory["peak"]
    checks = [(f"peak {peak['peak'] / 2**20:.1f} MiB of a {peak['bound'] / 2**20:.1f} MiB bound",
               peak["peak"] <= peak["bound"])]
    small, large = memory["growth"]
    grown = large["peak"] - small["peak"]
    records = large["records"] - small["records"]
    flat = grown <= records and large["numpy_blocks"] == small["numpy_blocks"]
    checks.append((f"{small['epochs']} → {large['epochs']} epochs: peak +{grown / 1e3:.0f} kB "
                   f"(records +{records / 1e3:.0f} kB), NumPy blocks kept: {small['numpy_blocks']} → "
                   f"{large['numpy_blocks']}", flat))
    return checks


def _check_subnormal(line, lines):
    """Time per step of this phase of the long fit over the start's."""
    start = lines.get((line.row, line.dtype, "start"))
    times = None if start is None else (line.per_step("nnfast"), start.per_step("nnfast"))
    if times is None or None in times:
        return [("the start: not measured", None)]
    ratio = times[0] / times[1]
    return [(f"{ratio:.2f}× the start's time per step", ratio <= 2)]


@dataclass
class Row:
    """A row of the issue's table: what is timed, its target, and how the target is checked.

    ``judged`` picks the lines the target applies to; the others (one
    thread, the long fit's start and middle) are context for them.
    """

    work: str
    target: str
    check: object  # (line, lines) -> list of (text, passed)
    judged: object = lambda line: True


ROWS = {
    "fit-seed": Row("whole `fit`, 500 epochs full batch, no bias, sse",
                    "≤ 0.10 µs per step; ≥ 180× the reference; faster than JAX's `jit(lax.scan)`",
                    _check_fit_seed),
    "step-seed": Row("one `train_step`", "≥ 30× the reference", _check_speed_up(30)),
    "step-small": Row("one step", "≥ 6× the reference in float32, ≥ 4× in float64",
                      _check_speed_up({"float32": 6, "float64": 4})),
    "step-tutorial": Row("one step", "≥ 65% of the gemm rate; faster than PyTorch",
                         _check_gemm_share(0.65, beat_pytorch=True)),
    "step-wide": Row("one step", "≥ 80% of the gemm rate", _check_gemm_share(0.80)),
    "step-one-sample": Row("one step, batch of 1", "≥ 5× the reference", _check_speed_up(5)),
    "predict-one": Row("`predict` of one sample", "≤ 1.0 µs per call", _check_predict_one),
    "predict-batch": Row("`predict` of 1024 samples, with biases",
                         "at least as fast as onnxruntime and PyTorch", _check_predict_batch),
    "threads": Row("one step", "≥ 1.7× one thread", _check_threads, judged=lambda line: line.variant == 2),
    "memory": Row("a mini-batch AdamW `fit`, 1 epoch",
                  "peak ≤ data + params × (2 + state) + a batch's activations + 4 MiB; "
                  "no memory kept per epoch", _check_memory),
    "subnormal": Row("100 steps of a long fit whose gradients shrink to zero", "end within 2× of the start",
                     _check_subnormal, judged=lambda line: line.variant == "end"),
}


# -- the table -----------------------------------------------------------------------

def _verdict(checks):
    """"met" if every check passed, "**missed**" if one failed, else how much was measured."""
    results = [passed for _, passed in checks]
    if False in results:
        return "**missed**"
    if True not in results:
        return "not measured"
    return "met" if None not in results else "met where measured"


def _target_and_result(line, lines):
    """The target and result cells: the verdict with its numbers, or the context a line gives."""
    row = ROWS[line.row]
    if row.judged(line):
        marks = {True: " ✓", False: " ✗", None: ""}
        checks = row.check(line, lines)
        return row.target, _verdict(checks) + ": " + "; ".join(text + marks[passed] for text, passed in checks)
    if line.row == "subnormal" and line.variant == "transit":
        return "(context)", row.check(line, lines)[0][0]
    return "(the baseline below)", "—"


def _work_and_size(line):
    """The work and size cells; a variant says what it changes."""
    work, size = ROWS[line.row].work, line.size()
    if line.row == "threads":
        work += f", {line.variant} thread{'s' if line.variant > 1 else ''}"
    elif line.row == "subnormal":
        work += f": {line.variant}"
    if line.row == "memory":
        return work, f"{line.info()['samples']} samples, batch {size[0]}, {size[1:]}"
    return work, str(size)


def _time_cell(line, contender):
    """A median (per step on the subnormal row), with its ratio to nnfast's for a competitor."""
    time = line.per_step if line.row == "subnormal" else line.median
    seconds, nnfast = time(contender), time("nnfast")
    if seconds is None:
        return "—"
    if contender in ("nnfast", "reference") or nnfast is None:  # the reference's ratio has its own column
        return format_seconds(seconds)
    return f"{format_seconds(seconds)} ({seconds / nnfast:.2f}×)"


def _nnfast_cell(line):
    """nnfast's median, and per step where the row's target is per step."""
    cell = _time_cell(line, "nnfast")
    if cell != "—" and line.row == "fit-seed":
        cell += f" ({format_seconds(line.per_step('nnfast'))}/step)"
    elif cell != "—" and line.row == "subnormal":
        cell += "/step"
    return cell


def _gemm_cell(line):
    """The share of the gemm rate, with nnfast's and NumPy's FLOP rates."""
    share = _gemm_share(line)
    if share is None:
        return "—"
    flops = line.info("numpy-gemm")["flops"]
    rates = flops / line.median("nnfast") / 1e9, flops / line.median("numpy-gemm") / 1e9
    return f"{100 * share:.0f}% ({rates[0]:.1f} of {rates[1]:.1f} GFLOP/s)"


def targets_table(lines):
    """The issue's table as Markdown: one line per row, dtype and variant.

    Parameters
    ----------
    lines : dict
        ``collect_lines``'s result.

    Returns
    -------
    str
    """
    order = {row: index for index, row in enumerate(ROWS)}
    keys = sorted(lines, key=lambda key: (order[key[0]], key[1] != "float64", VARIANT_ORDER[key[2]]))
    body = []
    for key in keys:
        line = lines[key]
        competitors = []
        for contenders in COMPETITOR_COLUMNS.values():
            ran = [contender for contender in contenders if contender in line.benchmarks]
            competitors.append(_time_cell(line, ran[0]) if ran else "—")
        body.append([
            *_work_and_size(line), line.dtype, _nnfast_cell(line), _time_cell(line, "reference"),
            format_ratio(line.median("reference"), line.median("nnfast")), *competitors, _gemm_cell(line),
            *_target_and_result(line, lines),
        ])
    headers = ["work", "size (batch, in, hidden, out)", "dtype", "nnfast", "reference", "reference ÷ nnfast",
               *COMPETITOR_COLUMNS, "% of gemm rate", "target", "result"]
    return markdown_table(headers, body, "lll" + "r" * (4 + len(COMPETITOR_COLUMNS)) + "ll")


# -- notes ---------------------------------------------------------------------------

def _memory_notes(line):
    """The memory row's numbers: the bound's terms, and 10 against 1000 epochs."""
    memory = line.info("nnfast").get("memory")
    if memory is None:
        return []
    peak = memory["peak"]

    def mib(key):
        return f"{peak[key] / 2**20:.2f} MiB"

    reference = line.info("reference").get("memory", {}).get("peak", {}).get("peak")
    runs = "; ".join(
        f"{run['epochs']} epochs ({run['steps']} steps): peak {run['peak'] / 1e3:.1f} kB above the trained net, "
        f"of which records {run['records'] / 1e3:.1f} kB; NumPy blocks kept: {run['numpy_blocks']}"
        for run in memory["growth"]
    )
    return [
        f"- **Memory** ({line.dtype}; tracemalloc, to which NumPy reports its array data): the fit's peak, data "
        f"included, was {mib('peak')} against a bound of {mib('bound')} = data {mib('data')} + parameters × "
        f"(2 + 2 AdamW moments) {mib('parameters')} + one batch's activations {mib('activations')} + the loss "
        f"records {peak['records']} B + {mib('slack')}"
        + (f"; the reference peaked at {reference / 2**20:.2f} MiB." if reference else "."),
        f"- **Allocation per step**: {runs}. The peak may grow only by the per-step loss records, and the NumPy "
        "blocks a fit keeps (its History, the optimizer's state) must not grow. tracemalloc cannot see a block "
        "allocated and freed within a step.",
    ]


def _describe_state(state):
    """Magnitudes of the parameters and the gradient, in words."""
    params, grads = state["params"], state["grads"]
    return (f"parameters up to {params['max']:.2g} ({100 * params['subnormal']:.0f}% subnormal), gradient up to "
            f"{grads['max']:.2g} ({100 * grads['subnormal']:.0f}% subnormal, {100 * grads['zero']:.0f}% zero)")


def _subnormal_notes(line, lines):
    """The long fit's magnitudes at its phases, the reference's ratio, and its slowest window."""
    info = line.info()
    if "long_fit" not in info:
        return []
    text = (f"- **Long fit, {line.dtype}** (zero targets, SGD lr {info['lr']} with weight decay "
            f"{info['weight_decay']}, {info['long_fit']['steps']} steps): at the end "
            f"{_describe_state(info['state'])}")
    transit = lines.get((line.row, line.dtype, "transit"))
    if transit is not None and "state" in transit.info():
        text += f"; in transit {_describe_state(transit.info()['state'])}"
    start = lines.get((line.row, line.dtype, "start"))
    if start is not None and None not in (start.median("reference"), line.median("reference")):
        text += f". The reference's end/start: {line.median('reference') / start.median('reference'):.2f}×"
    trajectory = info["long_fit"]["trajectory"]
    slowest = max(trajectory, key=lambda window: window["per_step_s"])
    return [text + (
        f". The slowest of the long fit's {len(trajectory)} windows of {info['steps']} steps (each timed once, "
        f"so noisy) took {format_seconds(slowest['per_step_s'])}/step, "
        f"{slowest['per_step_s'] / trajectory[0]['per_step_s']:.2f}× the first, up to step {slowest['steps']}."
    )]


def notes(lines):
    """The notes under the table: the memory row's measurements and the long fit's magnitudes.

    Parameters
    ----------
    lines : dict
        ``collect_lines``'s result.

    Returns
    -------
    list of str
        Markdown list items.
    """
    items = []
    for (row, _, variant), line in lines.items():
        if row == "memory":
            items += _memory_notes(line)
        elif row == "subnormal" and variant == "end":
            items += _subnormal_notes(line, lines)
    return items


def competitor_versions(results):
    """``"jax 0.10.2, torch 2.13.0"`` for the competitors that ran."""
    versions = sorted({bench["extra_info"]["version"] for bench in results["benchmarks"]
                       if "version" in bench["extra_info"]})
    return ", ".join(versions) or "none installed"


LEGEND = (
    "Medians. A competitor's cell is its median and, in brackets, its time over nnfast's (above 1: nnfast is "
    "faster). The fit row times a whole 500-step fit: JAX as one jitted `lax.scan`, PyTorch as a Python loop. "
    "% of gemm rate = the time NumPy's `matmul` takes for the step's five products at the same shapes and dtype "
    "(forward, weight gradients, the hidden layer's input gradient), measured in the same run, over nnfast's step "
    "time; in brackets nnfast's rate and NumPy's on those products. It exceeds 100% where NumPy's matmul is "
    "slower than BLAS on a product (at batch 1, `x.T @ d1` is an outer product, which NumPy does not hand to BLAS)."
)
