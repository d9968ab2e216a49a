"""Run ``bench/test_interop.py`` and print nnfast's ``predict`` next to onnxruntime's and scikit-learn's.

Usage::

    python bench/interop_table.py [pytest options ...]
    python bench/interop_table.py --json results.json

One row per model, dtype and batch: the median time of one call on each
side, and the ratio (how many times slower the other side is).
"""
try:
    from . import report
except ImportError:
    import report


def interop_report(results):
    """A markdown table from ``test_interop.py`` results."""
    table = report._medians(results, ("operation", "model", "dtype", "rows"), "implementation")
    rows = []
    for (operation, model, dtype, n_rows), entry in table.items():
        ours = entry.get("nnfast", entry.get("nnfast (from_sklearn)"))
        other_name = "onnxruntime" if "onnxruntime" in entry else "scikit-learn"
        theirs = entry.get(other_name)
        rows.append([f"`{operation}`, {model}", dtype, str(n_rows), other_name, report.format_seconds(theirs),
                     report.format_seconds(ours), report.format_ratio(theirs, ours)])
    return report.markdown_table(
        ["work", "dtype", "rows", "other side", "other side's time", "nnfast", "other / nnfast"], rows, "lllrrrr")


def main(argv=None):
    report.print_table(__doc__, "test_interop.py", interop_report, argv)


if __name__ == "__main__":
    main()
