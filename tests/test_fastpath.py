"""The compiled fast path of ``Net.train_step``, ``Net.predict`` and fit's data check (nnfast/_fastpath.pyx).

It must give exactly what the validating path gives whenever it runs, and
decline (return None, touching nothing) whenever the validating path would
convert the arguments, raise, or report a diverging step.
"""
import copy
import pickle

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nnfast
from nnfast._base import BaseNet
from tests.conftest import LOSSES, params_of

LAYERS = [3, 5, 2]


def targets_for(loss, rows, n_out, rng, dtype):
    """Targets the validating path accepts unchanged for ``loss`` (2-D, in [0, 1] for classification)."""
    if loss == "cross_entropy":
        return np.eye(n_out, dtype=dtype)[rng.integers(0, n_out, rows)]
    if loss == "binary_cross_entropy":
        return rng.random((rows, n_out)).astype(dtype)
    return rng.standard_normal((rows, n_out)).astype(dtype)


def ready_net(dtype, loss="sse", layers=LAYERS):
    return nnfast.Net(layers, loss=loss, dtype=dtype, seed=3)


@given(
    layers=st.lists(st.integers(1, 9), min_size=2, max_size=4),
    rows=st.integers(1, 12),
    loss=st.sampled_from(LOSSES),
    dtype=st.sampled_from([np.float64, np.float32]),
    seed=st.integers(0, 2**32 - 1),
)
def test_fast_path_equals_validating_path(layers, rows, loss, dtype, seed):
    """On arguments it accepts, the fast path returns and writes exactly what the validating path does."""
    if loss == "cross_entropy" and layers[-1] < 2:
        layers = [*layers[:-1], 2]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, layers[0])).astype(dtype)
    y = targets_for(loss, rows, layers[-1], rng, dtype)
    fast = ready_net(dtype, loss, layers)
    slow = copy.deepcopy(fast)
    out = fast._fast.predict(x)
    assert out is not None, "the fast path declined valid arguments"
    np.testing.assert_array_equal(out, BaseNet.predict(slow, x))
    assert out.dtype == dtype and out.shape == (rows, layers[-1])
    assert fast._fast.data_trusted(x, y)
    loss_value = fast._fast.train_step(x, y, 0.01)
    assert loss_value is not None, "the fast path declined valid arguments"
    assert loss_value == BaseNet.train_step(slow, x, y, 0.01)
    np.testing.assert_array_equal(params_of(fast), params_of(slow))


def test_fast_path_takes_one_dimensional_targets_for_one_output(dtype):
    net = ready_net(dtype, layers=[3, 4, 1])
    x = np.ones((8, 3), dtype=dtype)
    y = np.linspace(-1, 1, 8).astype(dtype)
    slow = copy.deepcopy(net)
    assert net._fast.train_step(x, y, 0.1) == BaseNet.train_step(slow, x, y, 0.1)


X = np.random.default_rng(0).standard_normal((8, 3))
Y = np.random.default_rng(1).standard_normal((8, 2))


def with_nan(a):
    a = a.copy()
    a[3, 1] = np.nan
    return a


def with_inf(a):
    a = a.copy()
    a[-1, -1] = -np.inf
    return a


# (id, make x, make y, make lr) from float64 X, Y: each declines the fast path.
DECLINED = [
    ("x-list", lambda: X.tolist(), lambda: Y, lambda: 0.1),
    ("y-list", lambda: X, lambda: Y.tolist(), lambda: 0.1),
    ("x-float32", lambda: X.astype(np.float32), lambda: Y, lambda: 0.1),
    ("y-int", lambda: X, lambda: Y.astype(np.int64), lambda: 0.1),
    ("x-fortran", lambda: np.asfortranarray(X), lambda: Y, lambda: 0.1),
    ("x-strided", lambda: np.repeat(X, 2, axis=0)[::2], lambda: Y, lambda: 0.1),
    ("x-byte-swapped", lambda: X.astype(X.dtype.newbyteorder()), lambda: Y, lambda: 0.1),
    ("y-byte-swapped", lambda: X, lambda: Y.astype(Y.dtype.newbyteorder()), lambda: 0.1),
    ("x-1d", lambda: X[0].copy(), lambda: Y[:1], lambda: 0.1),
    ("x-3d", lambda: X[None], lambda: Y, lambda: 0.1),
    ("x-features", lambda: np.ones((8, 4)), lambda: Y, lambda: 0.1),
    ("x-empty", lambda: np.ones((0, 3)), lambda: np.ones((0, 2)), lambda: 0.1),
    ("y-rows", lambda: X, lambda: Y[:7].copy(), lambda: 0.1),
    ("y-outputs", lambda: X, lambda: np.ones((8, 3)), lambda: 0.1),
    ("y-1d-two-outputs", lambda: X, lambda: np.zeros(8), lambda: 0.1),
    ("x-nan", lambda: with_nan(X), lambda: Y, lambda: 0.1),
    ("x-inf", lambda: with_inf(X), lambda: Y, lambda: 0.1),
    ("y-nan", lambda: X, lambda: with_nan(Y), lambda: 0.1),
    ("lr-int", lambda: X, lambda: Y, lambda: 1),
    ("lr-numpy", lambda: X, lambda: Y, lambda: np.float64(0.1)),
    ("lr-zero", lambda: X, lambda: Y, lambda: 0.0),
    ("lr-negative", lambda: X, lambda: Y, lambda: -0.1),
    ("lr-nan", lambda: X, lambda: Y, lambda: float("nan")),
    ("lr-inf", lambda: X, lambda: Y, lambda: float("inf")),
]


