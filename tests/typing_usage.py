"""nnfast's public API used as a user would: tests/test_typing.py runs mypy on it.

Every annotated assignment states a type a user may rely on, so mypy fails
on this file where an annotation is wrong; tests/test_typing.py's negative
cases show that the annotations are there at all (a wrong call is an error).
The test runs the file too, so that it is real usage, not only well-typed.
"""
from __future__ import annotations

import os
import pathlib
import tempfile

import numpy as np
from numpy.typing import NDArray
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import nnfast
import nnfast.reference
from nnfast.schedules import CosineAnnealing, ExponentialDecay, StepDecay
from nnfast.sklearn import MLPClassifier, MLPRegressor

rng = np.random.default_rng(0)
x = rng.normal(size=(32, 3))
y = x.sum(axis=1, keepdims=True)

net = nnfast.Net([3, 8, 1], activation="tanh", loss="mse", l2=1e-4, dtype=np.float32, seed=0)
sizes: tuple[int, ...] = net.layers
n_params: int = net.n_params

history: nnfast.History = net.fit(x, y, epochs=3, lr=0.01, batch_size=8, seed=1)
for optimizer in (nnfast.SGD(0.01, momentum=0.9, nesterov=True), nnfast.Adam(1e-3, betas=(0.9, 0.99)),
                  nnfast.AdamW(weight_decay=0.1)):
    history = net.fit(x, y, epochs=4, optimizer=optimizer, schedule=StepDecay(2, gamma=0.5),
                      validation_fraction=0.25, seed=2, verbose=False)
history = net.fit(x, y, epochs=4, schedule=ExponentialDecay(0.9), validation_data=(x, y),
                  early_stopping=True, patience=2, callback=lambda epoch, record: epoch >= 2)
history = net.partial_fit(x, y, sample_weight=np.ones(len(x)))
rates: NDArray[np.float64] = CosineAnnealing(t_max=10).learning_rates(0.1, 10)

losses: NDArray[np.float64] = history.loss
epoch_losses: NDArray[np.float64] = history.epoch_loss
record: dict = history.to_dict()
steps: int = history.steps_per_epoch

prediction: NDArray[np.floating] = net.predict(x)
loss: float = net.loss(x, y)
step_loss: float = net.train_step(x, y, 1e-3)
gradient: NDArray[np.floating] = net.loss_and_gradients(x, y)[1]
output, hidden = net.forward(x)
weights: list[NDArray[np.floating]] = net.weights
net.weights = [w * 0.5 for w in weights]
net.parameters = net.parameters

with tempfile.TemporaryDirectory() as directory:
    path: pathlib.Path = net.save(os.path.join(directory, "net.npz"))
    loaded = nnfast.load(path)
    if isinstance(loaded, nnfast.Net):
        same: NDArray[np.floating] = loaded.predict(x)
        assert np.array_equal(same, net.predict(x))

labels = (x[:, 0] > 0).astype(np.intp)
classifier = nnfast.reference.Net([3, 4, 2], loss="cross_entropy", seed=0)
classifier.fit(x, labels, epochs=2, lr=0.1)
probabilities: NDArray[np.floating] = classifier.predict_proba(x)
classes: NDArray[np.intp] = classifier.predict_classes(x)

ensemble = nnfast.Ensemble([3, 4, 1], n_members=3, seed=0, loss="mse")
histories: list[nnfast.History] = ensemble.fit(x, y, epochs=2, lr=[0.01, 0.02, 0.03], n_threads=1)
spread: NDArray[np.floating] = ensemble.predict_std(x)
folds = nnfast.cross_validate([3, 4, 1], x, y, folds=3, epochs=2, lr=0.01, net_options={"loss": "mse"})
mean_val_loss: float = folds.mean_val_loss

spiral_x, spiral_labels = nnfast.examples.spirals(20, seed=1)
problem = nnfast.examples.seed_problem()

try:
    nnfast.Net([3, 1], seed=0).fit(x * 1e200, y, epochs=1, lr=1.0)
except nnfast.DivergenceError as error:
    step: int = error.step

regressor = make_pipeline(StandardScaler(), MLPRegressor(hidden_layer_sizes=(5,), max_iter=20, random_state=0))
regressor.fit(x, y.ravel())
mlp = MLPClassifier((5,), solver="sgd", max_iter=5, random_state=0).fit(spiral_x, spiral_labels)
mlp = mlp.partial_fit(spiral_x, spiral_labels)
class_probabilities: NDArray[np.floating] = mlp.predict_proba(spiral_x)
mean: NDArray[np.floating] = MLPRegressor(hidden_layer_sizes=(4,), max_iter=5).fit(x, y.ravel()).predict(x)
