"""scikit-learn estimators trained by nnfast: ``MLPClassifier`` and ``MLPRegressor``.

Drop-in replacements for ``sklearn.neural_network.MLPClassifier`` and
``MLPRegressor``: the same parameters, defaults, fitted attributes, methods,
messages and random draws, with every epoch (or, for ``solver="lbfgs"``,
every loss-and-gradient evaluation) run by one compiled ``nnfast.Net``
call::

    from nnfast.sklearn import MLPClassifier, MLPRegressor

``from_sklearn(fitted)`` turns a fitted scikit-learn MLP into the nnfast
estimator (the same model, predicting with nnfast's kernels), and
``to_sklearn`` goes back.

Where skl2onnx is installed, ``skl2onnx.to_onnx`` converts both (in
pipelines too): their converters are registered when skl2onnx is imported.

scikit-learn is an optional dependency of nnfast: ``pip install nnfast[sklearn]``.
"""
try:
    import sklearn  # noqa: F401
except ImportError as error:
    raise ImportError(
        "nnfast.sklearn needs scikit-learn, which is not installed: "
        "pip install nnfast[sklearn] (or pip install scikit-learn)"
    ) from error

from nnfast.sklearn import _onnx
from nnfast.sklearn._convert import from_sklearn, to_sklearn
from nnfast.sklearn._mlp import MLPClassifier, MLPRegressor

__all__ = ["MLPClassifier", "MLPRegressor", "from_sklearn", "to_sklearn"]

_onnx.register_when_skl2onnx_is_imported()
