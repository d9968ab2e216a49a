"""nnfast against PyTorch: trajectories of every optimizer x loss x activation, and the schedules.

Both nets start from identical float64 weights (ours are (fan_in, fan_out),
torch's nn.Linear stores (fan_out, fan_in)) and take full-batch steps; the
parameters after every step and the loss before it must agree to ~1e-10
relative (norm-wise over all parameters, see ``tests.conftest.rel_error``).
Skipped where torch is not installed (as in CI).
"""
import numpy as np
import pytest

import nnfast
from nnfast.schedules import CosineAnnealing, ExponentialDecay, StepDecay
from tests.conftest import fit_recording, make_net, params_of, random_data, rel_error

torch = pytest.importorskip("torch", reason="the PyTorch comparisons need torch, which CI does not install")
nn = torch.nn

LAYERS = [4, 8, 8, 3]
N_SAMPLES = 16
STEPS = 20
# Measured (torch 2.13, CPU): the largest difference over all the trajectories below is
# 1.6e-15 relative for the parameters (reference; compiled 1.1e-15), from Adam, whose first
# moment torch updates with lerp (SGD: 3.6e-16), and 8e-16 for the losses. 1e-10 leaves
# room for other summation orders without letting any formula difference through.
RTOL = 1e-10

# name -> (nnfast optimizer, torch optimizer on given parameters), both of a learning rate lr
# (SGD's is scaled down for "sse", whose gradient sums over the samples).
OPTIMIZERS = {
    "sgd": (lambda lr: nnfast.SGD(lr), lambda p, lr: torch.optim.SGD(p, lr=lr)),
    "sgd-momentum": (lambda lr: nnfast.SGD(lr, momentum=0.9), lambda p, lr: torch.optim.SGD(p, lr=lr, momentum=0.9)),
    "sgd-nesterov": (lambda lr: nnfast.SGD(lr, momentum=0.9, nesterov=True),
                     lambda p, lr: torch.optim.SGD(p, lr=lr, momentum=0.9, nesterov=True)),
    "sgd-weight-decay": (lambda lr: nnfast.SGD(lr, weight_decay=0.1),
                         lambda p, lr: torch.optim.SGD(p, lr=lr, weight_decay=0.1)),
    "sgd-momentum-weight-decay": (lambda lr: nnfast.SGD(lr, momentum=0.8, nesterov=True, weight_decay=0.1),
                                  lambda p, lr: torch.optim.SGD(p, lr=lr, momentum=0.8, nesterov=True,
                                                                weight_decay=0.1)),
    "adam": (lambda lr: nnfast.Adam(lr), lambda p, lr: torch.optim.Adam(p, lr=lr)),
    "adam-weight-decay": (lambda lr: nnfast.Adam(lr, betas=(0.8, 0.99), eps=1e-7, weight_decay=0.1),
                          lambda p, lr: torch.optim.Adam(p, lr=lr, betas=(0.8, 0.99), eps=1e-7, weight_decay=0.1)),
    "adamw": (lambda lr: nnfast.AdamW(lr, weight_decay=0.1),
              lambda p, lr: torch.optim.AdamW(p, lr=lr, weight_decay=0.1)),
}


def learning_rate(optimizer, loss):
    if optimizer.startswith("adam"):
        return 0.01
    return 0.05 / (N_SAMPLES * LAYERS[-1]) if loss == "sse" else 0.05


# name -> (our loss, torch loss, soft targets): the targets torch reads are ours, as tensors.
LOSSES = {
    "sse": ("sse", lambda: nn.MSELoss(reduction="sum"), False),
    "mse": ("mse", lambda: nn.MSELoss(), False),
    "cross_entropy-labels": ("cross_entropy", lambda: nn.CrossEntropyLoss(), False),
    "cross_entropy-probabilities": ("cross_entropy", lambda: nn.CrossEntropyLoss(), True),
    "binary_cross_entropy": ("binary_cross_entropy", lambda: nn.BCEWithLogitsLoss(), True),
}

