"""Saving and loading nets (nnfast.io), pickling and deep copies.

A saved and loaded net must be the same net: identical parameters bit for
bit, identical predictions and optimizer state, and training it further
must give exactly the history training the original gives. A file that is
not a valid nnfast file must raise ValueError saying why, and loading must
never execute anything from the file.
"""
import copy
import os
import pathlib
import pickle
import sys
import zipfile

import numpy as np
import pytest

import nnfast
import nnfast.io
import nnfast.reference
from nnfast.optimizers import SGD, Adam, AdamW

# nnfast.reference.Net is the main subject; the compiled nnfast.Net must
# behave the same.
NET_CLASSES = [nnfast.reference.Net, nnfast.Net]
NET_IDS = ["reference", "fast"]
DTYPES = [np.float64, np.float32]
DTYPE_IDS = ["float64", "float32"]

ARCHITECTURES = {
    "no_hidden_sse": dict(layers=[3, 2], loss="sse"),
    "relu_mse": dict(layers=[4, 6, 1], loss="mse", init="he_uniform"),
    "mixed_cross_entropy": dict(
        layers=[3, 5, 4, 3], activation=["tanh", "leaky_relu"], negative_slope=0.2,
        bias=[True, False, True], loss="cross_entropy", init="normal", init_std=0.3,
    ),
    "sigmoid_no_bias_bce": dict(
        layers=[5, 4, 2], activation="sigmoid", bias=False, loss="binary_cross_entropy",
        init="glorot_uniform",
    ),
    "identity_relu_sse": dict(
        layers=[2, 3, 3, 1], activation=["identity", "relu"], bias=[False, True, False], loss="sse",
        init="glorot_normal",
    ),
}

