"""nnfast's loops against BLAS gemm in ``nnfast._matmul.matmul_into``: the data behind the crossover.

A dense layer needs three products, each with its own memory access
pattern in the loops kernel, so each is timed separately:

- ``forward``: ``x @ W`` (no transpose), ``m = batch, k = fan_in, n = fan_out``;
- ``weight_grad``: ``x.T @ delta`` (``trans_a``), ``m = fan_in, k = batch, n = fan_out``;
- ``input_grad``: ``delta @ W.T`` (``trans_b``), ``m = batch, k = fan_out, n = fan_in``.

Each group holds one product at one ``(m, n, k)`` and dtype, timed with
``method="loops"`` and with ``method="blas"``. ``bench/report.py --matmul``
turns the groups into the smallest ``m * n * k`` at which BLAS wins, next to what
``method="auto"`` picks.
"""
import numpy as np
import pytest

from nnfast._matmul import crossover, matmul_into, uses_blas_for

# name -> (trans_a, trans_b)
PRODUCTS = {"forward": (False, False), "weight_grad": (True, False), "input_grad": (False, True)}

SQUARE_SIZES = [2, 4, 8, 12, 16, 24, 32, 48, 64]

# A layer of width w (fan_in = fan_out = w) on a batch of 64. Width 64 is
# left out: it is the square 64 case.
BATCH = 64
BATCH_WIDTHS = [8, 16, 32, 128]

# The fused function's per-call dispatch on dtype and its keyword parsing
# cost ~0.4 us, as much as a whole small product; the specializations and
# positional arguments keep the common overhead that dilutes the comparison
# at small sizes to ~0.5 us.
KERNEL_TYPE = {np.dtype(np.float64): "double", np.dtype(np.float32): "float"}

# 180 benchmarks of microseconds each: a tenth of a second still gives
# thousands of rounds, and keeps the module to well under a minute. The
# marker overrides --benchmark-max-time; edit this to change it.
pytestmark = pytest.mark.benchmark(max_time=0.1)


# Single samples through wide layers: the one-row products, where only a
# transposed b with a long inner dimension goes to BLAS.
SINGLE_WIDTHS = [128, 1000]


def _batch_shape(product, width, batch=BATCH):
    """(m, n, k) of ``product`` for a width-``width`` layer on a batch of ``batch`` rows."""
    if product == "weight_grad":
        return width, width, batch
    return batch, width, width


SHAPES = [
    pytest.param(product, (size, size, size), id=f"{product}-{size}^3")
    for product in PRODUCTS
    for size in SQUARE_SIZES
] + [
    pytest.param(product, _batch_shape(product, width), id=f"{product}-batch{BATCH}-w{width}")
    for product in PRODUCTS
    for width in BATCH_WIDTHS
] + [
    pytest.param(product, _batch_shape(product, width, 1), id=f"{product}-batch1-w{width}")
    for product in PRODUCTS
    for width in SINGLE_WIDTHS
]


@pytest.mark.parametrize("method", ["loops", "blas"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize(("product", "mnk"), SHAPES)
def test_matmul(benchmark, standard_normal, product, mnk, dtype, method):
    m, n, k = mnk
    trans_a, trans_b = PRODUCTS[product]
    dtype_name = np.dtype(dtype).name
    benchmark.group = f"matmul {product} (m, n, k) = {mnk} {dtype_name}"
    benchmark.extra_info.update(
        product=product, trans_a=trans_a, trans_b=trans_b, m=m, n=n, k=k, work=m * n * k,
        dtype=dtype_name, method=method, auto_uses_blas=uses_blas_for(m, n, k, np.dtype(dtype).itemsize, trans_b),
        loops_cache_bytes=crossover()["loops_cache_bytes"],
    )
    a, b, out = standard_normal(
        (k, m) if trans_a else (m, k), (n, k) if trans_b else (k, n), (m, n), dtype=dtype
    )
    kernel = matmul_into[KERNEL_TYPE[np.dtype(dtype)]]
    # beta = 0: out is output only, so every round computes the same thing.
    benchmark(kernel, a, b, out, trans_a, trans_b, 0.0, method)
    # Guards against timing a kernel that does not compute the product at all.
    expected = (a.T if trans_a else a) @ (b.T if trans_b else b)
    rtol = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out, expected, rtol=rtol, atol=rtol * k)
