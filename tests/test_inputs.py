"""What the nets accept, what they reject (and with which message), and that user arrays stay untouched."""
import copy
import warnings
from types import SimpleNamespace

import numpy as np
import pytest

from tests.conftest import assert_identical, params_of

LAYERS = [3, 4, 2]


def results_of(net, x, y, lr=0.01):
    """Everything the net computes on ``(x, y)``, each from a fresh copy of the net."""
    out = {
        "predict": net.predict(x),
        "forward": net.forward(x),
        "loss": net.loss(x, y),
        "gradients": net.gradients(x, y),
    }
    stepped = copy.deepcopy(net)
    out["train_step"] = (stepped.train_step(x, y, lr), stepped.weights, stepped.biases)
    fitted = copy.deepcopy(net)
    history = fitted.fit(x, y, epochs=2, lr=lr, batch_size=2, seed=0)
    out["fit"] = (history.loss, fitted.weights, fitted.biases)
    return out


def reversed_bytes(a):
    """``a`` with the opposite byte order (same values)."""
    return a.astype(a.dtype.newbyteorder())


def unaligned(a):
    """A copy of ``a`` whose data start one byte past an aligned address."""
    raw = np.zeros(a.nbytes + 1, dtype=np.uint8)
    copy = raw[1:].view(a.dtype).reshape(a.shape)
    copy[...] = a
    assert not copy.flags.aligned
    return copy


class Subclass(np.ndarray):
    """An ndarray subclass, which the fast path leaves to the validating one."""


def readonly(a):
    a = a.copy()
    a.flags.writeable = False
    return a


RNG = np.random.default_rng(7)
X = RNG.standard_normal((8, 3))
Y = RNG.standard_normal((8, 2))
BIG = RNG.standard_normal((16, 6))  # strided views of this hold X-shaped data
Y1 = RNG.standard_normal(8)

# (id, make x, make y): each x/y equals X/Y (or Y1) as values, in another form.
ACCEPTED = [
    ("lists", lambda: X.tolist(), lambda: Y.tolist()),
    ("tuples", lambda: tuple(map(tuple, X.tolist())), lambda: Y),
    ("int64", lambda: np.round(3 * X).astype(np.int64), lambda: np.round(Y).astype(np.int32)),
    ("bool", lambda: X > 0, lambda: Y > 0),
    ("float32", lambda: X.astype(np.float32), lambda: Y.astype(np.float32)),
    ("float64", lambda: X, lambda: Y),
    ("float16", lambda: X.astype(np.float16), lambda: Y.astype(np.float16)),
    ("fortran", lambda: np.asfortranarray(X), lambda: np.asfortranarray(Y)),
    ("strided-rows", lambda: BIG[::2, :3], lambda: BIG[1::2, 4:]),
    ("strided-columns", lambda: BIG[:8, ::2], lambda: BIG[8:, 1::3]),
    ("transposed", lambda: np.ascontiguousarray(X.T).T, lambda: np.ascontiguousarray(Y.T).T),
    ("negative-strides", lambda: X[::-1, ::-1], lambda: Y[::-1]),
    ("read-only", lambda: readonly(X), lambda: readonly(Y)),
    ("byte-swapped", lambda: reversed_bytes(X), lambda: reversed_bytes(Y)),
    ("unaligned", lambda: unaligned(X), lambda: unaligned(Y)),
    ("subclass", lambda: X.view(Subclass), lambda: Y.view(Subclass)),
]


@pytest.mark.parametrize("name, make_x, make_y", ACCEPTED, ids=[case[0] for case in ACCEPTED])
def test_accepted_inputs_equal_contiguous_copies(net_class, dtype, name, make_x, make_y):
    """Any real array-like gives exactly the results of a C-contiguous copy in the net's dtype."""
    net = net_class(LAYERS, dtype=dtype, seed=1)
    x, y = make_x(), make_y()
    expected = results_of(net, np.ascontiguousarray(x, dtype=dtype), np.ascontiguousarray(y, dtype=dtype))
    assert_identical(results_of(net, x, y), expected)


