"""The specification of nnfast, in plain NumPy.

``nnfast.reference.Net`` has the interface of ``nnfast.Net`` and computes
the same things in the plainest NumPy there is: the seed notebook's
two-layer code generalized to any depth, biases, several activations and
losses, the optimizers of ``nnfast.optimizers``, schedules, validation and
early stopping. Every compiled kernel is tested against it and every
benchmark is timed against it, so it favours being obviously right over
being fast.
"""
import math

import numpy as np
from scipy.special import xlogy

from nnfast import _random
from nnfast._base import BaseNet
from nnfast._history import LOSS_NOT_FINITE, STEP_OK, UPDATE_NOT_FINITE
from nnfast._validation import CLASSIFICATION_LOSSES
from nnfast.ensemble import BaseEnsemble
from nnfast.optimizers import ADAM_CODE, ADAMW_CODE, STYLES

__all__ = ["Net", "Ensemble"]


def sigmoid(z):
    """1 / (1 + exp(-z)), computed without overflow for either sign of ``z``."""
    decay = np.exp(-np.abs(z))  # in (0, 1]
    return np.where(z >= 0, 1 / (1 + decay), decay / (1 + decay))


def activation_forward(name, z, negative_slope):
    """The activation of pre-activations ``z``."""
    if name == "relu":
        return np.maximum(z, 0)
    if name == "leaky_relu":
        return np.where(z < 0, negative_slope * z, z)
    if name == "tanh":
        return np.tanh(z)
    if name == "sigmoid":
        return sigmoid(z)
    return z  # identity


def activation_derivative(name, z, a, negative_slope):
    """The derivative of the activation at ``z`` (whose activation is ``a``)."""
    if name == "relu":
        return np.where(z < 0, 0.0, 1.0).astype(z.dtype)  # the seed's grad_h[h < 0] = 0
    if name == "leaky_relu":
        return np.where(z < 0, negative_slope, 1.0).astype(z.dtype)
    if name == "tanh":
        return 1 - a * a
    if name == "sigmoid":
        return a * (1 - a)
    return np.ones_like(z)  # identity


def total_weight(weights, n_samples):
    """What a weighted mean divides by: the weights' sum (in float64), or the
    row count without weights; 1 where every weight is 0, so that such a
    batch has loss 0 and gradient 0."""
    if weights is None:
        return n_samples
    total = float(np.sum(weights, dtype=np.float64))
    return total if total != 0 else 1.0


def loss_and_output_gradient(loss, y_pred, y, weights=None):
    """Return the loss of the outputs ``y_pred`` against ``y`` and its gradient w.r.t. ``y_pred``.

    ``weights`` (one per row, or None for all ones) multiply each row's
    term; the mean losses divide by ``total_weight`` instead of the row
    count. Weights of one give exactly the unweighted results.
    """
    n_samples, n_out = y_pred.shape
    weight = 1.0 if weights is None else weights[:, np.newaxis]
    normalizer = total_weight(weights, n_samples)
    if loss in ("sse", "mse", "squared_error"):
        diff = y_pred - y
        total = (weight * np.square(diff)).sum()
        if loss == "sse":
            return float(total), 2.0 * (weight * diff)
        if loss == "squared_error":  # half the sum over outputs, averaged over samples
            return float(total * 0.5 / normalizer), (1.0 / normalizer) * (weight * diff)
        return float(total / (normalizer * n_out)), (2.0 / (normalizer * n_out)) * (weight * diff)
    if loss == "cross_entropy":
        # log softmax through the log-sum-exp, shifted by the row maximum.
        top = y_pred.max(axis=1, keepdims=True)
        log_sum_exp = top + np.log(np.exp(y_pred - top).sum(axis=1, keepdims=True))
        total = (weight * (y * (log_sum_exp - y_pred))).sum()
        softmax = np.exp(y_pred - log_sum_exp)
        return float(total / normalizer), weight * (softmax * y.sum(axis=1, keepdims=True) - y) / normalizer
    if loss == "poisson":
        # Half the Poisson deviance of the mean exp(y_pred), summed over the
        # outputs: y log(y / mean) - y + mean, with 0 log 0 = 0.
        mean = np.exp(y_pred)
        total = (weight * (mean - y * y_pred + xlogy(y, y) - y)).sum()
        return float(total / normalizer), weight * (mean - y) / normalizer
    # binary_cross_entropy: max(z, 0) - z*t + log(1 + exp(-|z|)), as BCEWithLogitsLoss,
    # averaged over the elements; binary_log_loss: summed over the outputs instead.
    denominator = normalizer if loss == "binary_log_loss" else normalizer * n_out
    total = (weight * (np.maximum(y_pred, 0) - y_pred * y + np.log1p(np.exp(-np.abs(y_pred))))).sum()
    return float(total / denominator), weight * (sigmoid(y_pred) - y) / denominator


