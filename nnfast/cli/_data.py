"""Reading the command line's data files: a CSV table with a header row, or an ``.npz`` with ``x`` and ``y``.

``read_table`` returns a ``Table`` of named columns of strings (CSV) or
numbers (``.npz``); ``numeric_columns`` turns the named ones into a float64
matrix, with an error naming the column for a non-numeric or missing
value. A CSV is read with pandas when it is installed and with the
``csv`` module otherwise; both read every field as text and the same
code converts it, so the results are the same either way.
"""
import csv
import io
import os

import numpy as np

from nnfast.io import open_regular_file

__all__ = ["DataError", "Table", "read_table", "numeric_columns", "check_no_missing", "is_numeric", "MISSING"]

# Fields that mean "no value": an empty field, and the spellings of it
# spreadsheets and pandas write. They are refused with an error naming
# the column, never read as zero or NaN.
MISSING = frozenset(["", "na", "n/a", "nan", "null", "none", "-nan", "#n/a"])

_NPZ_MAGIC = b"PK\x03\x04"


class DataError(Exception):
    """A data or model file the command line cannot use.

    Parameters
    ----------
    path : str
        The file.
    problem : str
        What is wrong with it, one line.
    """

    def __init__(self, path, problem):
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


class Table:
    """Named columns of equal length, in the file's order.

    Attributes
    ----------
    path : str
        The file read.
    names : list of str
        The column names.
    columns : dict of str to ndarray
        Each column, 1-d: unicode strings for a CSV, numbers for an ``.npz``.
    n_rows : int
    default_target : str or None
        The target column when none is named: ``"y"`` for an ``.npz`` that has one.
    from_npz : bool
        Whether the columns are an ``.npz``'s ``x`` (and ``y``), which have no names of their own.
    """

    def __init__(self, path, names, columns, default_target=None, from_npz=False):
        self.path = path
        self.from_npz = from_npz
        self.names = list(names)
        self.columns = columns
        self.default_target = default_target
        self.n_rows = len(next(iter(columns.values()))) if columns else 0

    def column(self, name, role="column"):
        """The column ``name``, or a DataError listing the columns there are."""
        if name not in self.columns:
            known = ", ".join(map(repr, self.names))
            raise DataError(self.path, f"no {role} {name!r} (its columns are {known})")
        return self.columns[name]


def read_table(path, use_pandas=None):
    """Read the CSV or ``.npz`` file ``path`` as a ``Table``.

    Parameters
    ----------
    path : str
    use_pandas : bool or None, default None
        Read a CSV with pandas (True) or the ``csv`` module (False); None
        uses pandas if it is installed. The result is the same.

    Returns
    -------
    Table
        For an ``.npz``: columns ``x0 ... x<k-1>`` (the columns of ``x``,
        shape (n, k), or ``x`` itself if it is 1-d) and ``y`` (which must
        be 1-d or have one column), when it holds a ``y``.

    Raises
    ------
    DataError
        If the file is missing, not a regular file, not UTF-8 text with a
        header row and rows of as many fields, or an ``.npz`` without a
        numeric ``x``.
    """
    try:
        descriptor, _ = open_regular_file(path, what="data file")
        with os.fdopen(descriptor, "rb") as file:
            data = file.read()
    except OSError as error:  # before ValueError: a missing path raises a subclass of both
        raise DataError(path, error.strerror or str(error)) from None
    except ValueError as error:  # not a regular file; the message starts with the path
        raise DataError(path, str(error).split("data file: ", 1)[-1]) from None
    if data.startswith(_NPZ_MAGIC):
        return _read_npz(path, data)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise DataError(path, f"not a CSV file: it is not UTF-8 text (byte {error.start} is "
                              f"{data[error.start:error.start + 1]!r}); give a CSV or an .npz with x and y") from None
    if "\x00" in text:
        raise DataError(path, "not a CSV file: it holds NUL bytes (a binary file?); give a CSV or an .npz")
    if use_pandas is None:
        use_pandas = _pandas() is not None
    names, rows = _split_with_pandas(path, text) if use_pandas else _split_csv(path, text)
    _check_header(path, names)
    if rows.shape[0] == 0:
        raise DataError(path, "it has a header row but no data rows")
    return Table(path, names, {name: rows[:, index] for index, name in enumerate(names)})


def _pandas():
    try:
        import pandas
    except ImportError:
        return None
    return pandas


def _split_csv(path, text):
    """The header and the fields (a 2-d unicode array) of the CSV ``text``, with the ``csv`` module."""
    try:
        records = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as error:
        raise DataError(path, f"not a valid CSV file: {error}") from None
    records = [record for record in records if record]  # blank lines, as pandas skips them
    if not records:
        raise DataError(path, "it is empty: a CSV file needs a header row and data rows")
    header, rows = [name.strip() for name in records[0]], records[1:]
    for number, row in enumerate(rows, start=1):
        if len(row) > len(header):
            raise DataError(path, f"data row {number} has {len(row)} fields, but the header has {len(header)}")
        # A short row's last fields are empty, as pandas reads them: missing values, refused where used.
        row.extend([""] * (len(header) - len(row)))
    fields = np.array(rows, dtype=np.str_).reshape(len(rows), len(header))
    return header, np.char.strip(fields) if fields.size else fields


