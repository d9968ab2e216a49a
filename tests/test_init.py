"""Weight initialization: each scheme draws from its documented distribution, seeded, in both dtypes.

The statistics are checked on large layers (60k to 200k weights) with
generous margins: a sample standard deviation within 2% of the documented
one (its standard error is below 0.3%), a mean within 5 standard errors of 0.
"""
import numpy as np
import pytest

from tests.conftest import DTYPES, INITS, params_of

LAYERS = [500, 400, 300]  # two weight layers: (500, 400) and (400, 300)


def he_std(fan_in, fan_out):
    return np.sqrt(2 / fan_in)


def glorot_std(fan_in, fan_out):
    return np.sqrt(2 / (fan_in + fan_out))


def assert_normal(w, std, what):
    """Mean 0, the given std, and Gaussian tails (4.55% of the draws beyond 2 std; none for a uniform)."""
    n = w.size
    assert abs(w.mean()) < 5 * std / np.sqrt(n), f"{what}: mean {w.mean():.3g}"
    assert abs(w.std() / std - 1) < 0.02, f"{what}: std {w.std():.4g}, expected {std:.4g}"
    beyond = np.mean(np.abs(w) > 2 * std)
    assert 0.040 < beyond < 0.051, f"{what}: {beyond:.4f} of the draws beyond 2 std"


def assert_uniform(w, limit, what):
    """Within +-limit, reaching close to it, with the uniform's std limit / sqrt(3)."""
    std = limit / np.sqrt(3)
    assert np.abs(w).max() <= limit, f"{what}: {np.abs(w).max():.4g} beyond the limit {limit:.4g}"
    assert np.abs(w).max() > 0.999 * limit and w.max() > 0.99 * limit and w.min() < -0.99 * limit, what
    assert abs(w.mean()) < 5 * std / np.sqrt(w.size), f"{what}: mean {w.mean():.3g}"
    assert abs(w.std() / std - 1) < 0.02, f"{what}: std {w.std():.4g}, expected {std:.4g}"
    # Flat: each quarter of [-limit, limit] holds a quarter of the draws.
    counts, _ = np.histogram(w, bins=4, range=(-limit, limit))
    assert np.all(np.abs(counts / w.size - 0.25) < 0.01), f"{what}: quarters {counts / w.size}"


def test_he_normal(net_class):
    net = net_class(LAYERS, init="he_normal", activation="tanh", seed=0)  # the activation does not matter
    for layer, w in enumerate(net.weights):
        assert_normal(w, he_std(*w.shape), f"layer {layer}")


def test_he_uniform(net_class):
    net = net_class(LAYERS, init="he_uniform", seed=0)
    for layer, w in enumerate(net.weights):
        assert_uniform(w, np.sqrt(6 / w.shape[0]), f"layer {layer}")


def test_glorot_normal(net_class):
    net = net_class(LAYERS, init="glorot_normal", activation="relu", seed=0)
    for layer, w in enumerate(net.weights):
        assert_normal(w, glorot_std(*w.shape), f"layer {layer}")


def test_glorot_uniform(net_class):
    net = net_class(LAYERS, init="glorot_uniform", seed=0)
    for layer, w in enumerate(net.weights):
        assert_uniform(w, np.sqrt(6 / (w.shape[0] + w.shape[1])), f"layer {layer}")


@pytest.mark.parametrize("init_std", [0.05, 1.0])
def test_normal_with_init_std(net_class, init_std):
    net = net_class(LAYERS, init="normal", init_std=init_std, seed=0)
    for layer, w in enumerate(net.weights):
        assert_normal(w, init_std, f"layer {layer}")


def test_normal_default_std_is_one_hundredth(net_class):
    for layer, w in enumerate(net_class(LAYERS, init="normal", seed=0).weights):
        assert_normal(w, 0.01, f"layer {layer}")


def test_init_std_is_only_for_normal(net_class):
    for init in ["auto", "he_normal", "glorot_uniform"]:
        np.testing.assert_array_equal(params_of(net_class([6, 5, 3], init=init, init_std=7.0, seed=3)),
                                      params_of(net_class([6, 5, 3], init=init, seed=3)))


# "auto": He normal for a layer followed by a (leaky) ReLU, Glorot normal otherwise (the output layer too).
AUTO = {
    "relu": ("relu", [he_std, he_std, glorot_std]),
    "leaky_relu": ("leaky_relu", [he_std, he_std, glorot_std]),
    "tanh": ("tanh", [glorot_std, glorot_std, glorot_std]),
    "sigmoid": ("sigmoid", [glorot_std, glorot_std, glorot_std]),
    "identity": ("identity", [glorot_std, glorot_std, glorot_std]),
    "relu-then-tanh": (["relu", "tanh"], [he_std, glorot_std, glorot_std]),
    "tanh-then-leaky": (["tanh", "leaky_relu"], [glorot_std, he_std, glorot_std]),
}


@pytest.mark.parametrize("activation, stds", AUTO.values(), ids=AUTO.keys())
def test_auto_picks_he_before_relus_and_glorot_elsewhere(net_class, activation, stds):
    net = net_class([500, 400, 300, 200], activation=activation, seed=0)
    for layer, (w, std) in enumerate(zip(net.weights, stds)):
        assert_normal(w, std(*w.shape), f"layer {layer} of {activation}")


def test_auto_is_the_default(net_class):
    for activation in ["relu", ["tanh", "leaky_relu"]]:
        np.testing.assert_array_equal(params_of(net_class([8, 7, 6, 2], activation=activation, seed=4)),
                                      params_of(net_class([8, 7, 6, 2], activation=activation, init="auto", seed=4)))
    # The scheme really differs from the alternatives (so the comparison above means something).
    assert not np.array_equal(params_of(net_class([8, 7, 6, 2], seed=4)),
                              params_of(net_class([8, 7, 6, 2], init="glorot_normal", seed=4)))


@pytest.mark.parametrize("init", INITS)
def test_biases_start_at_zero(net_class, init):
    net = net_class([20, 10, 5, 3], init=init, bias=[True, False, True], seed=0)
    assert [b.shape for b in net.biases] == [(10,), (3,)]
    assert all(np.array_equal(b, np.zeros_like(b)) for b in net.biases)
    assert all(np.abs(w).max() > 0 for w in net.weights)


@pytest.mark.parametrize("init", INITS)
def test_same_seed_same_weights_in_both_dtypes(net_class, init):
    """Same seed: the same weights; float32 starts from the float64 point rounded; other seeds differ."""
    layers = [7, 6, 5, 3]
    reference = net_class(layers, init=init, init_std=0.3, seed=42)
    np.testing.assert_array_equal(params_of(net_class(layers, init=init, init_std=0.3, seed=42)), params_of(reference))
    for dtype in DTYPES:
        net = net_class(layers, init=init, init_std=0.3, dtype=dtype, seed=42)
        for got, expected in zip(net.weights + net.biases, reference.weights + reference.biases):
            assert got.dtype == dtype
            np.testing.assert_array_equal(got, expected.astype(dtype))
    assert not np.array_equal(params_of(net_class(layers, init=init, init_std=0.3, seed=43)), params_of(reference))
    assert not np.array_equal(params_of(net_class(layers, init=init, init_std=0.3)), params_of(reference))


def test_both_classes_initialize_identically():
    import nnfast
    import nnfast.reference

    for init in INITS:
        np.testing.assert_array_equal(
            params_of(nnfast.Net([9, 8, 4], init=init, activation=["leaky_relu"], seed=5)),
            params_of(nnfast.reference.Net([9, 8, 4], init=init, activation=["leaky_relu"], seed=5)),
        )
