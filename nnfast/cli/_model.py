"""The command line's model file: an nnfast net file with what ``predict`` needs in its metadata.

``nnfast train`` saves its net with ``nnfast.io.save(net, path,
metadata=...)``, so ``nnfast.load(path)`` still returns the net (which
works on standardized inputs). The metadata entries (see ``nnfast.io``):

================ ======================= ============================================
key              type                    meaning
================ ======================= ============================================
cli_version      int                     ``1``
task             str                     ``"classification"`` or ``"regression"``
features         unicode (n_in,)         the feature columns, in the net's input order
target           str                     the target column
classes          unicode (n_out,)        (classification) the label of each output
input_mean       float64 (n_in,)         subtracted from each feature ...
input_scale      float64 (n_in,)         ... which is then divided by this (> 0)
target_mean      float                   (regression) the net predicts
target_scale     float                   ``(y - target_mean) / target_scale`` (> 0)
data             str                     the file trained on (its name only)
epoch_loss       float64 (epochs,)       the training loss of every epoch
val_loss         float64 (epochs,)       the validation loss of every epoch, if any
best_epoch       int                     the epoch kept by early stopping, or -1
train_seconds    float                   how long ``fit`` took
================ ======================= ============================================
"""
import copy
import os

import numpy as np

import nnfast
from nnfast import io
from nnfast.cli._data import DataError

__all__ = ["Model", "load_model", "CLI_VERSION"]

CLI_VERSION = 1
TASKS = ("classification", "regression")


class Model:
    """A trained net with its input scaling, column names and class labels.

    Parameters
    ----------
    net : nnfast.Net
        Trained on standardized inputs (and, for regression, targets).
    metadata : dict
        The entries of the module docstring.
    """

    def __init__(self, net, metadata):
        self.net = net
        self.metadata = metadata

    @property
    def features(self):
        """The feature column names, in input order."""
        return [str(name) for name in self.metadata["features"]]

    @property
    def classes(self):
        """The class labels (classification), or None."""
        classes = self.metadata.get("classes")
        return None if classes is None else [str(label) for label in classes]

    @property
    def is_classifier(self):
        return self.metadata["task"] == "classification"

    def scaled(self, x):
        """``x`` (raw feature values, (n, n_in)) standardized as in training, a new array."""
        return (x - self.metadata["input_mean"]) / self.metadata["input_scale"]

    def predict(self, x):
        """Predictions for raw features ``x``: class labels (an array of str) or target values (float64)."""
        if self.is_classifier:
            return np.asarray(self.classes)[self.net.predict_classes(self.scaled(x))]
        output = self.net.predict(self.scaled(x))[:, 0].astype(np.float64)
        if self.net.loss_name == "poisson":  # the net's outputs are log means
            return np.exp(output)
        return output * self.metadata["target_scale"] + self.metadata["target_mean"]

    def predict_proba(self, x):
        """Class probabilities for raw features ``x``, shape (n, n_classes), float64."""
        return self.net.predict_proba(self.scaled(x)).astype(np.float64)

    def folded_net(self):
        """A copy of the net that takes raw features and returns target units: the scaling folded in.

        Standardizing is affine, so the first layer absorbs it:
        ``((x - m) / s) @ W + b == x @ (W / s[:, None]) + (b - (m / s) @ W)``,
        and for regression the last layer absorbs the target's
        ``z * t + c``. The copy's outputs are the raw outputs
        ``predict`` starts from (logits, for classification).
        """
        net = copy.deepcopy(self.net)
        weights, biases = [w.astype(np.float64) for w in net.weights], [b.astype(np.float64) for b in net.biases]
        mean, scale = self.metadata["input_mean"], self.metadata["input_scale"]
        biases[0] = biases[0] - (mean / scale) @ weights[0]
        weights[0] = weights[0] / scale[:, None]
        if not self.is_classifier and self.net.loss_name != "poisson":
            target_mean, target_scale = self.metadata["target_mean"], self.metadata["target_scale"]
            weights[-1] = weights[-1] * target_scale
            biases[-1] = biases[-1] * target_scale + target_mean
        net.weights = [w.astype(net.dtype) for w in weights]
        net.biases = [b.astype(net.dtype) for b in biases]
        return net

    def save(self, path):
        """Write the model to ``path`` atomically (``nnfast.io.save``); return the path."""
        return io.save(self.net, path, metadata=self.metadata)


