"""``nnfast train DATA --target COL``: train a net on a CSV or ``.npz`` file and save it as a model file.

The inputs are standardized (mean 0, standard deviation 1 on the training
part; a constant column is only centred), and for the squared-error losses
so is the target; the scaling goes into the model file, and ``predict``
and ``export`` apply it.
"""
import math
import os
import time

import numpy as np

import nnfast
from nnfast import io
from nnfast._bench.formatting import format_seconds
from nnfast.cli._data import DataError, check_no_missing, is_numeric, numeric_columns, read_table
from nnfast.cli._model import CLI_VERSION, Model

# The losses the command line offers: cross_entropy for classes (with a
# softmax output per class), the others for one numeric target.
REGRESSION_LOSSES = ("mse", "squared_error", "sse", "poisson")
LOSS_CHOICES = ("auto", "cross_entropy", *REGRESSION_LOSSES)
OPTIMIZERS = {"adam": nnfast.Adam, "adamw": nnfast.AdamW, "sgd": nnfast.SGD}
# --loss auto reads an integer-valued target as class labels when it has at
# most this many distinct values, and at most half as many as rows (so a
# small count target with values spread over its range stays a regression).
MAX_AUTO_CLASSES = 20


def add_arguments(parser):
    """Add ``train``'s arguments to ``parser``."""
    parser.add_argument("data", metavar="DATA", help="a CSV file with a header row, or an .npz with arrays x and y")
    parser.add_argument("--target", metavar="COL",
                        help="the target column (required for a CSV; an .npz's is y)")
    parser.add_argument("--features", metavar="COLS", type=_names,
                        help="comma-separated feature columns (default: every column but the target)")
    parser.add_argument("--layers", metavar="SIZES", type=_sizes, default=[64, 64],
                        help="comma-separated hidden layer sizes (default: 64,64; 'none' for a linear model)")
    parser.add_argument("--activation", default="relu", choices=("relu", "leaky_relu", "tanh", "sigmoid"),
                        help="hidden activation (default: relu)")
    parser.add_argument("--loss", default="auto", choices=LOSS_CHOICES,
                        help="auto: cross_entropy for a non-numeric target or an integer one with few values, "
                             "else mse (default: auto)")
    parser.add_argument("--epochs", type=_positive_int, default=100, help="default: 100")
    parser.add_argument("--batch-size", type=_positive_int, default=32, help="default: 32")
    parser.add_argument("--optimizer", default="adam", choices=tuple(OPTIMIZERS), help="default: adam")
    parser.add_argument("--lr", type=_positive_float, default=1e-3, help="learning rate (default: 1e-3)")
    parser.add_argument("--validation-fraction", type=_fraction, default=0.2, metavar="F",
                        help="share of the rows held out for validation, 0 for none (default: 0.2)")
    parser.add_argument("--early-stopping", action="store_true",
                        help="stop when the validation loss has not improved for --patience epochs, "
                             "and keep the best epoch's net")
    parser.add_argument("--patience", type=_positive_int, default=10, help="default: 10")
    parser.add_argument("--seed", type=int, default=None, help="seed of the split, initialization and shuffling")
    parser.add_argument("--dtype", default="float64", choices=("float32", "float64"), help="default: float64")
    parser.add_argument("--no-standardize", dest="standardize", action="store_false",
                        help="train on the raw values (the scaling saved is then the identity)")
    parser.add_argument("--out", default="model.npz", metavar="PATH",
                        help="where to save the model (default: model.npz); an nnfast file there is replaced, "
                             "atomically, and any other file is left alone with an error, before training")
    parser.add_argument("--plot", metavar="PNG", help="save the loss curves as an image (needs matplotlib)")
    parser.add_argument("--quiet", action="store_true", help="no per-epoch progress")


def _names(text):
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise _argument_error(f"expected comma-separated column names, got {text!r}")
    return names


def _sizes(text):
    if text.strip().lower() == "none":
        return []
    try:
        sizes = [int(size) for size in text.split(",")]
    except ValueError:
        sizes = None
    if not sizes or min(sizes) < 1:
        raise _argument_error(f"expected comma-separated positive sizes like 64,64, got {text!r}")
    return sizes


def _number_parser(convert, accepts, expected):
    """An argparse ``type``: ``convert(text)`` if that works and ``accepts`` the value, else
    a usage error saying ``expected``."""
    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not accepts(value):
            raise _argument_error(f"expected {expected}, got {text!r}")
        return value
    return parse


_positive_int = _number_parser(int, lambda value: value >= 1, "an integer >= 1")
_positive_float = _number_parser(float, lambda value: value > 0 and math.isfinite(value), "a number > 0")
_fraction = _number_parser(float, lambda value: 0 <= value < 1, "a fraction in [0, 1)")


def _argument_error(message):
    import argparse

    return argparse.ArgumentTypeError(message)


