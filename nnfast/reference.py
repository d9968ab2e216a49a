"""The specification of nnfast, in plain NumPy.

``nnfast.reference.Net`` has the interface of ``nnfast.Net`` and computes
the same things in the plainest NumPy there is: the seed notebook's
two-layer code generalized to any depth, biases, both losses and
mini-batches. Every compiled kernel is tested against it and every
benchmark is timed against it, so it favours being obviously right over
being fast.
"""
import numpy as np

from nnfast import _random
from nnfast._base import BaseNet
from nnfast._history import LOSS_NOT_FINITE, STEP_OK, UPDATE_NOT_FINITE

__all__ = ["Net"]


class Net(BaseNet):
    __doc__ = BaseNet.__doc__.replace(
        "(shared interface; use a subclass)", "in plain NumPy: the specification of ``nnfast.Net``"
    )

    def _layers_params(self):
        """Yield ``(W, b)`` per layer; ``b`` is None without biases."""
        weights = self._layout.weight_views(self._params)
        biases = self._layout.bias_views(self._params) or [None] * len(weights)
        return list(zip(weights, biases))

    def _run(self, x):
        """Forward pass; return ``(output, pre-activations, inputs of each layer)``."""
        params = self._layers_params()
        inputs, pre_activations = [x], []
        for w, b in params[:-1]:
            h = inputs[-1].dot(w)
            if b is not None:
                h = h + b
            pre_activations.append(h)
            inputs.append(np.maximum(h, 0))
        w, b = params[-1]
        y_pred = inputs[-1].dot(w)
        if b is not None:
            y_pred = y_pred + b
        return y_pred, pre_activations, inputs

    def _loss_and_output_gradient(self, y_pred, y):
        """Return the loss and its gradient with respect to ``y_pred``."""
        diff = y_pred - y
        loss = np.square(diff).sum()
        scale = 2.0
        if self._loss_name == "mse":
            loss = loss / diff.size
            scale = 2.0 / diff.size
        return float(loss), scale * diff

    def _loss_and_gradients(self, x, y):
        """Backpropagation: return the loss and the flat gradient vector."""
        y_pred, pre_activations, inputs = self._run(x)
        loss, grad_out = self._loss_and_output_gradient(y_pred, y)
        grad = np.zeros_like(self._params)
        grad_weights = self._layout.weight_views(grad)
        grad_biases = self._layout.bias_views(grad)
        params = self._layers_params()
        for layer in reversed(range(len(params))):
            grad_weights[layer][...] = inputs[layer].T.dot(grad_out)
            if grad_biases:
                grad_biases[layer][...] = grad_out.sum(axis=0)
            if layer > 0:
                grad_out = grad_out.dot(params[layer][0].T)
                grad_out[pre_activations[layer - 1] < 0] = 0
        return loss, grad

    def _predict(self, x):
        return self._run(x)[0]

    def _forward(self, x):
        y_pred, _, inputs = self._run(x)
        return y_pred, inputs[1:]

    def _loss(self, x, y):
        return self._loss_and_output_gradient(self._predict(x), y)[0]

    def _gradients(self, x, y):
        return self._loss_and_gradients(x, y)[1]

    def _train_step(self, x, y, lr):
        loss, grad = self._loss_and_gradients(x, y)
        if not np.isfinite(loss):
            return loss, LOSS_NOT_FINITE
        updated = self._params - lr * grad
        if not np.isfinite(updated).all():
            return loss, UPDATE_NOT_FINITE
        self._params[...] = updated
        return loss, STEP_OK

    def _fit(self, x, y, epochs, lr, batch_size, shuffle, state):
        order = np.arange(x.shape[0])
        losses = []
        for _ in range(epochs):
            if shuffle:
                state = _random.shuffle(order, state)
            for start in range(0, len(order), batch_size):
                batch = order[start : start + batch_size]
                loss, status = self._train_step(x[batch], y[batch], lr)
                losses.append(loss)
                if status != STEP_OK:
                    return np.array(losses), status
        return np.array(losses), STEP_OK
