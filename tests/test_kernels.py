"""The compiled kernels' private entry points, checked against NumPy."""
import functools
import importlib
import importlib.machinery
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import nnfast
from nnfast import _kernels
from nnfast._checks import first_non_finite
from nnfast._matmul import crossover, matmul_into, uses_blas_for
from tests.conftest import assert_close, rows_filling, threshold_depth

KERNEL_MODULES = ["_matmul", "_dense", "_optim", "_shuffle", "_fit", "_checks", "_fastpath"]
METHODS = ["loops", "blas", "auto"]

# (m, n, k) for out (m, n) = op(a) (m, k) @ op(b) (k, n): single rows and columns, odd sizes,
# and sizes on both sides of the crossover to BLAS. n and k of 1 to 4 each have an unrolled
# copy of the loops; the blocked kernels cut c into blocks of 4 rows by two vectors (a row
# on its own takes up to 8 vectors), with tails narrower than a vector, and walk k in
# slices of 256.
SHAPES = [(1, 1, 1), (1, 7, 1), (5, 1, 3), (3, 5, 7), (17, 1, 33), (2, 9, 1), (31, 29, 37), (64, 65, 63),
          (4, 2, 2), (6, 3, 4), (2, 4, 3), (9, 4, 5), (4, 16, 16), (5, 33, 300), (7, 3, 513),
          (1, 70, 9), (3, 41, 6), (12, 100, 10)]


def run_child(script, **environment):
    """Run ``script`` in a child interpreter that imports this same nnfast,
    with ``environment`` added to the environment.

    Kernels that may crash run there, so that a crash fails a test instead
    of ending the whole test run.
    """
    package_root = os.path.dirname(os.path.dirname(nnfast.__file__))
    paths = [package_root] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths), **environment)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script)], env=env, capture_output=True,
                          text=True, timeout=120, cwd=package_root)


@functools.lru_cache(maxsize=None)
def crash_of(method):
    """How ``matmul_into(..., method=method)`` kills a child interpreter, or None if it runs."""
    result = run_child(f"""
        import numpy as np
        from nnfast._matmul import matmul_into
        for dtype in (np.float64, np.float32):
            for trans_a in (False, True):
                for trans_b in (False, True):
                    out = np.empty((2, 3), dtype=dtype)
                    a = np.ones((4, 2) if trans_a else (2, 4), dtype=dtype)
                    b = np.ones((3, 4) if trans_b else (4, 3), dtype=dtype)
                    matmul_into(a, b, out, trans_a, trans_b, 0.0, {method!r})
                    matmul_into(a, b, out, trans_a=trans_a, trans_b=trans_b, beta=1.0, method={method!r})
    """)
    if result.returncode < 0:
        return f"killed by signal {-result.returncode}"
    return None


def no_crash(method):
    """Fail (rather than crash the test run) if ``method`` kills the interpreter."""
    crash = crash_of(method)
    if crash:
        pytest.fail(f"matmul_into(..., method={method!r}) {crash} (in a child process)")


@pytest.mark.parametrize("method", METHODS)
def test_matmul_into_does_not_crash(method):
    """Regression: matmul_into compared Python strings without the GIL, a segfault for "blas" and "auto"."""
    assert crash_of(method) is None