def choose_loss(loss, target, n_rows):
    """The loss to train with and why, for ``--loss`` ``loss`` and the ``target`` column.

    Returns
    -------
    (str, str)
        The loss name and, for ``"auto"``, the reason it was picked (else "").
    """
    if loss != "auto":
        return loss, ""
    if not is_numeric(target):
        return "cross_entropy", f"the target is not numeric; {np.unique(target).size} classes"
    values = np.unique(target.astype(np.float64))
    integer = bool(np.all(values == np.round(values)))
    if integer and 2 <= values.size <= MAX_AUTO_CLASSES and 2 * values.size <= n_rows:
        return "cross_entropy", f"the target has {values.size} integer values"
    return "mse", "the target is numeric" + (f", with {values.size} distinct values" if integer else "")


def class_labels(target):
    """The sorted distinct labels of ``target`` as strings, and each row's class index.

    Numeric labels sort as numbers and print without a trailing ``.0``
    when they are integers.
    """
    if is_numeric(target):
        numbers = target.astype(np.float64)
        values, indices = np.unique(numbers, return_inverse=True)
        labels = [str(int(v)) if v == int(v) else repr(float(v)) for v in values]
    else:
        values, indices = np.unique(target.astype(np.str_), return_inverse=True)
        labels = [str(value) for value in values]
    return labels, indices


def _split(n_rows, fraction, seed):
    """Row indices of the training and validation parts (validation empty for fraction 0)."""
    n_val = math.ceil(fraction * n_rows) if fraction else 0
    if fraction and not 0 < n_val < n_rows:
        raise ValueError(f"--validation-fraction {fraction} of {n_rows} rows leaves no rows to train or "
                         f"validate on; give more rows or --validation-fraction 0")
    order = np.random.default_rng(seed).permutation(n_rows)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def _standardizer(x, standardize):
    """The mean and scale of each column of ``x``; a constant column gets scale 1."""
    if not standardize:
        return np.zeros(x.shape[1]), np.ones(x.shape[1])
    mean, scale = x.mean(axis=0), x.std(axis=0)
    return mean, np.where(scale > 0, scale, 1.0)


def _check_plot_path(path):
    """Refuse a ``--plot`` matplotlib cannot write, before any training: missing matplotlib or an unknown suffix."""
    try:
        from matplotlib.backend_bases import FigureCanvasBase
    except ImportError:
        raise DataError(path, "--plot needs matplotlib, which is not installed: pip install matplotlib") from None
    suffix = os.path.splitext(path)[1].lstrip(".").lower()
    formats = FigureCanvasBase.get_supported_filetypes()
    if suffix not in formats:
        raise DataError(path, f"--plot writes the formats {', '.join(sorted(formats))}, named by the suffix; "
                              f"got {'no suffix' if not suffix else repr('.' + suffix)}")


def check_writable(path, inputs=(), only_nnfast=True):
    """Raise a DataError unless ``path`` can take an output: its directory exists, it is none of
    ``inputs``, and it is free or (with ``only_nnfast``) an nnfast file.

    A mistyped ``--out`` must not destroy a data file: only what ``save``
    wrote may be replaced. Checked before the work, so none is wasted.
    """
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        raise DataError(path, f"its directory {directory} does not exist")
    if not os.path.lexists(path):
        return
    if any(os.path.exists(other) and os.path.samefile(path, other) for other in inputs):
        raise DataError(path, "it is also an input of this command; choose another output path")
    if not only_nnfast:
        return
    try:
        io.load(path)
    except (OSError, ValueError):
        raise DataError(path, "it exists and is not an nnfast file, so it is not replaced; "
                              "remove it or choose another --out") from None


def _columns(args, table):
    """The target's name and column, the feature names and their matrix (float64), checked."""
    target_name = args.target or table.default_target
    if target_name is None:
        raise DataError(args.data, "name the target column with --target COL "
                                   f"(its columns are {', '.join(map(repr, table.names))})")
    target = table.column(target_name, "target column")
    check_no_missing(table, target_name, "target")
    features = args.features or [name for name in table.names if name != target_name]
    if target_name in features:
        raise DataError(args.data, f"the target column {target_name!r} is among the --features")
    if not features:
        raise DataError(args.data, "no feature columns: the file has only the target column")
    return target_name, target, features, numeric_columns(table, features)


def _targets(args, table, target_name, target, loss, train, metadata):
    """The targets as the net trains on them (class indices, or (n, 1) scaled values) and the raw ones.

    Adds the class labels, or the target's scaling, to ``metadata``.
    """
    if loss == "cross_entropy":
        classes, indices = class_labels(target)
        if len(classes) < 2:
            raise DataError(args.data, f"target column {target_name!r} has a single class {classes[0]!r}: "
                                       f"nothing to classify")
        metadata["classes"] = classes
        return indices, indices
    y = numeric_columns(table, [target_name], role="target")[:, 0]
    if loss == "poisson" and (y < 0).any():
        raise DataError(args.data, f"--loss poisson needs a target >= 0, column {target_name!r} has {y.min():g}")
    # Poisson targets are counts: they stay as they are, the net's outputs being log means.
    standardize = args.standardize and loss != "poisson"
    target_mean = float(y[train].mean()) if standardize else 0.0
    target_scale = float(y[train].std()) if standardize else 1.0
    metadata.update(target_mean=target_mean, target_scale=target_scale if target_scale > 0 else 1.0)
    return ((y - metadata["target_mean"]) / metadata["target_scale"])[:, None], y