@pytest.mark.parametrize("name, make_x, make_y, make_lr", DECLINED, ids=[case[0] for case in DECLINED])
def test_fast_path_declines_what_needs_validation(name, make_x, make_y, make_lr):
    """Anything the validating path would convert or reject gets None, and the net is unchanged."""
    net = ready_net(np.float64)
    before = params_of(net)
    x, y = make_x(), make_y()
    assert net._fast.train_step(x, y, make_lr()) is None
    if not name.startswith(("y-", "lr-")):
        assert net._fast.predict(x) is None
    if not name.startswith("lr-"):
        assert not net._fast.data_trusted(x, y)
    np.testing.assert_array_equal(params_of(net), before)


@pytest.mark.parametrize("loss", ["cross_entropy", "binary_cross_entropy"])
@pytest.mark.parametrize("bad", [-0.25, 1.5])
def test_fast_path_declines_targets_outside_probabilities(loss, bad):
    net = ready_net(np.float64, loss=loss)
    y = np.full((8, 2), 0.5)
    y[2, 0] = bad
    assert net._fast.train_step(X, y, 0.1) is None
    with pytest.raises(ValueError, match="probabilities"):
        net.train_step(X, y, 0.1)


def test_diverging_step_is_declined_then_raised():
    """A step whose update overflows is not applied; the validating path repeats it and raises."""
    net = ready_net(np.float64)
    before = params_of(net)
    huge = np.full((8, 3), 1e200)
    assert net._fast.train_step(huge, Y, 0.1) is None
    np.testing.assert_array_equal(params_of(net), before)
    with pytest.raises(nnfast.DivergenceError):
        net.train_step(huge, Y, 0.1)
    np.testing.assert_array_equal(params_of(net), before)


@pytest.mark.parametrize("duplicate", [copy.deepcopy, lambda net: pickle.loads(pickle.dumps(net))],
                         ids=["deepcopy", "pickle"])
def test_copies_get_a_fast_path_of_their_own(duplicate):
    """A copied net trains its own parameters, never the original's."""
    net = ready_net(np.float64)
    twin = duplicate(net)
    before = params_of(net)
    assert twin._fast.train_step(X, Y, 0.1) is not None
    np.testing.assert_array_equal(params_of(net), before)
    assert not np.array_equal(params_of(twin), before)


def test_fast_path_serves_any_batch_and_keeps_only_small_scratch():
    """Scratch is taken per call: any number of rows runs on the fast path, and
    only a workspace of at most a block of rows, or of a modest training batch,
    stays with the net afterwards."""
    net = nnfast.Net([3, 64, 2], seed=0)
    fast = net._fast
    assert fast.spare_length == 0
    block_length = net._layout.workspace_length(fast.block_rows)
    x = np.ones((3 * fast.block_rows + 5, 3))
    assert fast.predict(x) is not None
    assert 0 < fast.spare_length <= block_length
    big_rows = _fastpath_constant("TRAINING_SCRATCH_BYTES") // (8 * (2 * 64 + 2)) + 1
    x, y = np.ones((big_rows, 3)), np.ones((big_rows, 2))
    assert fast.train_step(x, y, 1e-6) is None  # its scratch needs Python's memory check first
    net.train_step(x, y, 1e-6)
    assert fast.spare_length <= block_length


def _fastpath_constant(name):
    return getattr(nnfast.net._kernels.BEST.fastpath, name)