SLOPE = 0.1
ACTIVATIONS = {
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(SLOPE),
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "identity": nn.Identity,
}


def torch_twin(net):
    """An nn.Sequential of float64 nn.Linear layers (and activations) with ``net``'s parameters."""
    modules, biases = [], iter(net.biases)
    activations = net.activation + [None]
    for w, has_bias, activation in zip(net.weights, net.bias, activations):
        linear = nn.Linear(w.shape[0], w.shape[1], bias=has_bias, dtype=torch.float64)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(w.T.copy()))
            if has_bias:
                linear.bias.copy_(torch.from_numpy(next(biases)))
        modules.append(linear)
        if activation is not None:
            modules.append(ACTIVATIONS[activation]())
    return nn.Sequential(*modules)


def torch_params(model):
    """torch's parameters in ``params_of`` order: every weight (as (fan_in, fan_out)), then every bias."""
    linears = [m for m in model if isinstance(m, nn.Linear)]
    weights = [m.weight.detach().numpy().T.ravel() for m in linears]
    biases = [m.bias.detach().numpy().ravel() for m in linears if m.bias is not None]
    return np.concatenate(weights + biases)


def torch_targets(y, loss):
    if loss == "cross_entropy" and np.ndim(y) == 1:
        return torch.from_numpy(np.asarray(y, dtype=np.int64))
    return torch.from_numpy(np.asarray(y, dtype=np.float64))


def torch_trajectory(model, make_optimizer, loss_fn, x, y, learning_rates=None, scheduler=None):
    """Full-batch steps; return (params after each step, loss before each step).

    ``scheduler(optimizer)`` makes an lr_scheduler stepped after every step (= epoch).
    """
    optimizer = make_optimizer(list(model.parameters()))
    schedule = scheduler(optimizer) if scheduler else None
    x = torch.from_numpy(x)
    trajectory, losses = [], []
    for _ in range(STEPS if learning_rates is None else len(learning_rates)):
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        if schedule is not None:
            schedule.step()
        losses.append(loss.item())
        trajectory.append(torch_params(model))
    return trajectory, np.array(losses)


def assert_same_trajectory(history, recorded, expected, torch_losses, what):
    errors = [rel_error(got, want) for got, want in zip(recorded, expected)]
    assert len(recorded) == len(expected)
    assert max(errors) <= RTOL, f"{what}: largest relative difference {max(errors):.3g} (step {np.argmax(errors)})"
    np.testing.assert_allclose(history.loss, torch_losses, rtol=RTOL, err_msg=what)
    # The run went somewhere: the comparison is of moving parameters.
    assert rel_error(recorded[-1], recorded[0]) > 1e-4


def compare(net_class, optimizer, loss, activation, **options):
    our_loss, make_loss, soft = LOSSES[loss]
    make_ours, make_theirs = OPTIMIZERS[optimizer]
    rng = np.random.default_rng(0)
    x, y = random_data(rng, N_SAMPLES, LAYERS, our_loss, soft)
    net = make_net(net_class, LAYERS, x=x, seed=1, loss=our_loss, activation=activation, negative_slope=SLOPE,
                   **options)
    model = torch_twin(net)
    np.testing.assert_array_equal(torch_params(model), params_of(net))
    lr = learning_rate(optimizer, our_loss)
    expected, torch_losses = torch_trajectory(model, lambda p: make_theirs(p, lr), make_loss(), x,
                                              torch_targets(y, our_loss))
    history, recorded = fit_recording(net, x, y, epochs=STEPS, optimizer=make_ours(lr))
    assert_same_trajectory(history, recorded, expected, torch_losses, f"{optimizer}/{loss}/{activation}")


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_trajectory_matches_torch(net_class, optimizer, loss, activation):
    compare(net_class, optimizer, loss, activation)


