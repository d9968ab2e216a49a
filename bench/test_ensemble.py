"""``nnfast.Ensemble`` against the loop a user would write, and on one thread against two.

For each size, K = 8 members fit the same data (256 rows, batches of 64,
Adam, float64): ``"loop"`` is eight ``nnfast.Net.fit`` calls one after
the other, ``"ensemble"`` one ``Ensemble.fit`` with ``n_threads`` 1 and 2.
BLAS is pinned to one thread (``conftest.py``), so two threads are two
cores' worth of work. ``bench/ensemble_table.py`` prints the table.
"""
import numpy as np
import pytest

import nnfast

try:
    from . import competitors
except ImportError:
    import competitors

SIZES = {"(64, 32, 64, 4)": ([32, 64, 4], 200), "(64, 1000, 100, 10)": ([1000, 100, 10], 10)}
MEMBERS = 8
ROWS = 256


def problem(layers):
    rng = np.random.default_rng(0)
    return rng.standard_normal((ROWS, layers[0])), rng.standard_normal((ROWS, layers[-1]))


@pytest.mark.parametrize("variant", ["loop", "ensemble-1-thread", "ensemble-2-threads"])
@pytest.mark.parametrize("size", SIZES)
def test_fit_members(benchmark, size, variant):
    layers, epochs = SIZES[size]
    x, y = problem(layers)
    options = {"epochs": epochs, "batch_size": 64}
    if variant == "loop":
        def run():
            for seed in range(MEMBERS):
                nnfast.Net(layers, seed=seed, loss="mse").fit(x, y, optimizer=nnfast.Adam(1e-3), seed=seed, **options)
    else:
        threads = 1 if variant == "ensemble-1-thread" else 2

        def run():
            ensemble = nnfast.Ensemble(layers, seeds=range(MEMBERS), loss="mse")
            ensemble.fit(x, y, optimizer=nnfast.Adam(1e-3), seeds=range(MEMBERS), n_threads=threads, **options)
    benchmark.group = f"ensemble {size}"
    benchmark.extra_info.update(operation="fit 8 members", size=size, variant=variant,
                                steps=MEMBERS * epochs * (ROWS // 64))
    benchmark(run)


SEED_MEMBERS = 64
SEED_EPOCHS = 500


@pytest.mark.parametrize("variant", ["loop", "ensemble-lanes-1-thread", "jax-vmap"])
def test_fit_seed_size_members(benchmark, variant):
    """64 seed-size nets (4, 3, 3, 1), 500 epochs full batch, plain SGD, on one thread: a loop of
    ``Net.fit`` against one ``Ensemble.fit``, whose members train side by side in SIMD lanes
    (``nnfast._lanes``; target 50 ns per net-step), and against JAX's ``jit(vmap(scan))`` of the
    same fits (``competitors.JaxEnsembleTrainer``, where JAX is installed). The nets are built
    outside the timing; JAX's loop is compiled, and checked against the ensemble's, before it."""
    x = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 0]], dtype=float)
    y = np.array([[0], [1], [1], [0]], dtype=float)
    options = {"epochs": SEED_EPOCHS, "lr": 1e-3}

    def ensemble():
        return nnfast.Ensemble([3, 3, 1], seeds=range(SEED_MEMBERS), loss="sse")

    if variant == "loop":
        def setup():
            return ([nnfast.Net([3, 3, 1], seed=s, loss="sse") for s in range(SEED_MEMBERS)],), {}

        def run(nets):
            for seed, net in enumerate(nets):
                net.fit(x, y, seed=seed, **options)
    elif variant == "ensemble-lanes-1-thread":
        def setup():
            return (ensemble(),), {}

        def run(members):
            members.fit(x, y, seeds=range(SEED_MEMBERS), n_threads=1, **options)
    else:
        pytest.importorskip("jax", reason="the JAX vmap comparison needs JAX, which is optional")
        fitted = ensemble()
        members = [([w.copy() for w in net.weights], [b.copy() for b in net.biases]) for net in fitted.members]
        trainer = competitors.JaxEnsembleTrainer(members, x, y, options["lr"], "sse")
        trainer.fit(SEED_EPOCHS)
        fitted.fit(x, y, n_threads=1, **options)
        for (weights, biases), member in zip(trainer.parameters(), fitted.members):
            for got, want in zip(weights + biases, member.weights + member.biases):
                np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)

        def setup():
            trainer.set_parameters(members)
            return (), {}

        def run():
            trainer.fit(SEED_EPOCHS)
    benchmark.group = "ensemble seed size"
    benchmark.extra_info.update(operation=f"fit {SEED_MEMBERS} members", size="(4, 3, 3, 1)", variant=variant,
                                steps=SEED_MEMBERS * SEED_EPOCHS)
    benchmark.pedantic(run, setup=setup, rounds=15)