def accuracy(loss, y_pred, y):
    """The fraction classified right: argmax agreement for cross_entropy, the
    side of 0.5 of every output for the binary losses."""
    if loss == "cross_entropy":
        return float(np.mean(y_pred.argmax(axis=1) == y.argmax(axis=1)))
    return float(np.mean((y_pred >= 0) == (y >= 0.5)))


def optimizer_update(optimizer, hyper, step, buffers, params, grad, lr):
    """Return the updated ``(params, buffers)`` of one optimizer step ``step`` (from 1).

    ``hyper`` is ``optimizer.hyperparameters()``; the formulas are those in
    ``nnfast.optimizers``. Nothing is modified in place.
    """
    # Python floats: NumPy rounds them to the params' dtype (a NumPy float64
    # scalar would instead promote float32 arithmetic to float64).
    code, momentum, nesterov, weight_decay, beta1, beta2, eps, style = hyper.tolist()
    sklearn_style = STYLES[int(style)] == "sklearn"
    if code == ADAMW_CODE:
        params = params * (1 - lr * weight_decay)
    elif weight_decay != 0:
        grad = grad + weight_decay * params
    if code in (ADAM_CODE, ADAMW_CODE):
        m = beta1 * buffers[0] + (1 - beta1) * grad
        v = beta2 * buffers[1] + (1 - beta2) * grad * grad
        if sklearn_style:
            step_size = lr * math.sqrt(1 - beta2**step) / (1 - beta1**step)
            return params + (-step_size * m) / (np.sqrt(v) + eps), np.stack([m, v])
        step_size = lr / (1 - beta1**step)
        denominator = np.sqrt(v) / math.sqrt(1 - beta2**step) + eps
        return params - step_size * (m / denominator), np.stack([m, v])
    if momentum != 0 and sklearn_style:
        velocity = momentum * buffers[0] - lr * grad
        update = momentum * velocity - lr * grad if nesterov else velocity
        return params + update, velocity[np.newaxis]
    if momentum != 0:
        velocity = momentum * buffers[0] + grad
        grad = grad + momentum * velocity if nesterov else velocity
        return params - lr * grad, velocity[np.newaxis]
    return params - lr * grad, buffers


