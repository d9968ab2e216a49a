"""Run ``bench/test_sklearn.py`` and print nnfast's scikit-learn estimators against scikit-learn's.

Usage::

    python bench/sklearn_table.py [pytest options ...]
    python bench/sklearn_table.py --json results.json

One row per data set and solver: the median time of a round (five fits,
``random_state`` 0 to 4, scikit-learn's default parameters) on each side,
the speed-up against its target (3x for sgd and adam, 10x on wine, 2x for
lbfgs), the mean epochs (or L-BFGS iterations) and the mean test score of
each side. Then ``predict`` of one row (target 5x).
"""
try:
    from . import report
except ImportError:
    import report

FIT_TARGETS = {"adam": 3.0, "sgd": 3.0, "lbfgs": 2.0}
WINE_TARGET = 10.0
PREDICT_TARGET = 5.0


def target_of(dataset, solver):
    """The speed-up the fit of ``solver`` on ``dataset`` must reach."""
    return WINE_TARGET if dataset == "wine" and solver != "lbfgs" else FIT_TARGETS[solver]


def verdict(ratio, target):
    return "—" if ratio is None else f"{'met' if ratio >= target else '**missed**'} (≥ {target:g}×)"


def sklearn_report(results):
    """Markdown tables from ``test_sklearn.py`` results."""
    infos = {}
    for bench in results["benchmarks"]:
        info = bench["extra_info"]
        infos[(info["operation"], info["dataset"], info["solver"], info["implementation"])] = info
    table = report._medians(results, ("operation", "dataset", "solver"), "implementation")
    fit_rows, predict_rows = [], []
    for (operation, dataset, solver), entry in table.items():
        theirs, ours = entry.get("scikit-learn"), entry.get("nnfast")
        ratio = None if theirs is None or ours is None else theirs / ours
        if operation == "predict":
            predict_rows.append([dataset, report.format_seconds(theirs), report.format_seconds(ours),
                                 report.format_ratio(theirs, ours), verdict(ratio, PREDICT_TARGET)])
            continue
        sides = [infos.get((operation, dataset, solver, side), {}) for side in ("scikit-learn", "nnfast")]
        fit_rows.append([
            dataset, solver, str(sides[0].get("n_train", "")), report.format_seconds(theirs),
            report.format_seconds(ours), report.format_ratio(theirs, ours), verdict(ratio, target_of(dataset, solver)),
            " / ".join(f"{side.get('mean_iterations', float('nan')):.0f}" for side in sides),
            " / ".join(f"{side.get('mean_score', float('nan')):.4f}" for side in sides),
        ])
    fits = report.markdown_table(
        ["data set", "solver", "training rows", "scikit-learn (5 fits)", "nnfast (5 fits)", "speed-up",
         "target", "mean iterations (sklearn / nnfast)", "mean test score (sklearn / nnfast)"],
        fit_rows, "llrrrrlll",
    )
    predicts = report.markdown_table(
        ["predict one row", "scikit-learn", "nnfast", "speed-up", "target"], predict_rows, "lrrrl")
    return fits + "\n\n" + predicts


def main(argv=None):
    report.print_table(__doc__, "test_sklearn.py", sklearn_report, argv)


if __name__ == "__main__":
    main()