def test_one_dimensional_targets_for_a_single_output(net_class, dtype):
    """y of shape (n,) is accepted when the net has one output, and means y[:, None]."""
    net = net_class([3, 4, 1], dtype=dtype, seed=2)
    assert_identical(results_of(net, X, Y1), results_of(net, X, Y1[:, None]))
    assert_identical(results_of(net, X, Y1[::-1]), results_of(net, X, Y1[::-1, None].copy()))


def test_parameters_accept_any_real_array(net_class):
    """weights/biases accept lists, ints, float32, and Fortran or strided arrays, copying the values."""
    net = net_class(LAYERS, seed=0)
    w0 = np.arange(12, dtype=np.int64).reshape(4, 3).T  # transposed view, integers
    w1 = np.asfortranarray(np.linspace(-1, 1, 8, dtype=np.float32).reshape(4, 2))
    net.weights = (w0, w1.tolist())
    net.biases = [np.array([1, 2, 3, 4, 5, 6, 7, 8])[::2], [0.5, -0.5]]
    np.testing.assert_array_equal(net.weights[0], w0)
    np.testing.assert_array_equal(net.weights[1], w1.astype(np.float64))
    np.testing.assert_array_equal(net.biases[0], [1, 3, 5, 7])
    np.testing.assert_array_equal(net.biases[1], [0.5, -0.5])
    assert all(p.dtype == np.float64 and p.flags.c_contiguous for p in net.weights + net.biases)


def test_parameter_getters_return_copies(net_class):
    """Changing arrays read from weights/biases does not change the net, nor does training change them."""
    net = net_class(LAYERS, seed=0)
    weights, biases = net.weights, net.biases
    saved = params_of(net)
    weights[0][...] = 99.0
    biases[1][...] = 99.0
    np.testing.assert_array_equal(params_of(net), saved)
    snapshot = copy.deepcopy((weights, biases))
    net.train_step(X, Y, 0.01)
    assert_identical((weights, biases), snapshot)
    assert not np.array_equal(params_of(net), saved)


def test_parameter_setters_copy_in(net_class):
    """Arrays assigned to weights/biases are copied: changing them afterwards does not change the net."""
    net = net_class(LAYERS, seed=0)
    weights = [np.ones((3, 4)), np.ones((4, 2))]
    biases = [np.zeros(4), np.zeros(2)]
    net.weights, net.biases = weights, biases
    weights[0][...] = 5.0
    biases[0][...] = 5.0
    assert np.all(net.weights[0] == 1.0) and np.all(net.biases[0] == 0.0)


def test_valid_calls_leave_user_arrays_unchanged(net_class, dtype):
    """No operation writes into x, y or the arrays assigned as parameters.

    float64 C-contiguous inputs to a float64 net are handed to the kernels
    without a copy, so this also checks that the kernels only read them.
    """
    net = net_class(LAYERS, dtype=dtype, seed=3)
    x = np.ascontiguousarray(X, dtype=dtype)
    y = np.ascontiguousarray(Y, dtype=dtype)
    weights = [w.astype(dtype) for w in net.weights]
    biases = [np.full(b.shape, 0.1, dtype=dtype) for b in net.biases]
    originals = copy.deepcopy((x, y, weights, biases))
    net.weights, net.biases = weights, biases
    net.predict(x)
    net.forward(x)
    net.loss(x, y)
    net.gradients(x, y)
    net.train_step(x, y, 0.01)
    net.fit(x, y, epochs=2, lr=0.01)
    net.fit(x, y, epochs=2, lr=0.01, batch_size=3, shuffle=False)
    net.fit(x, y, epochs=2, lr=0.01, batch_size=3, seed=1)
    assert_identical((x, y, weights, biases), originals)


def test_parameter_properties(net_class):
    """layers, dtype, n_params, bias, loss_name, activation and negative_slope describe the net;
    bias and activation are per-layer lists."""
    net = net_class((3, 4, 2), bias=False, loss="mse", dtype="float32", seed=0)
    assert net.layers == (3, 4, 2)
    assert net.dtype == np.dtype(np.float32)
    assert net.n_params == 3 * 4 + 4 * 2
    assert (net.bias, net.loss_name, net.activation) == ([False, False], "mse", ["relu"])
    assert net.negative_slope == 0.01
    assert net_class(np.array([3, 4, 2])).n_params == 3 * 4 + 4 + 4 * 2 + 2
    assert net.biases == []
    assert net.optimizer is None