@pytest.mark.parametrize("optimizer", ["sgd-momentum-weight-decay", "adamw"])
def test_per_layer_activations_and_biases_match_torch(net_class, optimizer):
    compare(net_class, optimizer, "cross_entropy-labels", ["tanh", "leaky_relu"], bias=[True, False, True])
    compare(net_class, optimizer, "mse", ["relu", "sigmoid"], bias=[False, True, False])


# -- schedules --------------------------------------------------------------------------

# name -> (our schedule, torch scheduler on an optimizer)
SCHEDULES = {
    "step": (StepDecay(3, gamma=0.5), lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.5)),
    "exponential": (ExponentialDecay(0.85), lambda o: torch.optim.lr_scheduler.ExponentialLR(o, gamma=0.85)),
    "cosine": (CosineAnnealing(6, eta_min=0.001),
               lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=6, eta_min=0.001)),
}


@pytest.mark.parametrize("name", SCHEDULES)
def test_learning_rates_match_torch_schedulers(name):
    """Over 20 epochs (cosine: beyond t_max, where it rises again) the rates are torch's."""
    schedule, make_scheduler = SCHEDULES[name]
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    scheduler = make_scheduler(optimizer)
    torch_rates = []
    for _ in range(20):
        torch_rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    np.testing.assert_allclose(schedule.learning_rates(0.1, 20), torch_rates, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("optimizer", ["sgd-momentum", "adam", "adamw"])
@pytest.mark.parametrize("name", SCHEDULES)
def test_scheduled_trajectory_matches_torch(net_class, name, optimizer):
    """A scheduled fit (one full-batch step per epoch) follows torch's optimizer with its lr_scheduler."""
    schedule, make_scheduler = SCHEDULES[name]
    make_ours, make_theirs = OPTIMIZERS[optimizer]
    rng = np.random.default_rng(1)
    x, y = random_data(rng, N_SAMPLES, LAYERS, "mse")
    net = make_net(net_class, LAYERS, x=x, seed=2, loss="mse", activation="tanh")
    model = torch_twin(net)
    lr = learning_rate(optimizer, "mse")
    ours = make_ours(lr)
    expected, torch_losses = torch_trajectory(model, lambda p: make_theirs(p, lr), nn.MSELoss(), x,
                                              torch_targets(y, "mse"),
                                              learning_rates=schedule.learning_rates(ours.lr, 12),
                                              scheduler=make_scheduler)
    history, recorded = fit_recording(net, x, y, epochs=12, optimizer=ours, schedule=schedule)
    assert_same_trajectory(history, recorded, expected, torch_losses, f"{name}/{optimizer}")


def test_relu_gradient_at_exactly_zero_is_where_torch_differs(net_class):
    """At a pre-activation of exactly 0 our ReLU passes the gradient (the seed's grad_h[h < 0] = 0);
    torch's blocks it. That is why the comparisons above keep pre-activations off the kink.

    [1, 1, 1] net: z = 1 * 1 - 1 = 0, out = 2 * relu(0) = 0, sse against -1: d loss / d out = 2,
    d loss / d z = 2 * 2 * relu'(0): 4 for us, 0 for torch.
    """
    net = net_class([1, 1, 1], loss="sse")
    net.weights, net.biases = [np.array([[1.0]]), np.array([[2.0]])], [np.array([-1.0]), np.array([0.0])]
    x, y = np.array([[1.0]]), np.array([[-1.0]])
    (grad_w1, grad_w2), (grad_b1, grad_b2) = net.gradients(x, y)
    assert (grad_w1[0, 0], grad_b1[0], grad_w2[0, 0], grad_b2[0]) == (4.0, 4.0, 0.0, 2.0)
    model = torch_twin(net)
    loss = nn.MSELoss(reduction="sum")(model(torch.from_numpy(x)), torch.from_numpy(y))
    loss.backward()
    assert (model[0].weight.grad.item(), model[0].bias.grad.item()) == (0.0, 0.0)
    assert (model[2].weight.grad.item(), model[2].bias.grad.item()) == (0.0, 2.0)
