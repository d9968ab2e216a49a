"""``nnfast.torch``: nets to ``torch.nn.Sequential`` and back.

``to_torch(net)`` must compute ``net.predict`` (float64: within 1e-12
relative; float32: 1e-5), ``from_torch`` must read it back exactly, and a
round trip through one SGD step taken by torch must agree with nnfast's own
step to 1e-10. The tests that need torch skip where it is missing (as in
CI: ``pip install torch==2.13.0`` locally); the one that checks the error
without it runs everywhere.
"""
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given

import nnfast
import nnfast.reference
from tests.conftest import make_net, net_configs, random_data, rel_error

try:
    import torch
except ImportError:
    torch = None
else:
    import nnfast.torch

needs_torch = pytest.mark.skipif(torch is None, reason="needs torch, which CI does not install "
                                                       "(pip install torch==2.13.0)")
RTOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}


@needs_torch
@given(config=net_configs(max_hidden=3))
def test_the_module_computes_what_the_net_predicts_and_reads_back_exactly(config):
    dtype = config["dtype"]
    net = make_net(nnfast.Net, config["layers"], seed=config["seed"] % 1000, dtype=dtype, bias=config["bias"],
                   loss=config["loss"], activation=config["activation"],
                   negative_slope=config["negative_slope"])
    module = nnfast.torch.to_torch(net)
    assert all(parameter.requires_grad for parameter in module.parameters())
    x = np.random.default_rng(config["seed"]).standard_normal((config["n_samples"], net.layers[0])).astype(dtype)
    with torch.no_grad():
        got = module(torch.from_numpy(x)).numpy()
    expected = net.predict(x)
    assert got.dtype == dtype and got.shape == expected.shape
    assert rel_error(got, expected) <= RTOL[dtype]
    back = nnfast.torch.from_torch(module, loss=net.loss_name)
    np.testing.assert_array_equal(back.parameters, net.parameters)
    assert (back.layers, back.bias, back.dtype) == (net.layers, net.bias, net.dtype)
    if len(net.layers) > 2:
        assert back.activation == net.activation


def torch_loss(loss, output, target):
    if loss == "mse":
        return torch.nn.functional.mse_loss(output, target)
    if loss == "sse":
        return torch.nn.functional.mse_loss(output, target, reduction="sum")
    if loss == "cross_entropy":
        return torch.nn.functional.cross_entropy(output, target)
    return torch.nn.functional.binary_cross_entropy_with_logits(output, target)


@needs_torch
@pytest.mark.parametrize("net_class", [nnfast.Net, nnfast.reference.Net], ids=["fast", "reference"])
@pytest.mark.parametrize("loss", ["mse", "sse", "cross_entropy", "binary_cross_entropy"])
@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "tanh", "sigmoid", "identity"])
def test_one_sgd_step_in_torch_is_nnfast_s_step(net_class, loss, activation):
    layers = [5, 7, 6, 3]
    rng = np.random.default_rng(1)
    x, y = random_data(rng, 12, layers, loss)
    net = make_net(net_class, layers, x=x, seed=2, loss=loss, activation=activation, negative_slope=0.2,
                   bias=[True, False, True])
    module = nnfast.torch.to_torch(net)
    optimizer = torch.optim.SGD(module.parameters(), lr=0.05)
    target = torch.from_numpy(y) if loss != "cross_entropy" else torch.from_numpy(y).long()
    torch_loss(loss, module(torch.from_numpy(x)), target).backward()
    optimizer.step()
    stepped = nnfast.torch.from_torch(module, loss=loss)
    net.train_step(x, y, 0.05)
    assert rel_error(stepped.parameters, net.parameters) <= 1e-10


@needs_torch
def test_a_state_dict_reads_with_the_activations_given():
    module = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2, bias=False)).double()
    net = nnfast.torch.from_torch(module.state_dict(), activation="tanh")
    assert (net.layers, net.activation, net.bias) == ((3, 4, 2), ["tanh"], [True, False])
    x = np.random.default_rng(0).standard_normal((5, 3))
    assert rel_error(net.predict(x), module(torch.from_numpy(x)).detach().numpy()) <= 1e-12


@needs_torch
def test_a_last_softmax_or_sigmoid_sets_the_loss_and_nested_sequentials_flatten():
    nn = torch.nn
    body = nn.Sequential(nn.Linear(3, 4), nn.LeakyReLU(0.3), nn.Dropout(0.5))
    for last, loss in [(nn.Softmax(dim=1), "cross_entropy"), (nn.Sigmoid(), "binary_cross_entropy"),
                       (nn.Identity(), "mse")]:
        module = nn.Sequential(body, nn.Linear(4, 2), last).double().eval()
        net = nnfast.torch.from_torch(module)
        assert (net.layers, net.activation, net.negative_slope, net.loss_name) == ((3, 4, 2), ["leaky_relu"], 0.3,
                                                                                  loss)
        x = np.random.default_rng(0).standard_normal((6, 3))
        probabilities = module(torch.from_numpy(x)).detach().numpy()
        assert rel_error(net.predict_proba(x) if loss != "mse" else net.predict(x), probabilities) <= 1e-12


@needs_torch
@pytest.mark.parametrize("build, message", [
    (lambda nn: nn.Sequential(nn.Conv1d(1, 1, 1)), "cannot read Conv1d"),
    (lambda nn: nn.Sequential(nn.ReLU(), nn.Linear(2, 2)), "follows no layer"),
    (lambda nn: nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Tanh(), nn.Linear(2, 2)), "follows another"),
    (lambda nn: nn.Sequential(nn.Linear(2, 2), nn.ReLU()), "followed by a relu activation"),
    (lambda nn: nn.Sequential(nn.Linear(2, 3), nn.Linear(2, 2)), "the layer before has 3 outputs"),
    (lambda nn: nn.Sequential(nn.Linear(2, 2), nn.LeakyReLU(0.1), nn.Linear(2, 2), nn.LeakyReLU(0.2),
                              nn.Linear(2, 1)), "different slopes"),
    (lambda nn: nn.Sequential(nn.Linear(2, 2, dtype=torch.float16)), "nnfast nets are float32 or float64"),
    (lambda nn: nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2)).state_dict(), "neither a layer's weight"),
    (lambda nn: {}, "no '<name>.weight' entry"),
])
def test_what_is_not_an_mlp_is_refused_naming_it(build, message):
    with pytest.raises(ValueError, match=message):
        nnfast.torch.from_torch(build(torch.nn))


@needs_torch
def test_bad_arguments_are_refused():
    with pytest.raises(TypeError, match="module must be a torch.nn.Sequential"):
        nnfast.torch.from_torch(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="give it only with a state_dict"):
        nnfast.torch.from_torch(torch.nn.Sequential(torch.nn.Linear(2, 2)), activation="relu")
    with pytest.raises(TypeError, match="net must be an nnfast.Net"):
        nnfast.torch.to_torch(torch.nn.Linear(2, 2))


def test_import_without_torch_says_what_to_install(tmp_path):
    code = ("import sys; sys.modules['torch'] = None\n"
            "try:\n"
            "    import nnfast.torch\n"
            "except ImportError as error:\n"
            "    print(error)\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert "pip install torch" in result.stdout
