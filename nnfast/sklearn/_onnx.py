"""skl2onnx converters for nnfast's estimators, so that ``skl2onnx.to_onnx`` converts them in pipelines.

skl2onnx finds a converter by the estimator's exact class, so nnfast's
classes must be registered with it. Importing skl2onnx takes most of a
second, too long to add to every ``import nnfast.sklearn``, so
``register_when_skl2onnx_is_imported`` registers the converters at once if
skl2onnx is already imported, and otherwise right after its first import.

The classifier has scikit-learn's fitted attributes (``coefs_``,
``intercepts_``, ``activation``, ``out_activation_``, ``classes_``,
``_label_binarizer``), so skl2onnx's own MLPClassifier converter converts
it, with its options (``zipmap``, ``nocl``, ``output_class_labels``), and
its limits: a multilabel classifier converts in float32 only, since
onnxruntime has no float64 ``Binarizer``. The regressor has a converter of
its own: skl2onnx's reshapes every output to
one column, which is wrong for several outputs, and knows no ``"exp"``
output (the Poisson loss).
"""
import importlib.abc
import importlib.util
import sys
import warnings

import numpy as np

# The output layer's and hidden layers' activations, as ONNX operators (None: nothing to apply).
_OPERATORS = {"identity": None, "relu": "Relu", "tanh": "Tanh", "logistic": "Sigmoid", "exp": "Exp"}


def register_converters():
    """Register the converters of ``MLPClassifier`` and ``MLPRegressor`` with skl2onnx (imports it)."""
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
    )
    from skl2onnx.operator_converters.multilayer_perceptron import (
        convert_sklearn_mlp_classifier,
    )

    from nnfast.sklearn._mlp import MLPClassifier, MLPRegressor

    update_registered_converter(
        MLPClassifier, "NnfastMLPClassifier", calculate_linear_classifier_output_shapes,
        convert_sklearn_mlp_classifier,
        options={"zipmap": [True, False, "columns"], "output_class_labels": [False, True], "nocl": [True, False]},
    )
    update_registered_converter(MLPRegressor, "NnfastMLPRegressor", _regressor_output_shapes, _convert_regressor)


def register_when_skl2onnx_is_imported():
    """Register the converters now if skl2onnx is imported, else right after it is (if it is installed)."""
    if "skl2onnx" in sys.modules:
        if sys.modules["skl2onnx"] is not None:  # None: its import is blocked
            _register_or_warn()
    elif importlib.util.find_spec("skl2onnx") is not None:
        sys.meta_path.insert(0, _RegisterAfterImport())


def _register_or_warn():
    # A failure here must not break the import of skl2onnx, only the conversion of nnfast's estimators.
    try:
        register_converters()
    except Exception as error:  # pragma: no cover - an skl2onnx whose API changed
        warnings.warn(f"nnfast.sklearn could not register its skl2onnx converters: {error!r}", stacklevel=2)


class _RegisterAfterImport(importlib.abc.MetaPathFinder):
    """An import hook that runs ``register_converters`` once skl2onnx has been imported, then leaves.

    It stays until skl2onnx is really executed: a mere ``importlib.util.find_spec("skl2onnx")``
    (a library checking whether it is installed) also reaches it, and imports nothing.
    """

    def __init__(self):
        self._looking = False  # inside our own find_spec call, which must pass this finder by

    def find_spec(self, name, path, target=None):
        if name != "skl2onnx" or self._looking:
            return None
        self._looking = True
        try:
            spec = importlib.util.find_spec(name)
        finally:
            self._looking = False
        if spec is None or spec.loader is None:
            return spec
        execute = spec.loader.exec_module

        def exec_module(module):
            if self in sys.meta_path:
                sys.meta_path.remove(self)
            execute(module)
            _register_or_warn()

        spec.loader.exec_module = exec_module
        return spec


def _regressor_output_shapes(operator):
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    element = DoubleTensorType if isinstance(operator.inputs[0].type, DoubleTensorType) else FloatTensorType
    operator.outputs[0].type = element([operator.inputs[0].get_first_dimension(), operator.raw_operator.n_outputs_])


def _convert_regressor(scope, operator, container):
    """The regressor as ``Cast``, then per layer ``Gemm`` and its activation, computed in the
    input's precision (float64 for a double input, else float32)."""
    from onnx import TensorProto
    from skl2onnx.common.data_types import guess_proto_type

    estimator = operator.raw_operator
    element = TensorProto.DOUBLE if guess_proto_type(operator.inputs[0].type) == TensorProto.DOUBLE \
        else TensorProto.FLOAT
    dtype = np.float64 if element == TensorProto.DOUBLE else np.float32

    def node(op_type, inputs, **attributes):
        output = scope.get_unique_variable_name(op_type.lower())
        container.add_node(op_type, inputs, [output], name=scope.get_unique_operator_name(op_type), **attributes)
        return output

    def constant(name, array):
        unique = scope.get_unique_variable_name(name)
        array = np.asarray(array, dtype=dtype)
        container.add_initializer(unique, element, array.shape, array.ravel())
        return unique

    value = node("Cast", [operator.inputs[0].full_name], to=element)
    n_layers = len(estimator.coefs_)
    for layer, (weight, bias) in enumerate(zip(estimator.coefs_, estimator.intercepts_)):
        value = node("Gemm", [value, constant("coefficient", weight), constant("intercepts", bias)])
        activation = estimator.activation if layer < n_layers - 1 else estimator.out_activation_
        if _OPERATORS[activation] is not None:
            value = node(_OPERATORS[activation], [value])
    container.add_node("Identity", [value], [operator.outputs[0].full_name],
                       name=scope.get_unique_operator_name("Identity"))