def load_model(path, require_metadata=True):
    """Read a model file written by ``nnfast train`` (or, with ``require_metadata=False``, any net file).

    Returns
    -------
    Model
        Its ``metadata`` is empty for a plain net file.

    Raises
    ------
    DataError
        One line naming the file and the problem: missing, unreadable, not
        a valid nnfast file, an ensemble, or metadata that does not fit the net.
    """
    try:
        net, metadata = io.load_with_metadata(path)
    except OSError as error:  # before ValueError: a missing path raises a subclass of both
        raise DataError(path, error.strerror or str(error)) from None
    except ValueError as error:
        message = str(error)
        prefix = f"{os.fsdecode(path)} is "
        raise DataError(path, message[len(prefix):] if message.startswith(prefix) else message) from None
    if not isinstance(net, nnfast.Net):
        raise DataError(path, f"it holds an {type(net).__module__.split('.')[0]} {type(net).__name__}; "
                              f"the command line works with one nnfast.Net")
    if not metadata:
        if require_metadata:
            raise DataError(path, "it is an nnfast net without the command line's metadata (feature names, "
                                  "scaling): not a model written by `nnfast train`")
        return Model(net, {})
    problem = _metadata_problem(net, metadata)
    if problem:
        raise DataError(path, f"not a valid `nnfast train` model: {problem}")
    return Model(net, metadata)


# Optional entries and their (kind, dimensions): what nnfast info reads.
_RECORD_ENTRIES = {"data": ("U", 0), "epoch_loss": ("f", 1), "val_loss": ("f", 1), "best_epoch": ("i", 0),
                   "train_seconds": ("f", 0)}


def _kind_problem(metadata, key, kind, shape):
    """Why ``metadata[key]`` is not of the ``kind`` ("U", "f", "i") and ``shape`` given (None: any length), or None."""
    value = np.asarray(metadata.get(key))
    fits = value.ndim == len(shape) and all(want is None or want == got for want, got in zip(shape, value.shape))
    if value.dtype.kind != kind or not fits:
        return f"its {key!r} must be of kind {kind!r} and shape {shape}, got shape {value.shape} {value.dtype}"
    return None


def _metadata_problem(net, metadata):
    """What makes ``metadata`` unfit for ``net`` (a sentence), or None.

    Every entry's type and shape is checked before its value is used, so a
    hand-made file gets this sentence, never an exception from the code
    that reads it.
    """
    version = metadata.get("cli_version")
    if not isinstance(version, int) or isinstance(version, bool) or version != CLI_VERSION:
        return f"its metadata version is {version!r}, this nnfast reads {CLI_VERSION}"
    n_in, n_out = net.layers[0], net.layers[-1]
    task = metadata.get("task")
    if not isinstance(task, str) or task not in TASKS:
        return f"unknown task {task!r}"
    required = [("features", "U", (n_in,)), ("input_mean", "f", (n_in,)), ("input_scale", "f", (n_in,)),
                ("target", "U", ())]
    if task == "classification":
        required.append(("classes", "U", (n_out,)))
    else:
        required += [("target_mean", "f", ()), ("target_scale", "f", ())]
    optional = [(key, kind, (None,) * ndim) for key, (kind, ndim) in _RECORD_ENTRIES.items() if key in metadata]
    for key, kind, shape in required:
        problem = _kind_problem(metadata, key, kind, shape)
        if problem:
            return f"{problem} (the net has {n_in} inputs and {n_out} outputs)"
    for key, kind, shape in optional:
        problem = _kind_problem(metadata, key, kind, shape)
        if problem:
            return problem
    if not (metadata["input_scale"] > 0).all():
        return "its 'input_scale' must be > 0"
    if len(set(metadata["features"].tolist())) != n_in:
        return "its 'features' name a column twice"
    if task == "classification":
        if net.loss_name != "cross_entropy":  # what predict_classes and predict_proba above assume
            return f"a classification model has loss 'cross_entropy', its net has {net.loss_name!r}"
    else:
        if n_out != 1:
            return f"a regression model has one output, its net has {n_out}"
        if metadata["target_scale"] <= 0:
            return "its 'target_scale' must be > 0"
    return None