def test_per_layer_properties(net_class):
    """Per-layer activation and bias lists are kept as given; biases lists the layers that have one."""
    net = net_class([3, 4, 5, 2], activation=("tanh", "leaky_relu"), negative_slope=0.25,
                    bias=[False, True, False], seed=0)
    assert net.activation == ["tanh", "leaky_relu"] and net.negative_slope == 0.25
    assert net.bias == [False, True, False]
    assert [b.shape for b in net.biases] == [(5,)]
    assert net.n_params == 3 * 4 + 4 * 5 + 5 + 5 * 2
    weight_grads, bias_grads = net.gradients(np.ones((2, 3)), np.zeros((2, 2)))
    assert [g.shape for g in bias_grads] == [(5,)]
    # One name (or flag) stands for every layer; a net without hidden layers has no activations.
    assert net_class([3, 4, 5, 2], activation="sigmoid").activation == ["sigmoid", "sigmoid"]
    assert net_class([3, 4, 5, 2], bias=True).bias == [True, True, True]
    assert net_class([3, 2], activation=[]).activation == []
    assert net_class([3, 2]).activation == []
    # The lists are copies: changing them does not change the net.
    net.activation.append("relu")
    net.bias[0] = True
    assert net.activation == ["tanh", "leaky_relu"] and net.bias == [False, True, False]


# -- bad inputs ----------------------------------------------------------------


def bad_data():
    """User-owned arrays (valid and invalid) that the bad calls below receive."""
    rng = np.random.default_rng(0)
    d = SimpleNamespace()
    d.x = rng.standard_normal((6, 3))
    d.y = rng.standard_normal((6, 2))
    d.y1 = rng.standard_normal(6)
    d.x_nan = d.x.copy()
    d.x_nan[2, 1] = np.nan
    d.x_inf = np.asfortranarray(d.x.copy())
    d.x_inf[4, 0] = np.inf
    d.y_ninf = d.y.copy()
    d.y_ninf[5, 1] = -np.inf
    d.x_huge = d.x.copy()
    d.x_huge[1, 2] = 1e300
    d.x_f32_nan = d.x.astype(np.float32)
    d.x_f32_nan[0, 0] = np.nan
    d.x_complex = d.x.astype(np.complex128)
    d.x_strings = np.array([["a", "b", "c"]] * 6)
    d.x_objects = np.array([[1.0, None, 2.0]] * 6, dtype=object)
    d.w = [rng.standard_normal((3, 4)), rng.standard_normal((4, 2))]
    d.w_nan = [w.copy() for w in d.w]
    d.w_nan[1][3, 1] = np.nan
    d.w_bad_shape = [d.w[0], rng.standard_normal((2, 4))]
    d.b = [np.zeros(4), np.zeros(2)]
    d.b_inf = [np.zeros(4), np.array([0.0, np.inf])]
    return d


def fresh(cls, **kwargs):
    return cls(LAYERS, seed=0, **kwargs)


def fit(cls, d, **kwargs):
    """A fit call with valid defaults, overridden by ``kwargs``."""
    args = dict(epochs=1, lr=0.01)
    args.update(kwargs)
    return fresh(cls).fit(d.x, d.y, **args)


