"""fit semantics (batches, epochs, shuffling), divergence, and pickling."""
import copy
import pickle

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nnfast
from nnfast import _random
from nnfast._shuffle import shuffle as compiled_shuffle
from tests.conftest import TOL, assert_close, make_pair, params_of, random_data

LAYERS = [3, 5, 2]


def data(n_samples=10, layers=LAYERS, seed=0):
    return random_data(np.random.default_rng(seed), n_samples, layers)


def manual_fit(net, x, y, *, epochs, lr, batch_size, order_for_epoch):
    """fit as the docstring describes it, with one train_step per batch."""
    losses = []
    for epoch in range(epochs):
        order = order_for_epoch(epoch)
        for start in range(0, len(x), batch_size):
            rows = order[start : start + batch_size]
            losses.append(net.train_step(x[rows], y[rows], lr))
    return np.array(losses)


# -- batches and history ---------------------------------------------------------


@pytest.mark.parametrize("n_samples, batch_size", [(10, 3), (10, 5), (7, 1), (10, 9), (1, 1)])
def test_unshuffled_fit_is_consecutive_train_steps(net_class, dtype, n_samples, batch_size):
    """shuffle=False: batches are consecutive slices, the last one smaller, one step each."""
    x, y = data(n_samples)
    net = net_class(LAYERS, dtype=dtype, seed=1)
    twin = copy.deepcopy(net)
    history = net.fit(x, y, epochs=3, lr=0.01, batch_size=batch_size, shuffle=False)
    steps_per_epoch = -(-n_samples // batch_size)
    assert (history.epochs, history.steps_per_epoch) == (3, steps_per_epoch)
    assert history.loss.shape == (3 * steps_per_epoch,) and history.loss.dtype == np.float64
    expected = manual_fit(twin, x, y, epochs=3, lr=0.01, batch_size=batch_size,
                          order_for_epoch=lambda epoch: np.arange(n_samples))
    np.testing.assert_allclose(history.loss, expected, rtol=TOL[dtype], atol=0)
    assert_close(params_of(net), params_of(twin), dtype, "parameters")


@pytest.mark.parametrize("batch_size", [1, 3, 4, 9])
def test_shuffled_fit_reshuffles_every_epoch_with_the_spec_generator(net_class, batch_size):
    """shuffle=True: before every epoch the order is reshuffled by nnfast._random from the seed's state."""
    x, y = data(10)
    net = net_class(LAYERS, seed=2)
    twin = copy.deepcopy(net)
    history = net.fit(x, y, epochs=4, lr=0.01, batch_size=batch_size, seed=99)

    state = _random.shuffle_state(99)
    order = np.arange(10)
    orders = []
    for _ in range(4):
        state = _random.shuffle(order, state)
        orders.append(order.copy())
    assert len({tuple(o) for o in orders}) > 1  # the order does change between epochs
    expected = manual_fit(twin, x, y, epochs=4, lr=0.01, batch_size=batch_size,
                          order_for_epoch=lambda epoch: orders[epoch])
    np.testing.assert_allclose(history.loss, expected, rtol=1e-12, atol=0)
    np.testing.assert_allclose(params_of(net), params_of(twin), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("batch_size", [None, 10, 11, 1000])
def test_full_batch_fit_is_unshuffled_and_one_step_per_epoch(net_class, batch_size):
    """batch_size None or >= n: one full-batch step per epoch, independent of shuffle and seed."""
    x, y = data(10)
    net = net_class(LAYERS, seed=3)
    runs = []
    for kwargs in [dict(shuffle=False), dict(seed=1), dict(seed=2), dict(shuffle=True)]:
        trained = copy.deepcopy(net)
        history = trained.fit(x, y, epochs=3, lr=0.01, batch_size=batch_size, **kwargs)
        assert (history.epochs, history.steps_per_epoch, len(history.loss)) == (3, 1, 3)
        runs.append((history.loss, params_of(trained)))
    steps = copy.deepcopy(net)
    losses = [steps.train_step(x, y, 0.01) for _ in range(3)]
    for loss, params in runs:
        np.testing.assert_array_equal(loss, runs[0][0])
        np.testing.assert_array_equal(params, runs[0][1])
    np.testing.assert_allclose(runs[0][0], losses, rtol=1e-12, atol=0)
    np.testing.assert_allclose(runs[0][1], params_of(steps), rtol=1e-12, atol=1e-15)


def test_zero_epochs_is_an_empty_history(net_class):
    """epochs=0: empty float64 history, and the parameters are untouched."""
    x, y = data(10)
    net = net_class(LAYERS, seed=4)
    saved = params_of(net)
    history = net.fit(x, y, epochs=0, lr=0.01, batch_size=3)
    assert history.loss.shape == (0,) and history.loss.dtype == np.float64
    assert (history.epochs, history.steps_per_epoch) == (0, 4)
    np.testing.assert_array_equal(params_of(net), saved)
    assert "steps=0" in repr(history)


def test_history_records_the_loss_before_each_step(net_class):
    """history.loss[i] is the loss of step i's batch, evaluated before step i's update."""
    x, y = data(6)
    net = net_class(LAYERS, seed=5)
    twin = copy.deepcopy(net)
    history = net.fit(x, y, epochs=3, lr=0.01)
    for loss in history.loss:
        assert loss == pytest.approx(twin.loss(x, y), rel=1e-12, abs=0)
        twin.train_step(x, y, 0.01)
    assert net.loss(x, y) < history.loss[-1] < history.loss[0]


# -- the shuffle generator ---------------------------------------------------------------------


@given(n=st.one_of(st.integers(0, 3), st.integers(4, 2000)), seed=st.integers(0, 2**64 - 1))
def test_compiled_shuffle_is_the_python_spec(n, seed):
    """nnfast._shuffle.shuffle gives the permutation and state of nnfast._random.shuffle."""
    state = _random.shuffle_state(seed)
    spec_order = np.arange(n, dtype=np.intp)
    compiled_order = np.arange(n, dtype=np.intp)
    spec_state = _random.shuffle(spec_order, state)
    compiled_state = compiled_shuffle(compiled_order, state)
    assert compiled_state == spec_state
    np.testing.assert_array_equal(compiled_order, spec_order)
    np.testing.assert_array_equal(np.sort(compiled_order), np.arange(n))
    # And again from the new state, as fit does every epoch.
    assert compiled_shuffle(compiled_order, compiled_state) == _random.shuffle(spec_order, spec_state)
    np.testing.assert_array_equal(compiled_order, spec_order)


@pytest.mark.parametrize("state", [0, 1, 2**63, 2**64 - 1])
def test_shuffle_at_extreme_states(state):
    """State arithmetic wraps at 2**64 identically in C and in Python."""
    spec_order = np.arange(50, dtype=np.intp)
    compiled_order = spec_order.copy()
    assert compiled_shuffle(compiled_order, state) == _random.shuffle(spec_order, state)
    np.testing.assert_array_equal(compiled_order, spec_order)
    assert not np.array_equal(spec_order, np.arange(50))


def test_shuffle_states_are_seeded():
    """shuffle_state: the same seed gives the same state, different seeds differ, None is fresh."""
    assert _random.shuffle_state(5) == _random.shuffle_state(5)
    assert len({_random.shuffle_state(seed) for seed in range(100)}) == 100
    assert _random.shuffle_state(None) != _random.shuffle_state(None)
    assert 0 <= _random.shuffle_state(7) < 2**64


def test_splitmix64_known_values():
    """The generator is SplitMix64: its published first outputs from state 0."""
    state, outputs = 0, []
    for _ in range(3):
        state, value = _random.splitmix64(state)
        outputs.append(value)
    assert outputs == [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]


def test_same_seed_same_history_different_seeds_differ(net_class):
    """fit is reproducible for a seed, and the seed changes the batches."""
    x, y = data(12)
    net = net_class(LAYERS, seed=6)
    histories = {}
    for seed in [1, 1, 2]:
        trained = copy.deepcopy(net)
        histories.setdefault(seed, []).append(
            (trained.fit(x, y, epochs=3, lr=0.01, batch_size=4, seed=seed).loss, params_of(trained))
        )
    (loss_a, params_a), (loss_b, params_b) = histories[1]
    np.testing.assert_array_equal(loss_a, loss_b)
    np.testing.assert_array_equal(params_a, params_b)
    assert not np.array_equal(histories[2][0][0], loss_a)


def test_seed_none_shuffles_differently_each_call(net_class):
    """Without a seed, two fits from the same start draw different batches."""
    x, y = data(20)
    net = net_class(LAYERS, seed=7)
    a, b = copy.deepcopy(net), copy.deepcopy(net)
    assert not np.array_equal(a.fit(x, y, epochs=2, lr=0.01, batch_size=5).loss,
                              b.fit(x, y, epochs=2, lr=0.01, batch_size=5).loss)


# -- divergence -------------------------------------------------------------------


# The reference's NumPy arithmetic warns on its way to the non-finite values.
diverging = pytest.mark.filterwarnings(
    "ignore:overflow encountered:RuntimeWarning", "ignore:invalid value encountered:RuntimeWarning"
)


def exploding_data():
    rng = np.random.default_rng(8)
    return 100 * rng.standard_normal((12, 3)), 100 * rng.standard_normal((12, 2))


@diverging
def test_fit_divergence_matches_reference_and_keeps_last_finite_parameters(dtype):
    """A huge lr raises DivergenceError at the same step in both nets; that step is not applied."""
    x, y = exploding_data()
    fast, ref = make_pair(LAYERS, seed=9, dtype=dtype)
    errors = []
    for net in (fast, ref):
        with pytest.raises(nnfast.DivergenceError, match="smaller learning rate") as info:
            net.fit(x, y, epochs=20, lr=1e10, batch_size=5, seed=3)
        errors.append(info.value)
    error, ref_error = errors
    assert isinstance(error, FloatingPointError)
    assert error.step == ref_error.step > 0
    history = error.history
    assert len(history.loss) == error.step + 1
    assert history.steps_per_epoch == 3 and history.epochs == error.step // 3
    np.testing.assert_allclose(history.loss, ref_error.history.loss, rtol=TOL[dtype], atol=0)
    assert np.all(np.isfinite(params_of(fast)))
    assert_close(params_of(fast), params_of(ref), dtype, "parameters after divergence")


@diverging
def test_divergence_step_is_not_applied(net_class):
    """After DivergenceError the net equals a copy trained for exactly the steps before the failure."""
    x, y = exploding_data()
    net = net_class(LAYERS, seed=10)
    twin = copy.deepcopy(net)
    with pytest.raises(nnfast.DivergenceError) as info:
        net.fit(x, y, epochs=50, lr=1e10, shuffle=False, batch_size=12)
    step = info.value.step
    assert step >= 1
    np.testing.assert_array_equal(info.value.history.loss[:-1], twin.fit(x, y, epochs=step, lr=1e10).loss)
    np.testing.assert_array_equal(params_of(net), params_of(twin))


@diverging
def test_train_step_divergence_matches_reference(dtype):
    """train_step raises DivergenceError on the same call in both nets and leaves the parameters as they were."""
    x, y = exploding_data()
    fast, ref = make_pair(LAYERS, seed=11, dtype=dtype)
    for _ in range(100):
        saved = [params_of(fast), params_of(ref)]
        outcomes = []
        for net in (fast, ref):
            try:
                outcomes.append(net.train_step(x, y, 1e10))
            except nnfast.DivergenceError as error:
                outcomes.append(error)
        if any(isinstance(outcome, nnfast.DivergenceError) for outcome in outcomes):
            break
        assert_close(outcomes[0], outcomes[1], dtype, "loss")
    else:
        pytest.fail("lr=1e10 never diverged")
    for net, error, before in zip((fast, ref), outcomes, saved):
        assert isinstance(error, nnfast.DivergenceError), f"{type(net)} did not diverge with the other"
        assert "smaller learning rate" in str(error)
        assert error.step == 0 and len(error.history.loss) == 1
        np.testing.assert_array_equal(params_of(net), before)
        assert np.all(np.isfinite(before))
    assert_close(params_of(fast), params_of(ref), dtype, "parameters")


@diverging
def test_non_finite_loss_and_non_finite_update_are_told_apart(net_class):
    """The message says whether the loss or the updated parameters went non-finite."""
    x, y = np.ones((2, 1)), np.zeros((2, 1))
    net = net_class([1, 1])
    net.weights, net.biases = [np.array([[1e200]])], [np.array([0.0])]
    # Output 1e200: its square overflows, so the loss is infinite.
    with pytest.raises(nnfast.DivergenceError, match="the loss became NaN or infinite") as info:
        net.train_step(x, y, 1.0)
    assert info.value.history.loss[0] == np.inf
    net.weights = [np.array([[1.0]])]
    # Outputs 1 against targets 0: loss 2, gradient 2 * 1 + 2 * 1 = 4 for the weight and
    # the bias; lr 1e308 overflows the update.
    with pytest.raises(nnfast.DivergenceError, match="the updated parameters became NaN or infinite") as info:
        net.fit(x, y, epochs=2, lr=1e308)
    assert info.value.history.loss.tolist() == [2.0]
    assert info.value.step == 0 and net.weights[0][0, 0] == 1.0


@given(
    layers=st.lists(st.integers(1, 40), min_size=2, max_size=4),
    loss=st.sampled_from(["sse", "mse", "binary_cross_entropy"]),
    dtype=st.sampled_from([np.float64, np.float32]),
    capacity=st.integers(1, 5),
    seed=st.integers(0, 2**32 - 1),
)
def test_one_sample_step_applies_exactly_the_gradient(layers, loss, dtype, capacity, seed):
    """With one sample, plain SGD is applied during backprop (src/nnfast/_dense.pyx,
    backward_sgd_one_row); it must give params - lr * gradient to the bit, whatever
    batch the scratch buffers were sized for."""
    rng = np.random.default_rng(seed)
    net = nnfast.Net(layers, loss=loss, dtype=dtype, seed=seed % 1000)
    net.predict(np.zeros((capacity, layers[0])))  # scratch for `capacity` rows
    net.biases = [rng.standard_normal(b.shape) for b in net.biases]
    x = rng.standard_normal((1, layers[0])).astype(dtype)
    y = rng.random((1, layers[-1])).astype(dtype)
    weight_grads, bias_grads = net.gradients(x, y)
    expected = [w - 0.01 * g for w, g in zip(net.weights, weight_grads)]
    expected += [b - 0.01 * g for b, g in zip(net.biases, bias_grads)]
    net.train_step(x, y, 0.01)
    for got, want in zip(net.weights + net.biases, expected):
        np.testing.assert_array_equal(got, want)


@diverging
@pytest.mark.parametrize("train", ["train_step", "fit"])
def test_partly_overflowing_update_leaves_every_parameter_as_it_was(net_class, train):
    """When only some updated parameters overflow, the others are not left updated either."""
    net = net_class([2, 1], bias=False)
    net.weights = [np.array([[1.0], [1.0]])]
    # Output 1 against target 0: gradient [2, 2e-300]. At lr 1e308 the first
    # weight's update overflows; the second's alone would be 1 - 2e8.
    x, y = np.array([[1.0, 1e-300]]), np.array([[0.0]])
    with pytest.raises(nnfast.DivergenceError, match="the updated parameters"):
        if train == "fit":
            net.fit(x, y, epochs=1, lr=1e308)
        else:
            net.train_step(x, y, 1e308)
    np.testing.assert_array_equal(net.weights[0], [[1.0], [1.0]])


@diverging
@pytest.mark.parametrize("overflowing", ["last layer", "first layer"])
def test_one_sample_overflow_in_either_layer_leaves_the_net_as_it_was(net_class, overflowing):
    """Online SGD updates the layers from the last to the first: an overflow in the last
    leaves the first untouched, and one in the first undoes the last as well."""
    net = net_class([2, 1, 1], bias=False, loss="sse")
    y = np.array([[0.0]])
    if overflowing == "last layer":
        # Hidden value 1 and output gradient ~2: the last weight's step is 2e308, while
        # through the last weight of 1e-300 the first one's would be only 2e8.
        start = [np.array([[1.0], [0.0]]), np.array([[1e-300]])]
        x, y = np.array([[1.0, 0.0]]), np.array([[-1.0]])
    else:
        # Hidden value 1e-300 and output 1: the last weight moves by 2e8, the hidden
        # gradient is 2e300, and the first weight's step overflows.
        start = [np.array([[1e-300], [0.0]]), np.array([[1e300]])]
        x = np.array([[1.0, 0.0]])
    net.weights = start
    with pytest.raises(nnfast.DivergenceError, match="the updated parameters"):
        net.train_step(x, y, 1e308)
    for got, want in zip(net.weights, start):
        np.testing.assert_array_equal(got, want)


def test_divergence_error_attributes():
    """DivergenceError is a FloatingPointError carrying the step and the history."""
    history = nnfast.History([1.0, np.inf], 0, 2)
    error = nnfast.DivergenceError(1, 1, 0.5, history)
    assert isinstance(error, FloatingPointError)
    assert error.step == 1 and error.history is history
    assert "step 1" in str(error) and "lr=0.5" in str(error)


# -- pickle and copy ------------------------------------------------------------------


@pytest.mark.parametrize("clone", [lambda net: pickle.loads(pickle.dumps(net)), copy.deepcopy],
                         ids=["pickle", "deepcopy"])
def test_trained_net_round_trips(net_class, dtype, clone):
    """A trained net survives pickle/deepcopy exactly and keeps training identically."""
    x, y = data(30)
    net = net_class([3, 40, 20, 2], dtype=dtype, loss="mse", seed=12)
    net.fit(x, y, epochs=2, lr=0.01, batch_size=7, seed=1)
    copied = clone(net)
    assert type(copied) is type(net) and repr(copied) == repr(net)
    assert copied.dtype == net.dtype and copied.layers == net.layers
    np.testing.assert_array_equal(params_of(copied), params_of(net))
    np.testing.assert_array_equal(copied.predict(x), net.predict(x))
    np.testing.assert_array_equal(copied.predict(x[:3]), net.predict(x[:3]))
    np.testing.assert_array_equal(copied.fit(x, y, epochs=2, lr=0.01, batch_size=7, seed=2).loss,
                                  net.fit(x, y, epochs=2, lr=0.01, batch_size=7, seed=2).loss)
    np.testing.assert_array_equal(params_of(copied), params_of(net))
    # The copy is independent of the original.
    copied.train_step(x, y, 0.01)
    assert not np.array_equal(params_of(copied), params_of(net))


def test_pickle_leaves_out_scratch_buffers():
    """The compiled net's scratch buffers are not pickled, and the unpickled net rebuilds them."""
    net = nnfast.Net([3, 40, 1], seed=0)
    size_without = len(pickle.dumps(net))
    x = np.ones((2000, 3))
    expected = net.predict(x)  # scratch for 2000 rows: far larger than the parameters
    assert len(pickle.dumps(net)) == size_without
    copied = pickle.loads(pickle.dumps(net))
    np.testing.assert_array_equal(copied.predict(x), expected)
    np.testing.assert_array_equal(copied.predict(x[:3]), net.predict(x[:3]))
