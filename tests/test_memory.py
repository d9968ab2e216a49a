"""Memory: sizes that cannot fit are refused before allocating, scratch stays bounded, nothing leaks.

- A net, a fit or a call whose buffers exceed the memory available raises
  MemoryError naming the size, at once and without allocating it.
- ``predict``, ``loss`` and ``gradients`` run in row blocks: their scratch
  stays within a few MB whatever the number of rows, the results equal
  the unblocked ones (to the bit where the same kernels run), and the net
  keeps no large buffer afterwards.
- RSS stays flat over a million one-row predictions and ten thousand fits.
"""
import os
import tracemalloc

import numpy as np
import pytest

import nnfast
import nnfast.reference
from nnfast import _memory
from tests.conftest import NET_CLASSES, NET_IDS, TOL, rel_error

MiB = 2**20


def peak_bytes(call):
    """Run ``call`` and return ``(its result, the peak of traced allocations during it)``."""
    tracemalloc.start()
    try:
        result = call()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("net_class", NET_CLASSES, ids=NET_IDS)
def test_a_net_too_large_for_memory_is_refused_before_allocating(net_class):
    # 8 bytes a parameter, and 8 more for the float64 draw of the weights.
    with pytest.raises(MemoryError, match=r"layers \[1000000, 1000000\] \(1,000,001,000,000 float64 parameters\) "
                                          r"would need 14\.6 TiB"):
        net_class([10**6, 10**6])
    _, peak = peak_bytes(lambda: pytest.raises(MemoryError, net_class, [10**6, 10**6]))
    assert peak < MiB


def test_a_fit_whose_records_cannot_fit_is_refused_before_allocating():
    net = nnfast.Net([3, 4, 1], seed=0)
    before = net.weights
    x, y = np.ones((10, 3)), np.ones((10, 1))
    _, peak = peak_bytes(lambda: pytest.raises(MemoryError, net.fit, x, y, epochs=10**13, lr=0.1))
    assert peak < MiB
    with pytest.raises(MemoryError, match=r"this fit \(10,000,000,000,000 epochs of 1 steps, batches of 10 rows\)"):
        net.fit(x, y, epochs=10**13, lr=0.1)
    assert all(np.array_equal(a, b) for a, b in zip(net.weights, before))
    assert net.optimizer is None  # nothing was bound either


def test_a_step_or_forward_whose_scratch_cannot_fit_is_refused():
    """One feature in, 10**5 hidden units: 10**6 rows take 8 MB of input but 1.6 TB of scratch."""
    net = nnfast.Net([1, 10**5, 1], seed=0)
    x, y = np.ones((10**6, 1)), np.ones((10**6, 1))
    with pytest.raises(MemoryError, match="a training step on 1,000,000 rows"):
        net.train_step(x, y, 0.1)
    with pytest.raises(MemoryError, match="forward on 1,000,000 rows"):
        net.forward(x)
    with pytest.raises(MemoryError, match="this fit"):
        net.fit(x, y, epochs=1, lr=0.1)


def test_memory_check_passes_what_fits():
    _memory.check_allocation(_memory.CHECK_ABOVE - 1, lambda: "anything")
    available = _memory.available_memory()
    assert available is None or available > 0
    _memory.check_allocation(64 * MiB, lambda: "a modest buffer")


# -- row blocks ----------------------------------------------------------------