def operands(m, n, k, trans_a, trans_b, dtype, seed=0):
    """Random C-contiguous a, b stored so that op(a) is (m, k) and op(b) is (k, n)."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
    return a, b


def product(a, b, trans_a, trans_b):
    """op(a) @ op(b) in float64."""
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    return (a.T if trans_a else a) @ (b.T if trans_b else b)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("trans_b", [False, True], ids=["b", "bT"])
@pytest.mark.parametrize("trans_a", [False, True], ids=["a", "aT"])
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_matmul_into_equals_numpy(shape, method, trans_a, trans_b, dtype):
    """out = op(a) @ op(b) (beta 0) and out += op(a) @ op(b) (beta 1), for every method and transpose."""
    no_crash(method)
    m, n, k = shape
    a, b = operands(m, n, k, trans_a, trans_b, dtype)
    expected = product(a, b, trans_a, trans_b)

    out = np.full((m, n), np.nan, dtype=dtype)  # beta = 0 must ignore what out holds, even NaN
    matmul_into(a, b, out, trans_a, trans_b, 0.0, method)
    assert_close(out, expected, dtype, "beta=0")

    start = np.random.default_rng(1).standard_normal((m, n)).astype(dtype)
    out = start.copy()
    matmul_into(a, b, out, trans_a, trans_b, 1.0, method)
    assert_close(out, expected + start, dtype, "beta=1")


@pytest.mark.parametrize("method", METHODS)
def test_matmul_into_other_beta_scales_out(method):
    """A beta other than 0 and 1 scales the existing out: out = op(a) @ op(b) + beta * out."""
    no_crash(method)
    a, b = operands(6, 4, 5, False, True, np.float64)
    start = np.arange(24, dtype=np.float64).reshape(6, 4)
    out = start.copy()
    matmul_into(a, b, out, False, True, -0.5, method)
    assert_close(out, product(a, b, False, True) - 0.5 * start, np.float64)


@pytest.mark.parametrize("method", METHODS)
def test_matmul_into_leaves_inputs_alone(method):
    """a and b are only read (read-only arrays are accepted)."""
    no_crash(method)
    a, b = operands(20, 30, 40, True, False, np.float64)
    a.flags.writeable = False
    b.flags.writeable = False
    a_copy, b_copy = a.copy(), b.copy()
    matmul_into(a, b, np.empty((20, 30)), True, False, 0.0, method)
    np.testing.assert_array_equal(a, a_copy)
    np.testing.assert_array_equal(b, b_copy)


def threshold_cases():
    """(m, n, k, trans_b) of float32 products on both sides of the crossover: the most rows
    whose pass over a block of columns fits in ``loops_cache_bytes`` and one more; fewer
    rows than a block with a long inner dimension (never BLAS for a @ b); a @ b.T of fewer
    rows, whose b of n * k floats fills ``loops_cache_bytes`` exactly, or has one more row."""
    facts = crossover()
    depth = threshold_depth(facts, 4)
    rows = rows_filling(facts["loops_cache_bytes"], depth, 4, facts["crossover_vector_bytes"])
    few = facts["block_rows"] - 1
    k = 16
    n = facts["loops_cache_bytes"] // (4 * k)
    return [
        pytest.param((rows, 3, depth, False), "loops", id="slice-fits"),
        pytest.param((rows + 1, 3, depth, False), "blas", id="slice-too-big"),
        pytest.param((few, 5, 40 * facts["depth_slice"], False), "loops", id="few-rows"),
        pytest.param((few, n, k, True), "loops", id="few-rows-bT-fits"),
        pytest.param((few, n + 1, k, True), "blas", id="few-rows-bT-too-big"),
        pytest.param((few, 4 * n, 4, True), "loops", id="few-rows-bT-short"),
    ]


def test_crossover_follows_the_machine():
    """The limit in force is the one ``_machine`` derives from this CPU's facts."""
    from nnfast import _machine
    facts = crossover()
    assert facts["loops_cache_bytes"] == _machine.loops_cache_bytes(facts["crossover_vector_bytes"]) > 0


def test_every_build_chooses_alike():
    """Both builds send the same products to BLAS, so that they give the same bits."""
    facts = {build: importlib.import_module(kernel.__module__).crossover()
             for build, kernel in matmul_modules().items()}
    if len(facts) < 2:
        pytest.skip("this CPU or install has one kernel build only: there is no second one to compare")
    for build_facts in facts.values():
        build_facts.pop("vector_bytes")
    assert len({tuple(sorted(build_facts.items())) for build_facts in facts.values()}) == 1