# (id, call(net_class, data), exception, message pattern)
BAD_CALLS = [
    # constructor
    ("layers-int", lambda c, d: c(5), TypeError, r"^layers must be a sequence of at least two positive ints"),
    ("layers-str", lambda c, d: c("34"), TypeError, r"^layers must be a sequence"),
    ("layers-generator", lambda c, d: c(n for n in (3, 2)), TypeError, r"^layers must be a sequence"),
    ("layers-one", lambda c, d: c([3]), ValueError, r"^layers must be a sequence of at least two"),
    ("layers-empty", lambda c, d: c([]), ValueError, r"^layers must be a sequence"),
    ("layers-zero", lambda c, d: c([3, 0, 1]), ValueError, r"^layers must be .*got \[3, 0, 1\]"),
    ("layers-negative", lambda c, d: c([3, -2, 1]), ValueError, r"^layers must be .*got \[3, -2, 1\]"),
    ("layers-float", lambda c, d: c([3, 2.0, 1]), TypeError, r"^layers must be .*got \[3, 2.0, 1\]"),
    ("layers-bool", lambda c, d: c([3, True]), TypeError, r"^layers must be .*got \[3, True\]"),
    ("layers-too-wide", lambda c, d: c([3, 2**31]),
     ValueError, r"^layers must hold sizes of at most 2147483647, got 2147483648"),
    ("loss-unknown", lambda c, d: c(LAYERS, loss="mae"), ValueError,
     r"^loss must be one of 'sse', 'mse', 'cross_entropy', 'binary_cross_entropy', 'poisson', 'squared_error', 'binary_log_loss', got 'mae'"),
    ("loss-none", lambda c, d: c(LAYERS, loss=None), ValueError, r"^loss must be one of"),
    ("loss-cross-entropy-one-output", lambda c, d: c([3, 1], loss="cross_entropy"), ValueError,
     r"^loss='cross_entropy' needs at least 2 outputs"),
    ("activation-unknown", lambda c, d: c(LAYERS, activation="softplus"), ValueError,
     r"^activation must be one of 'relu', 'leaky_relu', 'tanh', 'sigmoid', 'identity', got 'softplus'"),
    ("activation-case", lambda c, d: c(LAYERS, activation="ReLU"), ValueError,
     r"^activation must be one of .*got 'ReLU'"),
    ("activation-none", lambda c, d: c(LAYERS, activation=None), ValueError, r"^activation must be one of"),
    ("activation-list-too-long", lambda c, d: c(LAYERS, activation=["relu", "tanh"]), ValueError,
     r"^activation must be one value or a list of 1, got 2"),
    ("activation-list-too-short", lambda c, d: c([3, 4, 4, 2], activation=["relu"]), ValueError,
     r"^activation must be one value or a list of 2, got 1"),
    ("activation-list-item", lambda c, d: c([3, 4, 4, 2], activation=["relu", "gelu"]), ValueError,
     r"^activation\[1\] must be one of .*got 'gelu'"),
    ("negative-slope-negative", lambda c, d: c(LAYERS, activation="leaky_relu", negative_slope=-0.1), ValueError,
     r"^negative_slope must be a finite number in \[0, inf\), got -0.1"),
    ("negative-slope-nan", lambda c, d: c(LAYERS, negative_slope=float("nan")), ValueError,
     r"^negative_slope must be a finite number"),
    ("negative-slope-str", lambda c, d: c(LAYERS, negative_slope="0.1"), TypeError,
     r"^negative_slope must be a number, got '0.1'"),
    ("bias-list-too-short", lambda c, d: c(LAYERS, bias=[True]), ValueError,
     r"^bias must be one value or a list of 2, got 1"),
    ("bias-list-item", lambda c, d: c(LAYERS, bias=[True, 1]), TypeError, r"^bias\[1\] must be True or False, got 1"),
    ("init-unknown", lambda c, d: c(LAYERS, init="xavier"), ValueError,
     r"^init must be one of 'auto', 'he_normal', 'he_uniform', 'glorot_normal', 'glorot_uniform', 'normal', "
     r"got 'xavier'"),
    ("init-std-negative", lambda c, d: c(LAYERS, init="normal", init_std=-1.0), ValueError,
     r"^init_std must be a finite number in \[0, inf\), got -1.0"),
    ("init-std-inf", lambda c, d: c(LAYERS, init="normal", init_std=float("inf")), ValueError, r"^init_std must be"),
    ("init-std-str", lambda c, d: c(LAYERS, init_std="big"), TypeError, r"^init_std must be a number"),
    ("dtype-int32-name", lambda c, d: c(LAYERS, dtype="int32"),
     TypeError, r"^dtype must be float32 or float64, got 'int32'"),
    ("dtype-int64", lambda c, d: c(LAYERS, dtype=np.int64), TypeError, r"^dtype must be float32 or float64"),
    ("dtype-unknown", lambda c, d: c(LAYERS, dtype="foo"), TypeError, r"^dtype must be float32 or float64, got 'foo'"),
    ("dtype-not-a-dtype", lambda c, d: c(LAYERS, dtype=1), TypeError, r"^dtype must be float32 or float64, got 1"),
    ("dtype-float16", lambda c, d: c(LAYERS, dtype=np.float16), TypeError, r"^dtype must be float32 or float64"),
    ("dtype-complex", lambda c, d: c(LAYERS, dtype=complex), TypeError, r"^dtype must be float32 or float64"),
    ("bias-str", lambda c, d: c(LAYERS, bias="yes"), TypeError, r"^bias must be True or False, got 'yes'"),
    ("seed-negative", lambda c, d: c(LAYERS, seed=-1), ValueError, r"^seed must be an int >= 0, got -1"),
    ("seed-float", lambda c, d: c(LAYERS, seed=1.5), TypeError, r"^seed must be an int >= 0, got 1.5"),
    # x
    ("x-1d", lambda c, d: fresh(c).predict(d.x[0]), ValueError,
     r"^x must be a 2-D array of shape \(n_samples, 3\), got shape \(3,\)"),
    ("x-3d", lambda c, d: fresh(c).predict(d.x[None]), ValueError, r"^x must be a 2-D array .*got shape \(1, 6, 3\)"),
    ("x-scalar", lambda c, d: fresh(c).predict(1.0), ValueError, r"^x must be a 2-D array .*got shape \(\)"),
    ("x-features", lambda c, d: fresh(c).predict(d.x[:, :2]), ValueError, r"^x has 2 features, but the net expects 3"),
    ("x-features-loss", lambda c, d: fresh(c).loss(d.x.T, d.y),
     ValueError, r"^x has 6 features, but the net expects 3"),
    ("x-empty", lambda c, d: fresh(c).predict(d.x[:0]),
     ValueError, r"^x must hold at least one sample, got shape \(0, 3\)"),
    ("x-empty-fit", lambda c, d: fresh(c).fit(d.x[:0], d.y[:0], epochs=1, lr=0.1), ValueError,
     r"^x must hold at least one sample"),
    ("x-nan", lambda c, d: fresh(c).predict(d.x_nan), ValueError, r"^x must be finite, got nan at index \(2, 1\)"),
    ("x-inf-fortran", lambda c, d: fresh(c).train_step(d.x_inf, d.y, 0.1), ValueError,
     r"^x must be finite, got inf at index \(4, 0\)"),
    ("x-nan-float32", lambda c, d: fresh(c, dtype=np.float32).forward(d.x_f32_nan), ValueError,
     r"^x must be finite, got nan at index \(0, 0\)"),
    ("x-too-big-for-float32", lambda c, d: fresh(c, dtype=np.float32).predict(d.x_huge), ValueError,
     r"^x must fit in float32, got 1e\+300 at index \(1, 2\)"),
    ("x-complex", lambda c, d: fresh(c).predict(d.x_complex), TypeError,
     r"^x must hold real numbers, got an array of dtype complex128"),
    ("x-strings", lambda c, d: fresh(c).predict(d.x_strings), TypeError, r"^x must hold real numbers"),
    ("x-string-list", lambda c, d: fresh(c).gradients([["1", "2", "3"]], [[1, 2]]), TypeError,
     r"^x must hold real numbers"),
    ("x-objects", lambda c, d: fresh(c).fit(d.x_objects, d.y, epochs=1, lr=0.1),
     TypeError, r"^x must hold real numbers"),
    # y
    ("y-rows", lambda c, d: fresh(c).loss(d.x, d.y[:5]), ValueError, r"^y has 5 rows, but x has 6"),
    ("y-rows-1d", lambda c, d: fresh(c).loss(d.x[:4], d.y[:5]), ValueError, r"^y has 5 rows, but x has 4"),
    ("y-columns", lambda c, d: fresh(c).gradients(d.x, d.y[:, :1]), ValueError,
     r"^y must have shape \(6, 2\), got shape \(6, 1\)"),
    ("y-1d-for-2-outputs", lambda c, d: fresh(c).train_step(d.x, d.y1, 0.1), ValueError,
     r"^y must have shape \(6, 2\), got shape \(6,\)"),
    ("y-row-vector", lambda c, d: c([3, 1]).fit(d.x, d.y1[None], epochs=1, lr=0.1), ValueError,
     r"^y must have shape \(6, 1\) or \(6,\), got shape \(1, 6\)"),
    ("y-3d", lambda c, d: fresh(c).loss(d.x, d.y[:, :, None]), ValueError, r"^y must have shape \(6, 2\)"),
    ("y-ninf", lambda c, d: fresh(c).fit(d.x, d.y_ninf, epochs=1, lr=0.1), ValueError,
     r"^y must be finite, got -inf at index \(5, 1\)"),
    ("y-complex", lambda c, d: fresh(c).loss(d.x, d.y.astype(complex)), TypeError, r"^y must hold real numbers"),
    # parameters
    ("weights-count", lambda c, d: setattr(fresh(c), "weights", d.w[:1]), ValueError,
     r"^weights must be a list of 2 arrays, got 1"),
    ("weights-array", lambda c, d: setattr(fresh(c), "weights", d.w[0]), TypeError,
     r"^weights must be a list of 2 arrays, got ndarray"),
    ("weights-shape", lambda c, d: setattr(fresh(c), "weights", d.w_bad_shape), ValueError,
     r"^weights\[1\] must have shape \(4, 2\), got shape \(2, 4\)"),
    ("weights-nan", lambda c, d: setattr(fresh(c), "weights", d.w_nan), ValueError,
     r"^weights\[1\] must be finite, got nan at index \(3, 1\)"),
    ("weights-complex", lambda c, d: setattr(fresh(c), "weights", [d.w[0].astype(complex), d.w[1]]), TypeError,
     r"^weights\[0\] must hold real numbers"),
    ("biases-inf", lambda c, d: setattr(fresh(c), "biases", d.b_inf), ValueError,
     r"^biases\[1\] must be finite, got inf at index \(1,\)"),
    ("biases-shape", lambda c, d: setattr(fresh(c), "biases", [d.b[1], d.b[0]]), ValueError,
     r"^biases\[0\] must have shape \(4,\), got shape \(2,\)"),
    ("biases-on-bias-free-net", lambda c, d: setattr(fresh(c, bias=False), "biases", d.b), ValueError,
     r"^biases must be a list of 0 arrays, got 2"),
    # lr
    ("lr-zero", lambda c, d: fresh(c).train_step(d.x, d.y, 0.0),
     ValueError, r"^lr must be a positive finite number, got 0.0"),
    ("lr-negative", lambda c, d: fit(c, d, lr=-0.1), ValueError, r"^lr must be a positive finite number, got -0.1"),
    ("lr-nan", lambda c, d: fit(c, d, lr=float("nan")), ValueError, r"^lr must be a positive finite number, got nan"),
    ("lr-inf", lambda c, d: fresh(c).train_step(d.x, d.y, np.inf),
     ValueError, r"^lr must be a positive finite number, got inf"),
    ("lr-str", lambda c, d: fit(c, d, lr="0.1"), TypeError, r"^lr must be a positive finite number, got '0.1'"),
    ("lr-none", lambda c, d: fresh(c).train_step(d.x, d.y, None),
     TypeError, r"^lr must be a positive finite number, got None"),
    ("lr-bool", lambda c, d: fit(c, d, lr=True), TypeError, r"^lr must be a positive finite number, got True"),
    ("lr-huge-int", lambda c, d: fit(c, d, lr=10**400), ValueError, r"^lr must be a positive finite number, got 1000"),
    ("lr-array", lambda c, d: fit(c, d, lr=np.array([0.1])), TypeError, r"^lr must be a positive finite number"),
    # fit options
    ("epochs-negative", lambda c, d: fit(c, d, epochs=-1), ValueError, r"^epochs must be an int >= 0, got -1"),
    ("epochs-float", lambda c, d: fit(c, d, epochs=2.0), TypeError, r"^epochs must be an int >= 0, got 2.0"),
    ("epochs-bool", lambda c, d: fit(c, d, epochs=True), TypeError, r"^epochs must be an int >= 0, got True"),
    ("epochs-none", lambda c, d: fit(c, d, epochs=None), TypeError, r"^epochs must be an int >= 0, got None"),
    ("batch-size-zero", lambda c, d: fit(c, d, batch_size=0), ValueError, r"^batch_size must be an int >= 1, got 0"),
    ("batch-size-negative", lambda c, d: fit(c, d, batch_size=-3),
     ValueError, r"^batch_size must be an int >= 1, got -3"),
    ("batch-size-float", lambda c, d: fit(c, d, batch_size=2.5),
     TypeError, r"^batch_size must be an int >= 1, got 2.5"),
    ("batch-size-bool", lambda c, d: fit(c, d, batch_size=True),
     TypeError, r"^batch_size must be an int >= 1, got True"),
    ("shuffle-str", lambda c, d: fit(c, d, shuffle="yes"), TypeError, r"^shuffle must be True or False, got 'yes'"),
    ("fit-seed-negative", lambda c, d: fit(c, d, batch_size=2, seed=-1),
     ValueError, r"^seed must be an int >= 0, got -1"),
    ("fit-seed-float", lambda c, d: fit(c, d, batch_size=2, seed=0.5),
     TypeError, r"^seed must be an int >= 0, got 0.5"),
    # A seed is an argument like any other: invalid even when this fit happens not to shuffle.
    ("fit-seed-negative-full-batch", lambda c, d: fit(c, d, seed=-1), ValueError, r"^seed must be an int >= 0, got -1"),
    ("fit-seed-negative-no-shuffle", lambda c, d: fit(c, d, batch_size=2, shuffle=False, seed=-1), ValueError,
     r"^seed must be an int >= 0, got -1"),
    ("fit-seed-str-no-shuffle", lambda c, d: fit(c, d, shuffle=False, seed="abc"), TypeError,
     r"^seed must be an int >= 0, got 'abc'"),
]