def wide_net(dtype, loss="mse"):
    """A net whose row blocks hold a few hundred rows."""
    return nnfast.Net([6, 1000, 40, 3], loss=loss, dtype=dtype, seed=4)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_blocked_calls_equal_the_reference_and_keep_scratch_small(dtype, loss):
    net = wide_net(dtype, loss)
    block = net._fast.block_rows
    rows = 12 * block + 17
    rng = np.random.default_rng(0)
    x = rng.standard_normal((rows, 6)).astype(dtype)
    y = rng.random((rows, 3)).astype(dtype)
    if loss == "cross_entropy":
        y /= y.sum(axis=1, keepdims=True)
    ref = nnfast.reference.Net([6, 1000, 40, 3], loss=loss, dtype=dtype, seed=4)
    unblocked_scratch = (net._layout.workspace_length(rows) - net.n_params) * np.dtype(dtype).itemsize
    limit = 1.25 * _fastpath().BLOCK_BYTES
    assert unblocked_scratch > 4 * limit  # the test would not tell blocks from one pass otherwise

    out, peak = peak_bytes(lambda: net.predict(x))
    assert peak - out.nbytes < limit
    assert rel_error(out, ref.predict(x)) < TOL[np.dtype(dtype)]
    # Every block runs the products the whole batch runs (BLAS here), so each
    # row's output is that of the row predicted on its own block.
    np.testing.assert_array_equal(out[block : 2 * block], net.predict(x[block : 2 * block]))

    value, peak = peak_bytes(lambda: net.loss(x, y))
    assert peak < limit
    assert abs(value - ref.loss(x, y)) <= TOL[np.dtype(dtype)] * abs(ref.loss(x, y))

    grads, peak = peak_bytes(lambda: net.gradients(x, y))
    assert peak - net.n_params * np.dtype(dtype).itemsize < limit
    assert rel_error(grads, ref.gradients(x, y)) < 10 * TOL[np.dtype(dtype)]
    assert net._fast.spare_length * np.dtype(dtype).itemsize <= _fastpath().BLOCK_BYTES


def test_blocks_of_the_same_size_are_invisible():
    """Blocks of equal size run the same kernels as a call on one block: the
    blocked predict equals the calls block by block to the bit, and the loss
    equals its sum taken in row order over all rows."""
    net = nnfast.Net([2, 3, 2], loss="mse", seed=1)
    block = net._fast.block_rows
    x = np.random.default_rng(1).standard_normal((3 * block, 2))
    y = np.random.default_rng(2).standard_normal((3 * block, 2))
    out = net.predict(x)
    pieces = [net.predict(x[i : i + block]) for i in range(0, 3 * block, block)]
    np.testing.assert_array_equal(out, np.concatenate(pieces))
    diff = (out - y).ravel()
    total = 0.0
    for value in diff:
        total += value * value
    assert net.loss(x, y) == total / diff.size


def test_a_large_predict_leaves_no_large_buffer():
    net = nnfast.Net([4, 1000, 1000, 2], seed=0)
    net.predict(np.ones((3000, 4)))
    assert net._fast.spare_length * 8 <= _fastpath().BLOCK_BYTES


def _fastpath():
    return nnfast.net._kernels.BEST.fastpath


# -- leaks -----------------------------------------------------------------------


def rss_bytes():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads RSS from /proc (Linux)")
@pytest.mark.skipif("libasan" in os.environ.get("LD_PRELOAD", "") or "libclang_rt.asan" in os.environ.get("LD_PRELOAD", ""),
                    reason="AddressSanitizer holds freed memory in its quarantine, so RSS would measure ASan")
def test_rss_stays_flat_over_many_calls():
    net = nnfast.Net([32, 64, 4], seed=0)
    x1 = np.ones((1, 32))
    x, y = np.random.default_rng(0).standard_normal((16, 32)), np.ones((16, 4))
    for _ in range(2000):  # warm up allocator pools and caches
        net.predict(x1)
        nnfast.Net([32, 16, 4], seed=0).fit(x, y, epochs=2, batch_size=8, optimizer=nnfast.Adam())
    start = rss_bytes()
    for _ in range(10**6):
        net.predict(x1)
    after_predicts = rss_bytes()
    for i in range(10**4):
        small = nnfast.Net([32, 16, 4], seed=i)
        small.fit(x, y, epochs=2, batch_size=8, optimizer=nnfast.Adam(), seed=i)
    after_fits = rss_bytes()
    print(f"RSS {start / MiB:.1f} MiB, after 10**6 predicts {after_predicts / MiB:.1f} MiB, "
          f"after 10**4 fits {after_fits / MiB:.1f} MiB")
    assert after_predicts - start < 4 * MiB
    assert after_fits - start < 8 * MiB