def run(args):
    """Train as ``args`` (the parsed command line) says; return the exit status."""
    if args.plot:
        _check_plot_path(args.plot)
        check_writable(args.plot, inputs=[args.data, args.out], only_nnfast=False)
    check_writable(args.out, inputs=[args.data])
    table = read_table(args.data)
    target_name, target, features, x = _columns(args, table)
    loss, reason = choose_loss(args.loss, target, table.n_rows)
    if reason:
        print(f"loss: {loss} (--loss auto: {reason})")
    try:
        train, val = _split(table.n_rows, args.validation_fraction, args.seed)
    except ValueError as error:
        raise DataError(args.data, str(error)) from None
    metadata = {"cli_version": CLI_VERSION, "task": "classification" if loss == "cross_entropy" else "regression",
                "features": features, "target": target_name, "data": os.path.basename(args.data)}
    y, y_raw = _targets(args, table, target_name, target, loss, train, metadata)
    mean, scale = _standardizer(x[train], args.standardize)
    metadata.update(input_mean=mean, input_scale=scale)
    x_scaled = (x - mean) / scale

    n_out = len(metadata["classes"]) if loss == "cross_entropy" else 1
    net = nnfast.Net([len(features), *args.layers, n_out], activation=args.activation, loss=loss,
                     dtype=args.dtype, seed=args.seed)
    kind = f"{args.activation} net" if args.layers else "linear model"
    print(f"training {len(features)}-{'-'.join(map(str, args.layers + [n_out]))} {kind} "
          f"({net.n_params:,} parameters, {args.dtype}) on {len(train)} rows of {args.data}"
          + (f", validating on {len(val)}" if len(val) else ""), flush=True)
    start = time.perf_counter()
    history = net.fit(x_scaled[train], y[train], epochs=args.epochs, optimizer=OPTIMIZERS[args.optimizer](args.lr),
                      batch_size=args.batch_size, seed=args.seed,
                      validation_data=(x_scaled[val], y[val]) if len(val) else None,
                      early_stopping=args.early_stopping, patience=args.patience, verbose=not args.quiet)
    seconds = time.perf_counter() - start
    metadata.update(epoch_loss=history.epoch_loss, train_seconds=seconds,
                    best_epoch=-1 if history.best_epoch is None else int(history.best_epoch))
    if history.val_loss is not None:
        metadata["val_loss"] = np.asarray(history.val_loss, dtype=np.float64)
    model = Model(net, metadata)

    print(f"trained {history.epochs} epochs in {format_seconds(seconds)}"
          + (f"; early stopping kept epoch {history.best_epoch + 1}" if history.best_epoch is not None else ""))
    for part, rows in (("training", train), ("validation", val)):
        if len(rows):
            print(f"{part:>10}: {_metrics(model, x[rows], x_scaled[rows], y[rows], y_raw[rows], target_name)}")
    model.save(args.out)
    print(f"model saved to {args.out}")
    if args.plot:
        _save_plot(history, args.plot, f"{os.path.basename(args.data)}: {target_name}, {loss}")
        print(f"loss curves saved to {args.plot}")
    return 0


def _metrics(model, x, x_scaled, y, y_raw, target_name):
    """The loss (as trained: on scaled targets) and the accuracy, or the RMSE in the target's units, of some rows.

    ``y`` is what the net trained on, ``y_raw`` the target as in the file
    (class indices for a classifier).
    """
    text = f"loss {float(model.net.loss(x_scaled, y)):.6g}"
    if model.is_classifier:
        return text + f", accuracy {np.mean(model.predict(x) == np.asarray(model.classes)[y_raw]):.4f}"
    return text + f", RMSE {np.sqrt(np.mean((model.predict(x) - y_raw) ** 2)):.6g} ({target_name} units)"


def _save_plot(history, path, title):
    """Save ``history.plot()`` to ``path`` (format from its suffix), atomically."""
    import matplotlib

    matplotlib.use("Agg")  # a file, never a window
    import matplotlib.pyplot as pyplot

    from nnfast import io

    axes = history.plot()
    axes.set_title(title, fontsize="medium")
    figure = axes.figure
    file_format = os.path.splitext(path)[1].lstrip(".").lower() or "png"
    try:
        io.write_atomically(path, lambda file: figure.savefig(file, format=file_format, dpi=80))
    finally:
        pyplot.close(figure)