def _split_with_pandas(path, text):
    """As ``_split_csv``, with pandas' parser (every field read as text, none as missing)."""
    pandas = _pandas()
    try:
        frame = pandas.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skip_blank_lines=True,
                                skipinitialspace=False, on_bad_lines="error")
    except pandas.errors.EmptyDataError:
        raise DataError(path, "it is empty: a CSV file needs a header row and data rows") from None
    except (pandas.errors.ParserError, ValueError) as error:  # a row with more fields than the header
        # pandas words a ragged row as "Expected 4 fields in line 7, saw 5"
        raise DataError(path, f"not a valid CSV file: {str(error).strip().splitlines()[-1]}") from None
    header = [str(name).strip() for name in frame.columns]
    fields = frame.to_numpy(dtype=np.str_).reshape(len(frame), len(header))
    return header, np.char.strip(fields) if fields.size else fields


def _check_header(path, names):
    seen = set()
    for index, name in enumerate(names):
        if not name:
            raise DataError(path, f"column {index + 1} of the header row has no name")
        if name in seen:
            raise DataError(path, f"the header row names column {name!r} twice")
        seen.add(name)


def _read_npz(path, data):
    """A Table of the ``x`` (and ``y``) of an ``.npz`` file's bytes; nothing is unpickled."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files if name in ("x", "y")}
    except (ValueError, OSError, EOFError) as error:
        raise DataError(path, f"cannot read it as an .npz file: {error}") from None
    if "x" not in arrays:
        raise DataError(path, "an .npz data file needs an array 'x' (and 'y' to train on); it has none named 'x'")
    x = arrays["x"]
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.dtype.kind not in "biuf":
        raise DataError(path, f"its 'x' must be a 2-d array of numbers, got shape {x.shape} of dtype {x.dtype}")
    columns = {f"x{index}": x[:, index] for index in range(x.shape[1])}
    if "y" in arrays:
        y = arrays["y"]
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1 or y.shape[0] != x.shape[0] or y.dtype.kind not in "biufU":
            raise DataError(path, f"its 'y' must be 1-d (one target) with a row per row of x {x.shape}, "
                                  f"got shape {y.shape} of dtype {y.dtype}")
        columns["y"] = y
    if x.shape[0] == 0:
        raise DataError(path, "its 'x' has no rows")
    return Table(path, list(columns), columns, default_target="y" if "y" in columns else None, from_npz=True)


def check_no_missing(table, name, role):
    """Raise a DataError naming column ``name`` if it holds a missing value (see ``MISSING``)."""
    column = table.column(name, f"{role} column")
    if column.dtype.kind == "U":
        missing = np.flatnonzero(np.isin(np.char.lower(column), list(MISSING)))
        if missing.size:
            raise DataError(table.path, f"{role} column {name!r} has a missing value in data row "
                                        f"{missing[0] + 1} ({str(column[missing[0]])!r})")


def is_numeric(column):
    """Whether every value of ``column`` (from a Table) is a number, none missing."""
    if column.dtype.kind in "biuf":
        return True
    try:
        _to_float(column)
    except ValueError:
        return False
    return not np.isin(np.char.lower(column), list(MISSING)).any()


def _to_float(column):
    return column.astype(np.float64) if column.dtype.kind in "biuf" else np.array(column, dtype=np.float64)


def numeric_columns(table, names, role="feature"):
    """The columns ``names`` of ``table`` as a float64 matrix, shape (n_rows, len(names)).

    Raises
    ------
    DataError
        Naming the first column that is missing, holds a missing value
        (see ``MISSING``), a value that is not a number, or a non-finite one.
    """
    matrix = np.empty((table.n_rows, len(names)))
    for index, name in enumerate(names):
        check_no_missing(table, name, role)
        column = table.column(name, f"{role} column")
        if column.dtype.kind == "U":
            try:
                matrix[:, index] = _to_float(column)
            except ValueError:
                bad = str(next(value for value in column if not _parses(value)))
                raise DataError(table.path, f"{role} column {name!r} is not numeric (it holds {bad!r}): "
                                            f"{role} values must be numbers") from None
        else:
            matrix[:, index] = _to_float(column)
        infinite = np.flatnonzero(~np.isfinite(matrix[:, index]))
        if infinite.size:
            raise DataError(table.path, f"{role} column {name!r} has the non-finite value "
                                        f"{matrix[infinite[0], index]} in data row {infinite[0] + 1}")
    return matrix


def _parses(value):
    try:
        float(value)
    except ValueError:
        return False
    return True