@pytest.mark.parametrize("own_pipes, blas_width, loops_width, expected", [
    (True, 64, 32, 1024 * 1024 // 4 // 2),   # AMD's Zen, SkylakeX BLAS: a quarter of L2, halved
    (True, 32, 32, 1024 * 1024 // 4),
    (False, 64, 32, 48 * 1024 // 8),          # Intel's cores: an eighth of L1
    (False, 32, 32, 48 * 1024 // 8),
    (False, 16, 32, 1024 * 1024 // 4),        # BLAS's SSE kernels do not fuse either
], ids=["zen-skylakex", "zen-haswell", "intel-skylakex", "intel-haswell", "intel-sse-blas"])
def test_crossover_rule(monkeypatch, own_pipes, blas_width, loops_width, expected):
    """On cores that add on their own pipes the loops keep BLAS's pace while a quarter of
    L2 (scaled by the vector widths) holds what they reread; elsewhere, against fused
    BLAS kernels, only while a product reads an eighth of L1."""
    from nnfast import _machine
    monkeypatch.setattr(_machine, "adds_on_own_pipes", lambda: own_pipes)
    monkeypatch.setattr(_machine, "blas_vector_bytes", lambda: blas_width)
    monkeypatch.setattr(_machine, "cache_bytes", {1: 48 * 1024, 2: 1024 * 1024}.get)
    assert _machine.loops_cache_bytes(loops_width) == expected


def test_cache_sizes_fall_back_to_the_smallest_common_ones(monkeypatch):
    """Without sysconf's answer or Linux's sysfs, the caches are taken to be the smallest
    of recent x86-64 CPUs, so that the loops never get more than they should."""
    from nnfast import _machine

    def unknown(name):
        raise ValueError(name)

    def no_sysfs(path):
        raise FileNotFoundError(path)

    monkeypatch.setattr(_machine.os, "sysconf", unknown)
    monkeypatch.setattr(_machine.os, "listdir", no_sysfs)
    assert (_machine.l1d_cache_bytes(), _machine.l2_cache_bytes()) == (32 * 1024, 256 * 1024)


def test_add_pipes_follow_the_vendor_and_family():
    """CPUID's answer, checked against what Linux's /proc/cpuinfo says of the CPU."""
    try:
        with open("/proc/cpuinfo") as text:
            info = dict(line.split(":", 1) for line in text.read().split("\n\n")[0].splitlines() if ":" in line)
    except OSError:
        pytest.skip("no /proc/cpuinfo to check CPUID against")
    info = {key.strip(): value.strip() for key, value in info.items()}
    if "vendor_id" not in info or "cpu family" not in info:
        pytest.skip("/proc/cpuinfo names no x86 vendor and family")
    expected = (info["vendor_id"] == "AuthenticAMD" and int(info["cpu family"]) >= 0x17
                or info["vendor_id"] == "HygonGenuine")
    from nnfast._checks import cpu_adds_on_own_pipes
    assert cpu_adds_on_own_pipes() == expected


def test_cache_sizes_are_read():
    from nnfast import _machine
    assert 8 * 1024 <= _machine.l1d_cache_bytes() < _machine.l2_cache_bytes()


@pytest.mark.parametrize("core, width", [("SkylakeX", 64), ("Haswell", 32), ("Zen", 32), ("Nehalem", 16)])
def test_openblas_coretype_sets_the_blas_width(monkeypatch, core, width):
    from nnfast import _machine
    monkeypatch.setenv("OPENBLAS_CORETYPE", core)
    assert _machine.blas_vector_bytes() == width


@pytest.mark.parametrize("shape, expected_method", threshold_cases())
def test_auto_switches_to_blas_at_the_crossover(shape, expected_method):
    """"auto" matches the loops bit for bit on one side of the crossover and BLAS on the other."""
    m, n, k, trans_b = shape
    assert uses_blas_for(m, n, k, 4, trans_b) == (expected_method == "blas")
    # float32 random data: loops and BLAS sum in different orders and round differently.
    a, b = operands(m, n, k, False, trans_b, np.float32, seed=3)
    results = {}
    for method in METHODS:
        no_crash(method)
        out = np.empty((m, n), dtype=np.float32)
        matmul_into(a, b, out, False, trans_b, 0.0, method)
        results[method] = out
    assert not np.array_equal(results["loops"], results["blas"]), "inputs do not tell the paths apart"
    np.testing.assert_array_equal(results["auto"], results[expected_method])


def in_order(a, b, trans_a, trans_b, start):
    """start + op(a) @ op(b), each entry summed over the inner dimension in order, in the dtype."""
    a = a.T if trans_a else a
    b = b.T if trans_b else b
    total = start.copy()
    for p in range(a.shape[1]):
        total = total + a[:, p:p + 1] * b[p]
    return total


def matmul_modules():
    """Both kernel builds' matmul_into, where this CPU has both."""
    modules = {"baseline": matmul_into}
    if _kernels.avx2_kernels() is not None:
        from nnfast._avx2._matmul import matmul_into as avx2_matmul_into
        modules["avx2"] = avx2_matmul_into
    return modules


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("trans_a, trans_b", [(False, False), (True, False), (False, True)],
                         ids=["a@b", "aT@b", "a@bT"])
@pytest.mark.parametrize("shape", [(1, 70, 9), (3, 41, 6), (4, 16, 16), (9, 37, 300), (13, 5, 40), (8, 3, 7),
                                   (10, 37, 300), (22, 20, 33)],
                         ids=lambda s: "x".join(map(str, s)))
def test_loops_sum_every_entry_in_order(shape, trans_a, trans_b, dtype):
    """The blocked kernels give, to the bit, the sums taken in order of the inner index,
    in both builds and from a start of 0 (beta 0) or of c (beta 1): how a product is cut
    into blocks and slices never changes a result."""
    m, n, k = shape
    a, b = operands(m, n, k, trans_a, trans_b, dtype, seed=7)
    start = np.random.default_rng(8).standard_normal((m, n)).astype(dtype)
    for build, kernel in matmul_modules().items():
        out = np.full((m, n), np.nan, dtype=dtype)
        kernel(a, b, out, trans_a, trans_b, 0.0, "loops")
        np.testing.assert_array_equal(out, in_order(a, b, trans_a, trans_b, np.zeros_like(start)), err_msg=build)
        out = start.copy()
        kernel(a, b, out, trans_a, trans_b, 1.0, "loops")
        np.testing.assert_array_equal(out, in_order(a, b, trans_a, trans_b, start), err_msg=build)


def test_matmul_into_repeats():
    """repeats=3 with beta 1 adds the product three times; repeats must be positive."""
    a, b = operands(6, 9, 5, False, False, np.float64)
    out = np.zeros((6, 9))
    matmul_into(a, b, out, False, False, 1.0, "loops", 3)
    assert_close(out, 3 * product(a, b, False, False), np.float64)
    with pytest.raises(ValueError, match="repeats must be at least 1, got 0"):
        matmul_into(a, b, out, False, False, 1.0, "loops", 0)


@pytest.mark.parametrize(
    "a_shape, b_shape, out_shape, trans_a, trans_b",
    [((3, 4), (5, 2), (3, 2), False, False), ((3, 4), (4, 2), (3, 3), False, False),
     ((3, 4), (4, 2), (4, 2), True, False), ((3, 4), (2, 4), (3, 4), False, True)],
)
def test_matmul_into_rejects_mismatched_shapes(a_shape, b_shape, out_shape, trans_a, trans_b):
    """Operands whose shapes do not multiply into out raise ValueError before any arithmetic."""
    with pytest.raises(ValueError, match="shapes of a, b and out do not match"):
        matmul_into(np.ones(a_shape), np.ones(b_shape), np.ones(out_shape), trans_a, trans_b, 0.0, "auto")


def test_matmul_into_rejects_unknown_method_and_empty_operands():
    """An unknown method name and empty operands raise ValueError."""
    with pytest.raises(ValueError, match="method must be 'auto', 'loops' or 'blas', got 'fast'"):
        matmul_into(np.ones((2, 2)), np.ones((2, 2)), np.ones((2, 2)), False, False, 0.0, "fast")
    with pytest.raises(ValueError, match="empty operands"):
        matmul_into(np.ones((2, 0)), np.ones((0, 2)), np.ones((2, 2)), False, False, 0.0, "loops")


def test_fit_kernel_rejects_batch_size_zero():
    """nnfast._fit.run_epochs's own check (batch_size >= 1) raises ValueError instead of dividing by zero.

    Calls the private entry point the way nnfast.Net._run_epochs does, in a child process.
    """
    result = run_child("""
        import numpy as np
        import nnfast
        from nnfast import _fit
        from nnfast._training import TrainingRun
        net = nnfast.Net([3, 4, 2], seed=0)
        layout = net._layout
        x, y = np.ones((5, 3)), np.ones((5, 2))
        optimizer = nnfast.SGD(0.1)
        optimizer._bind(net.n_params, net.dtype)
        run = TrainingRun(5, net.n_params, net.dtype, 1, 1, False, 0, optimizer, np.full(1, 0.1), False,
                          False, 1, 0.0)
        run.batch_size = 0
        try:
            _fit.run_epochs(layout.table, 0, 0.01, 0.0, net._params, x, y, None, None,
                            np.empty(layout.workspace_length(5)), np.empty((1, 3)), np.empty((1, 2)), np.empty(1),
                            run, 1,
                            net._fast.lock)
        except ValueError as error:
            print("ValueError:", error)
    """)
    assert result.returncode == 0, f"the child process died (return code {result.returncode}): {result.stderr}"
    assert result.stdout.startswith("ValueError:") and "batch_size=0" in result.stdout, result.stdout + result.stderr


# -- first_non_finite ---------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("position", [0, 1, 500, 999])
def test_first_non_finite_finds_the_first(dtype, bad, position):
    """Returns the index of the first NaN/+inf/-inf, ignoring later ones."""
    values = np.random.default_rng(position).standard_normal(1000).astype(dtype)
    values[position] = bad
    values[-1] = np.nan
    values[position + 1 :: 97] = np.inf
    values[:position] = np.finfo(dtype).max  # large but finite
    assert first_non_finite(values) == position


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_first_non_finite_on_finite_input(dtype):
    """-1 for finite input, including extremes, zeros, subnormals and an empty array."""
    info = np.finfo(dtype)
    values = np.array([0.0, -0.0, info.max, -info.max, info.tiny, info.smallest_subnormal, 1.0], dtype=dtype)
    assert first_non_finite(values) == -1
    assert first_non_finite(np.zeros(0, dtype=dtype)) == -1
    np.testing.assert_array_equal(values[:2], [0.0, 0.0])  # not modified


# -- the package is the compiled one ---------------------------------------------------------------


@pytest.mark.parametrize("name", KERNEL_MODULES)
def test_kernels_are_compiled_extension_modules(name):
    """nnfast._matmul etc. are extension modules inside the imported nnfast package."""
    module = importlib.import_module(f"nnfast.{name}")
    assert module.__file__.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)), module.__file__
    assert isinstance(module.__loader__, importlib.machinery.ExtensionFileLoader)
    assert module.__name__ == f"nnfast.{name}"
    assert module.__spec__.parent == nnfast.__name__


# -- the AVX2 build --------------------------------------------------------------------------------

# A training job touching every kernel: each activation, loss and optimizer,
# batches of one and of several, float32 and float64. It prints one digest
# of every loss, parameter and prediction.
SAME_BITS_JOB = """
    import hashlib
    import numpy as np
    import nnfast
    from nnfast import _kernels
    digest = hashlib.sha256()
    rng = np.random.default_rng(5)
    configs = [
        dict(layers=[13, 40, 9, 3], activation=["relu", "tanh"], loss="mse", optimizer=lambda: nnfast.SGD(0.05)),
        dict(layers=[13, 40, 9, 3], activation=["leaky_relu", "sigmoid"], loss="cross_entropy",
             optimizer=lambda: nnfast.Adam(0.01)),
        dict(layers=[13, 24, 3], activation="identity", loss="binary_cross_entropy",
             optimizer=lambda: nnfast.AdamW(0.01)),
        dict(layers=[13, 24, 3], activation="relu", loss="sse",
             optimizer=lambda: nnfast.SGD(0.001, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ]
    for dtype in (np.float64, np.float32):
        for config in configs:
            x = rng.standard_normal((50, config["layers"][0]))
            y = rng.random((50, config["layers"][-1]))
            if config["loss"] == "cross_entropy":
                y = y.argmax(axis=1)
            options = {k: v for k, v in config.items() if k not in ("layers", "optimizer")}
            net = nnfast.Net(config["layers"], dtype=dtype, seed=1, **options)
            net.optimizer = config["optimizer"]()
            for batch_size in (1, 7, None):
                history = net.fit(x, y, epochs=3, batch_size=batch_size, seed=2)
                digest.update(history.loss.tobytes())
            digest.update(np.float64(net.train_step(x[:1], y[:1], 0.01)).tobytes())
            for array in net.weights + net.biases + [net.predict(x)]:
                digest.update(array.tobytes())
    print(_kernels.BEST.name, digest.hexdigest())
"""


def digest_with(kernels):
    """The job's digest in a child interpreter with NNFAST_KERNELS=kernels."""
    result = run_child(SAME_BITS_JOB, NNFAST_KERNELS=kernels)
    assert result.returncode == 0, result.stderr
    name, digest = result.stdout.split()
    assert name == kernels
    return digest


def test_avx2_build_gives_the_same_bits():
    """Wider vectors, same arithmetic: every loss, parameter and prediction is identical.

    Runs whatever NNFAST_KERNELS this process has: each child sets its own.
    """
    if _kernels.avx2_kernels() is None:
        pytest.skip("this CPU lacks AVX2, or this install was built without the AVX2 modules "
                    "(not x86-64, or not GCC/Clang): there is no second build to compare")
    assert digest_with("avx2") == digest_with("baseline")


def test_tiny_nets_keep_the_baseline_build():
    """Under NNFAST_KERNELS=auto, nets no wider than TINY_WIDTH run the baseline kernels;
    a forced choice applies to every net."""
    tiny = _kernels.BASELINE if _kernels.CHOICE == "auto" else _kernels.BEST
    assert nnfast.Net([3, 3, 1])._kernels is tiny
    assert nnfast.Net([3, 4, 4, 2])._kernels is tiny
    assert nnfast.Net([3, 5, 1])._kernels is _kernels.BEST


def test_unknown_kernel_choice_is_refused():
    result = run_child("import nnfast", NNFAST_KERNELS="sse9")
    assert result.returncode != 0
    assert "NNFAST_KERNELS must be one of auto, baseline, avx2, got 'sse9'" in result.stderr