@pytest.mark.parametrize("call, exception, message", [case[1:] for case in BAD_CALLS],
                         ids=[case[0] for case in BAD_CALLS])
def test_bad_input_is_rejected_and_arrays_are_unchanged(net_class, call, exception, message):
    """Each bad argument raises TypeError/ValueError naming it; no user array is modified."""
    d = bad_data()
    before = copy.deepcopy(vars(d))
    with pytest.raises(exception, match=message), warnings.catch_warnings():
        # Converting 1e300 to float32 warns before the check reports it.
        warnings.filterwarnings("ignore", "overflow encountered in cast", RuntimeWarning)
        call(net_class, d)
    after = vars(d)
    assert after.keys() == before.keys()
    for name in before:
        assert_identical_with_nan(after[name], before[name], name)


def assert_identical_with_nan(got, expected, name):
    if isinstance(expected, list):
        assert isinstance(got, list) and len(got) == len(expected), name
        for a, b in zip(got, expected):
            assert_identical_with_nan(a, b, name)
        return
    assert got.dtype == expected.dtype and got.shape == expected.shape, name
    assert got.flags.f_contiguous == expected.flags.f_contiguous or got.ndim < 2, name
    if got.dtype.kind in "fc":
        np.testing.assert_array_equal(got, expected, err_msg=name)  # NaNs compare equal here
    else:
        assert np.array_equal(got, expected), name