class Net(BaseNet):
    __doc__ = (BaseNet.__doc__ or "").replace(  # (or ""): None under python -OO
        "(shared interface; use a subclass)", "in plain NumPy: the specification of ``nnfast.Net``"
    )

    def _layers_params(self):
        """Return ``[(W, b), ...]`` per layer; ``b`` is None where the layer has no bias."""
        weights = self._layout.weight_views(self._params)
        biases = iter(self._layout.bias_views(self._params))
        return [(w, next(biases) if has_bias else None) for w, has_bias in zip(weights, self._bias)]

    def _run(self, x):
        """Forward pass; return ``(output, pre-activations, inputs of each layer)``."""
        params = self._layers_params()
        inputs, pre_activations = [x], []
        for (w, b), name in zip(params[:-1], self._activations):
            h = inputs[-1].dot(w)
            if b is not None:
                h = h + b
            pre_activations.append(h)
            inputs.append(activation_forward(name, h, self._negative_slope))
        w, b = params[-1]
        y_pred = inputs[-1].dot(w)
        if b is not None:
            y_pred = y_pred + b
        return y_pred, pre_activations, inputs

    def _penalty(self, weights, n_samples, grad=None):
        """The L2 penalty 0.5 l2 sum(W**2) / n of a batch (``total_weight``'s n); unless
        ``grad`` is None, add its gradient l2 W / n to the weight gradients there."""
        if self._l2 == 0:
            return 0.0
        normalizer = total_weight(weights, n_samples)
        layer_weights = self._layout.weight_views(self._params)
        if grad is not None:
            for w, grad_w in zip(layer_weights, self._layout.weight_views(grad)):
                grad_w += self._l2 * w / normalizer
        squares = sum(float(np.sum(np.square(w, dtype=np.float64))) for w in layer_weights)
        return 0.5 * self._l2 * squares / normalizer

    def _loss_and_gradients(self, x, y, weights, parts=False):
        """Backpropagation: return the loss and the flat gradient vector (with
        ``parts``, the loss as ``(data loss, penalty)``)."""
        y_pred, pre_activations, inputs = self._run(x)
        loss, grad_out = loss_and_output_gradient(self._loss_name, y_pred, y, weights)
        grad = np.zeros_like(self._params)
        grad_weights = self._layout.weight_views(grad)
        grad_biases = iter(reversed(self._layout.bias_views(grad)))
        params = self._layers_params()
        for layer in reversed(range(len(params))):
            grad_weights[layer][...] = inputs[layer].T.dot(grad_out)
            if self._bias[layer]:
                next(grad_biases)[...] = grad_out.sum(axis=0)
            if layer > 0:
                derivative = activation_derivative(
                    self._activations[layer - 1], pre_activations[layer - 1], inputs[layer],
                    self._negative_slope,
                )
                grad_out = grad_out.dot(params[layer][0].T) * derivative
        penalty = self._penalty(weights, x.shape[0], grad)
        return ((loss, penalty) if parts else loss + penalty), grad

    # Each hook holds the net's one lock (BaseNet._make_runtime): the
    # reference is thread-safe by running one call at a time.

    def _predict(self, x):
        with self._lock:
            return self._run(x)[0]

    def _forward(self, x):
        with self._lock:
            y_pred, _, inputs = self._run(x)
        return y_pred, inputs[1:]

    def _loss(self, x, y, weights):
        with self._lock:
            data_loss = loss_and_output_gradient(self._loss_name, self._run(x)[0], y, weights)[0]
            return data_loss + self._penalty(weights, x.shape[0])

    def _gradients(self, x, y, weights):
        with self._lock:
            return self._loss_and_gradients(x, y, weights)

    def _train_step(self, x, y, lr, weights):
        with self._lock:
            loss, grad = self._loss_and_gradients(x, y, weights)
            if not np.isfinite(loss):
                return loss, LOSS_NOT_FINITE
            updated = self._params - lr * grad
            if not np.isfinite(updated).all():
                return loss, UPDATE_NOT_FINITE
            self._params[...] = updated
            return loss, STEP_OK

    def _optimizer_step(self, x, y, weights, run, lr):
        """One optimizer step on a batch; return ``(loss, penalty, status)``."""
        (data_loss, penalty), grad = self._loss_and_gradients(x, y, weights, parts=True)
        loss = data_loss + penalty
        if not np.isfinite(loss):
            return loss, penalty, LOSS_NOT_FINITE
        optimizer = run.optimizer
        step = int(run.optimizer_steps[0]) + 1
        params, buffers = optimizer_update(
            optimizer, optimizer.hyperparameters(), step, optimizer.buffers, self._params, grad, lr
        )
        if not np.isfinite(params).all():
            return loss, penalty, UPDATE_NOT_FINITE
        self._params[...] = params
        optimizer.buffers[...] = buffers
        run.optimizer_steps[0] = step
        return loss, penalty, STEP_OK

    def _run_epochs(self, x, y, x_val, y_val, run, stop):
        n_samples = x.shape[0]
        while run.epoch < stop:
            epoch, lr = run.epoch, float(run.learning_rates[run.epoch])
            if run.shuffle:
                run.shuffle_state[0] = _random.shuffle(run.order, int(run.shuffle_state[0]))
            weighted_loss = weighted_penalty = 0.0
            order = run.order[epoch] if run.order.ndim == 2 else run.order
            for start in range(0, n_samples, run.batch_size):
                batch = order[start : start + run.batch_size]
                weights = None if run.sample_weight is None else run.sample_weight[batch]
                loss, penalty, run.status = self._optimizer_step(x[batch], y[batch], weights, run, lr)
                run.step_loss[run.steps] = loss
                run.steps += 1
                if run.status != STEP_OK:
                    return
                weighted_loss += loss * len(batch)
                weighted_penalty += penalty * len(batch)
                if run.cancel[0] and start + run.batch_size < n_samples:
                    run.cancelled = True  # another thread asked to stop: after this step
                    return
            run.epoch_loss[epoch] = weighted_loss / n_samples
            run.epoch_penalty[epoch] = weighted_penalty / n_samples
            if x_val is not None:
                y_pred = self._predict(x_val)
                run.val_loss[epoch] = loss_and_output_gradient(self._loss_name, y_pred, y_val)[0]
                if self._loss_name in CLASSIFICATION_LOSSES:
                    run.val_accuracy[epoch] = accuracy(self._loss_name, y_pred, y_val)
            run.epoch += 1
            if run.early_stopping:
                monitored = run.val_loss[epoch] if x_val is not None else run.epoch_loss[epoch]
                best, waited, _ = run.progress
                if monitored < best - run.min_delta:
                    run.progress[:] = monitored, 0, epoch
                    run.best_params[...] = self._params
                elif waited + 1 >= run.patience:
                    run.stopped = True
                    return
                else:
                    run.progress[1] = waited + 1
            if run.cancel[0] and run.epoch < stop:
                run.cancelled = True  # after the epoch's last step and its bookkeeping
                return


class Ensemble(BaseEnsemble):
    __doc__ = (BaseEnsemble.__doc__ or "").replace(  # (or ""): None under python -OO
        "(use ``nnfast.Ensemble``)", "of ``nnfast.reference.Net``, fitted one after the other: the "
        "specification of ``nnfast.Ensemble``")
    _net_class = Net
    _parallel = False
