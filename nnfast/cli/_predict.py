"""``nnfast predict MODEL DATA``: the model's predictions for the rows of DATA, as CSV."""
import csv
import io as text_io
import os
import sys

from nnfast import io
from nnfast.cli._data import DataError, numeric_columns, read_table
from nnfast.cli._model import load_model


def add_arguments(parser):
    """Add ``predict``'s arguments to ``parser``."""
    parser.add_argument("model", metavar="MODEL", help="a model file written by `nnfast train`")
    parser.add_argument("data", metavar="DATA",
                        help="a CSV with the model's feature columns (in any order; others are ignored), "
                             "or an .npz with x")
    parser.add_argument("-o", "--out", metavar="CSV",
                        help="write the predictions here, replacing the file atomically (default: stdout)")
    parser.add_argument("--proba", action="store_true",
                        help="class probabilities, a column per class, instead of labels (classifiers)")


def prediction_rows(model, x, proba):
    """The CSV header and rows of the predictions for raw features ``x``.

    Labels print as written in the training data; numbers with ``repr``,
    which reads back as the same float.
    """
    if proba:
        header = [f"p_{label}" for label in model.classes]
        return header, [[repr(float(p)) for p in row] for row in model.predict_proba(x)]
    values = model.predict(x)
    name = model.metadata["target"]
    if model.is_classifier:
        return [name], [[str(label)] for label in values]
    return [name], [[repr(float(value))] for value in values]


def _check_not_an_input(path, inputs):
    """Refuse to write the output over one of the command's inputs."""
    if os.path.exists(path) and any(os.path.exists(other) and os.path.samefile(path, other) for other in inputs):
        raise DataError(path, "it is also an input of this command; choose another output path")


def run(args):
    """Predict as ``args`` says; return the exit status."""
    if args.out is not None:
        _check_not_an_input(args.out, [args.model, args.data])
    model = load_model(args.model)
    if args.proba and not model.is_classifier:
        raise DataError(args.model, "--proba needs a classifier; this model predicts numbers "
                                    f"({model.metadata['target']!r})")
    table = read_table(args.data)
    features = model.features
    if table.from_npz:  # x's columns, by position
        names = [name for name in table.names if name != "y"]
        if len(names) != len(features):
            raise DataError(args.data, f"its x has {len(names)} columns, the model expects {len(features)} "
                                       f"features ({', '.join(features)})")
        features = names
    x = numeric_columns(table, features)
    header, rows = prediction_rows(model, x, args.proba)
    buffer = text_io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    if args.out is None:
        sys.stdout.write(buffer.getvalue())
    else:
        data = buffer.getvalue().encode("utf-8")
        io.write_atomically(args.out, lambda file: file.write(data))
        print(f"{len(rows)} predictions written to {args.out}", file=sys.stderr)
    return 0