@pytest.mark.parametrize(
    "name, value",
    [
        ("weights", lambda d: [d.w[0], d.w[1] * np.nan]),
        ("weights", lambda d: [d.w[0] + 1, d.w[1][:, :1]]),
        ("biases", lambda d: [d.b[0] + 1, d.b[1][:1]]),
        ("biases", lambda d: [d.b[0] + 1, d.b_inf[1]]),
    ],
)
def test_rejected_parameters_are_not_partly_assigned(net_class, name, value):
    """A rejected assignment leaves every layer as it was, including the valid leading ones."""
    d = bad_data()
    net = fresh(net_class)
    saved = params_of(net)
    with pytest.raises(ValueError, match=rf"^{name}\[1\] must"):
        setattr(net, name, value(d))
    np.testing.assert_array_equal(params_of(net), saved)


def test_rejected_training_calls_leave_the_net_unchanged(net_class):
    """A fit or train_step rejected for a bad argument does not train the net."""
    d = bad_data()
    net = fresh(net_class)
    saved = params_of(net)
    for bad in [dict(lr=0.0), dict(epochs=-1), dict(batch_size=0), dict(shuffle=None), dict(batch_size=2, seed=-5)]:
        args = {**dict(epochs=3, lr=0.01), **bad}
        with pytest.raises((TypeError, ValueError)):
            net.fit(d.x, d.y, **args)
    with pytest.raises(ValueError):
        net.train_step(d.x, d.y_ninf, 0.01)
    np.testing.assert_array_equal(params_of(net), saved)