OPTIMIZERS = {
    "none": None,
    "sgd": lambda: SGD(1e-3),
    "sgd_momentum": lambda: SGD(1e-3, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "adam": lambda: Adam(1e-2, betas=(0.8, 0.99), eps=1e-7, weight_decay=1e-3),
    "adamw": lambda: AdamW(1e-2, weight_decay=0.05),
}

N_SAMPLES = 16
BATCH_SIZE = 5  # several batches per epoch, the last one smaller, shuffled


def make_data(arch, seed=0):
    """Inputs and targets of the kind ``arch``'s loss reads."""
    rng = np.random.default_rng(seed)
    layers, loss = arch["layers"], arch.get("loss", "sse")
    x = rng.standard_normal((N_SAMPLES, layers[0]))
    if loss == "cross_entropy":
        y = rng.integers(0, layers[-1], N_SAMPLES)
    elif loss == "binary_cross_entropy":
        y = rng.uniform(0, 1, (N_SAMPLES, layers[-1]))
    else:
        y = rng.standard_normal((N_SAMPLES, layers[-1]))
    return x, y


def make_net(net_class, arch="mixed_cross_entropy", dtype=np.float64, optimizer="adam"):
    """A net of ``arch`` with non-zero biases, trained 3 epochs with ``optimizer`` (untrained for "none")."""
    kwargs = ARCHITECTURES[arch]
    net = net_class(**kwargs, dtype=dtype, seed=3)
    rng = np.random.default_rng(7)
    net.biases = [0.1 * rng.standard_normal(b.shape) for b in net.biases]
    x, y = make_data(kwargs)
    if OPTIMIZERS[optimizer] is not None:
        net.fit(x, y, epochs=3, optimizer=OPTIMIZERS[optimizer](), batch_size=BATCH_SIZE, seed=0)
    return net, x, y


def continue_fit(net, x, y):
    """Train two more epochs, with the net's optimizer (plain SGD if it has none)."""
    lr = 1e-3 if net.optimizer is None else None
    return net.fit(x, y, epochs=2, lr=lr, batch_size=BATCH_SIZE, seed=1)


def assert_same_bits(actual, expected, what):
    assert isinstance(actual, np.ndarray), f"{what}: not an array"
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    # A bool, not the comparison itself: on CI pytest would explain a failure
    # by diffing the two byte strings, which takes hours at these sizes.
    same_bytes = actual.tobytes() == expected.tobytes()
    assert same_bytes, f"{what}: values differ"


def assert_same_net(actual, expected):
    """``actual`` is a separate, identical copy of ``expected``: options, parameters, optimizer state."""
    assert type(actual) is type(expected)
    assert actual.layers == expected.layers
    assert actual.activation == expected.activation
    assert actual.negative_slope == expected.negative_slope
    assert actual.bias == expected.bias
    assert actual.loss_name == expected.loss_name
    assert (actual._init, actual._init_std) == (expected._init, expected._init_std)
    assert actual.dtype == expected.dtype
    assert_same_bits(actual._params, expected._params, "params")
    assert not np.shares_memory(actual._params, expected._params)
    if expected.optimizer is None:
        assert actual.optimizer is None
        return
    assert type(actual.optimizer) is type(expected.optimizer)
    assert actual.optimizer is not expected.optimizer
    assert actual.optimizer._fields() == expected.optimizer._fields()
    assert actual.optimizer.step_count == expected.optimizer.step_count
    assert type(actual.optimizer.step_count) is int
    if expected.optimizer.buffers is None:
        assert actual.optimizer.buffers is None
    else:
        assert_same_bits(actual.optimizer.buffers, expected.optimizer.buffers, "optimizer buffers")
        assert not np.shares_memory(actual.optimizer.buffers, expected.optimizer.buffers)
        assert actual.optimizer.buffers.flags.c_contiguous and actual.optimizer.buffers.flags.writeable


def assert_trains_the_same(copied, original, x, y):
    """Training the copy first and the original second gives identical histories and results.

    Training the copy first also checks that it shares no state with the
    original: the original's run would differ if it did.
    """
    copied_history = continue_fit(copied, x, y)
    original_history = continue_fit(original, x, y)
    assert_same_bits(copied_history.loss, original_history.loss, "step losses")
    assert_same_bits(copied_history.epoch_loss, original_history.epoch_loss, "epoch losses")
    assert_same_net(copied, original)


# -- round trips -------------------------------------------------------------------


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("arch", list(ARCHITECTURES))
@pytest.mark.parametrize("net_class", NET_CLASSES, ids=NET_IDS)
def test_round_trip_is_exact_and_trains_on_identically(tmp_path, net_class, arch, dtype, optimizer):
    net, x, y = make_net(net_class, arch, dtype, optimizer)
    path = nnfast.io.save(net, tmp_path / "net.npz")
    loaded = nnfast.io.load(path)
    assert_same_net(loaded, net)
    assert_same_bits(loaded.predict(x), net.predict(x), "predictions")
    assert_trains_the_same(loaded, net, x, y)


@pytest.mark.parametrize("net_class", NET_CLASSES, ids=NET_IDS)
def test_round_trip_of_an_optimizer_without_state(tmp_path, net_class):
    """An optimizer that was reset (or never used) has no buffers; it loads without them."""
    net, x, y = make_net(net_class, optimizer="adam")
    net.reset_optimizer()
    assert net.optimizer.buffers is None and net.optimizer.step_count == 0
    loaded = nnfast.io.load(nnfast.io.save(net, tmp_path / "net.npz"))
    assert_same_net(loaded, net)
    assert "optimizer_buffers" not in np.load(tmp_path / "net.npz").files
    assert_trains_the_same(loaded, net, x, y)


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("optimizer", ["sgd", "sgd_momentum", "adam"])
def test_files_of_earlier_versions_load_and_train_on_identically(tmp_path, optimizer, version):
    """Versions 1 and 2 have no l2 and optimizer_style (so 0 and torch's), and version 1
    stored two moment buffers for every optimizer; the unused rows are dropped."""
    net, x, y = make_net(nnfast.Net, optimizer=optimizer)
    with np.load(nnfast.io.save(net, tmp_path / "net.npz"), allow_pickle=False) as contents:
        entries = {key: contents[key] for key in contents.files}
    assert entries.pop("l2") == 0 and entries.pop("optimizer_style") == "torch"
    entries["format_version"] = np.array(version)
    if version == 1:
        stored = entries["optimizer_buffers"]
        entries["optimizer_buffers"] = np.zeros((2, net.n_params))
        entries["optimizer_buffers"][: stored.shape[0]] = stored
    loaded = nnfast.io.load(write_npz(tmp_path / f"v{version}.npz", entries))
    assert loaded.optimizer.buffers.shape == (net.optimizer.n_moments, net.n_params)
    assert_same_net(loaded, net)
    assert_trains_the_same(loaded, net, x, y)


@pytest.mark.parametrize("net_class", NET_CLASSES, ids=NET_IDS)
def test_round_trip_of_a_large_float32_net(tmp_path, net_class):
    """Parameters stay float32 in the file, and a larger vector survives bit for bit."""
    net = net_class([30, 200, 50, 10], activation=["relu", "tanh"], dtype="float32", seed=11)
    net.optimizer = AdamW(1e-3)
    rng = np.random.default_rng(0)
    net.optimizer._bind(net.n_params, net.dtype)
    net.optimizer.buffers[...] = rng.standard_normal(net.optimizer.buffers.shape)
    net.optimizer.buffers[1] **= 2  # second moments are never negative
    net.optimizer.step_count = 12345
    path = nnfast.io.save(net, tmp_path / "big.npz")
    with np.load(path, allow_pickle=False) as contents:
        assert contents["params"].dtype == np.float32
        assert contents["optimizer_buffers"].dtype == np.float32
    assert_same_net(nnfast.io.load(path), net)


def test_the_file_holds_only_plain_arrays(tmp_path):
    net, _, _ = make_net(nnfast.reference.Net, optimizer="sgd_momentum")
    path = nnfast.io.save(net, tmp_path / "net.npz")
    with np.load(path, allow_pickle=False) as contents:
        entries = {key: contents[key] for key in contents.files}
    assert set(entries) == {
        "format", "format_version", "class", "layers", "activations", "negative_slope", "bias", "loss",
        "l2", "init", "init_std", "dtype", "params", "optimizer", "optimizer_lr", "optimizer_momentum",
        "optimizer_nesterov", "optimizer_weight_decay", "optimizer_style", "optimizer_step_count",
        "optimizer_buffers",
    }
    for key, value in entries.items():
        assert value.dtype.kind in "biufU", f"{key} has dtype {value.dtype}"
    assert entries["format"] == "nnfast" and entries["format_version"] == 3
    assert entries["optimizer_buffers"].shape == (1, entries["params"].size)  # momentum only
    assert entries["class"] == "nnfast.reference.Net"
    assert entries["layers"].tolist() == [3, 5, 4, 3]
    assert entries["activations"].tolist() == ["tanh", "leaky_relu"]
    assert entries["bias"].tolist() == [True, False, True]
    assert entries["loss"] == "cross_entropy" and entries["dtype"] == "float64"
    assert entries["optimizer"] == "SGD" and bool(entries["optimizer_nesterov"]) is True
    assert entries["optimizer_step_count"] == 12  # 3 epochs of 4 batches


def test_a_net_without_optimizer_has_no_optimizer_entries(tmp_path):
    net, _, _ = make_net(nnfast.reference.Net, "no_hidden_sse", optimizer="none")
    path = nnfast.io.save(net, tmp_path / "net.npz")
    with np.load(path, allow_pickle=False) as contents:
        assert contents["optimizer"] == "none"
        assert contents["activations"].shape == (0,)
        assert not [key for key in contents.files if key.startswith("optimizer_")]


def test_save_writes_exactly_the_given_path_and_returns_it(tmp_path):
    net, _, _ = make_net(nnfast.reference.Net)
    returned = nnfast.io.save(net, str(tmp_path / "model"))  # no .npz suffix is added
    assert returned == tmp_path / "model" and isinstance(returned, pathlib.Path)
    assert sorted(os.listdir(tmp_path)) == ["model"]
    assert_same_net(nnfast.io.load(str(tmp_path / "model")), net)
    assert_same_net(nnfast.io.load(tmp_path / "model"), net)


def test_save_replaces_an_existing_file(tmp_path):
    first, _, _ = make_net(nnfast.reference.Net, "relu_mse", optimizer="adam")
    second, _, _ = make_net(nnfast.reference.Net, "no_hidden_sse", optimizer="none")
    path = tmp_path / "net.npz"
    nnfast.io.save(first, path)
    nnfast.io.save(second, path)
    assert_same_net(nnfast.io.load(path), second)


def test_loading_twice_gives_independent_nets(tmp_path):
    net, x, y = make_net(nnfast.reference.Net)
    path = nnfast.io.save(net, tmp_path / "net.npz")
    one, two = nnfast.io.load(path), nnfast.io.load(path)
    assert_trains_the_same(one, two, x, y)


# -- what save refuses --------------------------------------------------------------


def test_save_refuses_a_subclass(tmp_path):
    class Custom(nnfast.reference.Net):
        pass

    with pytest.raises(TypeError, match="nnfast.Net or nnfast.reference.Net"):
        nnfast.io.save(Custom([2, 1], seed=0), tmp_path / "net.npz")
    with pytest.raises(TypeError):
        nnfast.io.save("not a net", tmp_path / "net.npz")
    assert not os.listdir(tmp_path)


def test_save_refuses_state_that_would_not_load(tmp_path):
    net, _, _ = make_net(nnfast.reference.Net)
    other, _, _ = make_net(nnfast.reference.Net, "relu_mse")
    net.optimizer = other.optimizer  # state for a net of another size
    with pytest.raises(ValueError, match="reset_optimizer"):
        nnfast.io.save(net, tmp_path / "net.npz")
    net.reset_optimizer()
    with pytest.raises(ValueError, match="^lr must be"):
        net.optimizer.lr = -1.0  # refused when set
    net.optimizer._lr = -1.0  # as an object edited behind the setter's back
    with pytest.raises(ValueError, match="hyper-parameters"):
        nnfast.io.save(net, tmp_path / "net.npz")
    net.optimizer = object()
    with pytest.raises(TypeError, match="optimizer"):
        nnfast.io.save(net, tmp_path / "net.npz")
    net.optimizer = None
    net._params[0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        nnfast.io.save(net, tmp_path / "net.npz")
    assert not os.listdir(tmp_path)  # nothing was written


# -- pickle and deepcopy -------------------------------------------------------------


COPIERS = {
    "pickle": lambda net: pickle.loads(pickle.dumps(net)),
    "deepcopy": copy.deepcopy,
}


@pytest.mark.parametrize("copier", list(COPIERS))
@pytest.mark.parametrize("optimizer", ["none", "sgd_momentum", "adam", "adamw"])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("net_class", NET_CLASSES, ids=NET_IDS)
def test_pickle_and_deepcopy_are_exact_and_train_on_identically(net_class, dtype, optimizer, copier):
    net, x, y = make_net(net_class, "mixed_cross_entropy", dtype, optimizer)
    copied = COPIERS[copier](net)
    assert_same_net(copied, net)
    assert_same_bits(copied.predict(x), net.predict(x), "predictions")
    assert_trains_the_same(copied, net, x, y)


# -- files that are not valid ----------------------------------------------------------


@pytest.fixture
def saved(tmp_path):
    """A saved, trained reference net (Adam) and its file's entries."""
    net, _, _ = make_net(nnfast.reference.Net, "mixed_cross_entropy", np.float64, "adam")
    path = nnfast.io.save(net, tmp_path / "good.npz")
    with np.load(path, allow_pickle=False) as contents:
        entries = {key: contents[key] for key in contents.files}
    return path, entries


def write_npz(path, entries):
    """Write ``entries`` as an .npz at exactly ``path`` (object arrays are pickled into it)."""
    with open(path, "wb") as file:
        np.savez(file, **entries)
    return path


def assert_invalid(path, match):
    """Loading ``path`` raises ValueError saying the file is not valid, and why."""
    with pytest.raises(ValueError, match=match) as excinfo:
        nnfast.io.load(path)
    message = str(excinfo.value)
    assert message.startswith(f"{os.fspath(path)} is not a valid nnfast file: "), message
    return excinfo.value


def test_a_missing_file_raises_file_not_found_and_value_error(tmp_path):
    with pytest.raises(FileNotFoundError) as excinfo:
        nnfast.io.load(tmp_path / "nothing.npz")
    assert isinstance(excinfo.value, ValueError)
    assert excinfo.value.filename == os.fspath(tmp_path / "nothing.npz")


@pytest.mark.parametrize("keep", ["nothing", "10 bytes", "half", "all but the last byte"])
def test_truncated_file(saved, tmp_path, keep):
    path, _ = saved
    data = path.read_bytes()
    length = {"nothing": 0, "10 bytes": 10, "half": len(data) // 2, "all but the last byte": len(data) - 1}[keep]
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(data[:length])
    assert_invalid(truncated, "it is empty" if length == 0 else "cannot read it as an .npz archive")


def test_corrupted_parameter_bytes(saved, tmp_path):
    """A flipped bit inside the stored parameters fails the archive's checksum."""
    path, entries = saved
    data = bytearray(path.read_bytes())
    start = bytes(data).find(entries["params"].tobytes())
    assert start > 0
    data[start + 3] ^= 0x10
    corrupted = tmp_path / "corrupted.npz"
    corrupted.write_bytes(bytes(data))
    error = assert_invalid(corrupted, "cannot read its entry 'params' .*CRC")
    assert isinstance(error.__cause__, zipfile.BadZipFile)


@pytest.mark.parametrize("kind", ["random", "zip magic then random", "text"])
def test_random_bytes(tmp_path, kind):
    rng = np.random.default_rng(5)
    data = {
        "random": rng.bytes(2000),
        "zip magic then random": b"PK\x03\x04" + rng.bytes(2000),
        "text": b"layers = [3, 5, 4, 3]\n" * 20,
    }[kind]
    path = tmp_path / "noise.npz"
    path.write_bytes(data)
    assert_invalid(path, "cannot read it as" if kind.startswith("zip") else "it is not an .npz archive")


def test_a_single_npy_array(saved, tmp_path):
    _, entries = saved
    path = tmp_path / "params.npy"
    np.save(path, entries["params"])
    assert_invalid(path, "single .npy array")


def test_a_zip_that_is_not_an_npz(tmp_path):
    path = tmp_path / "other.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "hello")
    assert_invalid(path, "'readme.txt' is not a NumPy array")


def test_an_empty_npz(tmp_path):
    assert_invalid(write_npz(tmp_path / "empty.npz", {}), "'format' is missing")


REQUIRED_ENTRIES = [
    "format", "format_version", "class", "layers", "activations", "negative_slope", "bias", "loss",
    "l2", "init", "init_std", "dtype", "params", "optimizer", "optimizer_lr", "optimizer_betas",
    "optimizer_eps", "optimizer_weight_decay", "optimizer_style", "optimizer_step_count",
]


@pytest.mark.parametrize("key", REQUIRED_ENTRIES)
def test_a_missing_entry(saved, tmp_path, key):
    _, entries = saved
    del entries[key]
    assert_invalid(write_npz(tmp_path / "bad.npz", entries), f"'{key}' is missing")


def with_entries(**changes):
    """A mutation replacing entries (None deletes one)."""
    def mutate(entries):
        for key, value in changes.items():
            if value is None:
                del entries[key]
            else:
                entries[key] = value
    return mutate


def edit_params(function):
    def mutate(entries):
        entries["params"] = function(entries["params"])
    return mutate


def with_nan(params):
    params = params.copy()
    params[4] = np.nan
    return params


def with_inf(params):
    params = params.copy()
    params[-1] = -np.inf
    return params


N_PARAMS = 3 * 5 + 5 + 5 * 4 + 4 * 3 + 3  # mixed_cross_entropy: biases on layers 0 and 2

BAD_ENTRIES = {
    "version 4": (with_entries(format_version=np.array(4)), "file format version 4, this nnfast reads 1, 2 and 3 \\(the file was written by a newer nnfast\\)"),
    "version 0": (with_entries(format_version=np.array(0)), "file format version 0, this nnfast reads 1, 2 and 3$"),
    "version 2 with an l2": (with_entries(format_version=np.array(2)), "unexpected entries 'l2', 'optimizer_style'"),
    "an unknown style": (with_entries(optimizer_style=np.array("keras")), "style must be one of 'torch', 'sklearn'"),
    "a negative l2": (with_entries(l2=np.array(-1.0)), "l2 must be a finite number in \\[0, inf\\)"),
    "version as a string": (with_entries(format_version=np.array("1")), "'format_version' must be a scalar"),
    "another format": (with_entries(format=np.array("keras")), "format entry is 'keras'"),
    "params too short": (edit_params(lambda p: p[:-1]), f"shape \\({N_PARAMS - 1},\\).*{N_PARAMS} parameters"),
    "params too long": (edit_params(lambda p: np.append(p, 0.0)), f"{N_PARAMS} parameters"),
    "params 2-d": (edit_params(lambda p: p.reshape(1, -1)), "shape \\(1, "),
    "params float32": (edit_params(lambda p: p.astype(np.float32)), "dtype float32, but the net's dtype is float64"),
    "params int": (edit_params(lambda p: p.astype(np.int64)), "dtype int64"),
    "params big-endian": (edit_params(lambda p: p.astype(">f8")), "dtype >f8"),
    "params nan": (edit_params(with_nan), "must be finite, got nan at index 4"),
    "params inf": (edit_params(with_inf), "must be finite, got -inf"),
    "dtype float16": (with_entries(dtype=np.array("float16")), "unknown dtype 'float16'"),
    "unknown class": (with_entries(**{"class": np.array("os.system")}), "unknown class 'os.system'"),
    "class by module path": (with_entries(**{"class": np.array("nnfast.net.Net")}), "unknown class"),
    "unknown activation": (with_entries(activations=np.array(["tanh", "swish"])), "unknown activation 'swish' for hidden layer 1"),
    "unknown loss": (with_entries(loss=np.array("hinge")), "unknown loss 'hinge'"),
    "unknown init": (with_entries(init=np.array("orthogonal")), "unknown init 'orthogonal'"),
    "unknown optimizer": (with_entries(optimizer=np.array("RMSprop")), "unknown optimizer kind 'RMSprop'"),
    "unexpected entry": (with_entries(notes=np.array("hello")), "unexpected entries 'notes'"),
    "SGD entries in an Adam file": (with_entries(optimizer_momentum=np.array(0.5)), "unexpected entries"),
    "layers as floats": (with_entries(layers=np.array([3.0, 5.0, 4.0, 3.0])), "'layers' must be .* integer"),
    "layers 0-d": (with_entries(layers=np.array(3)), "'layers' must be a 1-d array of an integer type"),
    "layers with a zero": (with_entries(layers=np.array([3, 0, 4, 3])), "layers must be a sequence"),
    "huge layers": (with_entries(layers=np.array([2**31 - 1] * 4)), "parameters"),
    "bias as ints": (with_entries(bias=np.array([1, 0, 1])), "'bias' must be .* bool"),
    "too few bias flags": (with_entries(bias=np.array([True, False])), "'bias' must be an array of shape \\(3,\\) of a bool"),
    "activation as a number": (with_entries(activations=np.array([1, 2])), "'activations' must be .* string"),
    "too many activations": (
        with_entries(activations=np.array(["tanh", "relu", "relu"])), "'activations' must be an array of shape \\(2,\\)"
    ),
    "negative_slope as a string": (with_entries(negative_slope=np.array("0.2")), "'negative_slope' must be"),
    "negative_slope nan": (with_entries(negative_slope=np.array(np.nan)), "'negative_slope' must be finite"),
    "negative negative_slope": (with_entries(negative_slope=np.array(-1.0)), "refused .*negative_slope"),
    "negative init_std": (with_entries(init_std=np.array(-0.5)), "refused .*init_std"),
    "cross_entropy with one output": (
        with_entries(layers=np.array([3, 5, 4, 1]), params=np.zeros(N_PARAMS - 2 * 4 - 2),
                     optimizer_buffers=np.zeros((2, N_PARAMS - 2 * 4 - 2))),
        "refused .*cross_entropy",
    ),
    "negative lr": (with_entries(optimizer_lr=np.array(-1.0)), "Adam hyper-parameters are refused: lr"),
    "beta of 1": (with_entries(optimizer_betas=np.array([1.0, 0.9])), "refused: betas"),
    "three betas": (with_entries(optimizer_betas=np.array([0.9, 0.9, 0.9])), "'optimizer_betas' must be an array of shape \\(2,\\)"),
    "negative step count": (with_entries(optimizer_step_count=np.array(-3)), "'optimizer_step_count' must be >= 0"),
    "buffers of the wrong shape": (with_entries(optimizer_buffers=np.zeros((2, 7))), "'optimizer_buffers' must have shape"),
    "three moment buffers": (
        with_entries(optimizer_buffers=np.zeros((3, N_PARAMS))), "must have shape \\(2, "
    ),
    "buffers of the wrong dtype": (
        with_entries(optimizer_buffers=np.zeros((2, N_PARAMS), np.float32)), "dtype float64, got shape .* float32"
    ),
}


@pytest.mark.parametrize("case", list(BAD_ENTRIES))
def test_bad_entries(saved, tmp_path, case):
    _, entries = saved
    mutate, match = BAD_ENTRIES[case]
    mutate(entries)
    assert_invalid(write_npz(tmp_path / "bad.npz", entries), match)


class _Payload:
    """Unpickling this makes the directory ``marker``: proof that code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


@pytest.mark.parametrize("key", ["activations", "params", "extra"])
def test_an_object_array_is_refused_without_running_it(saved, tmp_path, key):
    _, entries = saved
    marker = tmp_path / "code_ran"
    entries[key] = np.array([_Payload(marker), "relu"], dtype=object)
    path = write_npz(tmp_path / "evil.npz", entries)
    # An unknown entry is refused by its name alone, before its header is read.
    assert_invalid(path, "unexpected entries 'extra'" if key == "extra" else f"cannot read its entry '{key}'")
    assert not marker.exists()
    # The payload is live: NumPy with allow_pickle=True would run it.
    with np.load(path, allow_pickle=True) as contents:
        contents[key]
    assert marker.exists()


def test_a_pickle_file_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "code_ran"
    path = tmp_path / "evil.npz"
    path.write_bytes(pickle.dumps(_Payload(marker)))
    assert_invalid(path, "it is not an .npz archive")
    assert not marker.exists()
    pickle.loads(path.read_bytes())  # the payload is live
    assert marker.exists()


def test_the_loaded_class_comes_from_a_fixed_table(saved, tmp_path):
    """A class name that would import something is refused before anything is imported."""
    _, entries = saved
    entries["class"] = np.array("nnfast_io_test_module_that_must_not_be_imported.Net")
    assert_invalid(write_npz(tmp_path / "bad.npz", entries), "unknown class")
    assert not [name for name in list(sys.modules) if "must_not_be_imported" in name]



@pytest.mark.parametrize("net_class", NET_CLASSES, ids=NET_IDS)
def test_a_memory_mapped_joblib_load_trains_on(tmp_path, net_class):
    """joblib.load(mmap_mode="r") gives read-only arrays; the net and its optimizer copy them,
    so that predicting and training go on (a compiled fit once wrote into the read-only step
    counter and crashed)."""
    joblib = pytest.importorskip("joblib", reason="joblib comes with scikit-learn, a test extra")
    net, x, y = make_net(net_class, optimizer="adam")
    joblib.dump(net, tmp_path / "net.joblib")
    loaded = joblib.load(tmp_path / "net.joblib", mmap_mode="r")
    assert_same_net(loaded, net)
    np.testing.assert_array_equal(loaded.predict(x), net.predict(x))
    assert_trains_the_same(loaded, net, x, y)
    optimizer = joblib.load(joblib.dump(net.optimizer, tmp_path / "adam.joblib")[0], mmap_mode="r")
    steps = optimizer.step_count
    fresh, _, _ = make_net(net_class)
    fresh.fit(x, y, epochs=1, optimizer=optimizer, batch_size=BATCH_SIZE, seed=1)
    assert optimizer.step_count > steps


def test_the_compiled_loop_refuses_a_read_only_step_counter():
    from nnfast import _kernels
    from nnfast._training import TrainingRun
    net = nnfast.Net([3, 4, 2], seed=0)
    x, y = np.ones((5, 3)), np.ones((5, 2))
    optimizer = SGD(0.1)
    optimizer._bind(net.n_params, net.dtype)
    run = TrainingRun(5, net.n_params, net.dtype, 1, 5, False, 0, optimizer, np.full(1, 0.1), False, False,
                      1, 0.0)
    run.optimizer_steps.flags.writeable = False
    with pytest.raises(ValueError, match="writeable int64"):
        _kernels.for_layers(net.layers).fit.run_epochs(
            net._layout.table, 0, 0.01, 0.0, net._params, x, y, None, None,
            np.empty(net._layout.workspace_length(5)), np.empty((1, 3)), np.empty((1, 2)), np.empty(1),
            run, 1, net._fast.lock)
