"""``nnfast info MODEL``: what a model (or any nnfast net file) holds, in a few lines."""
import numpy as np

from nnfast._bench.formatting import format_seconds
from nnfast.cli._model import load_model


def add_arguments(parser):
    """Add ``info``'s arguments to ``parser``."""
    parser.add_argument("model", metavar="MODEL", help="a model file written by `nnfast train`, or any nnfast net file")


def describe(model):
    """The lines ``nnfast info`` prints for ``model`` (a ``Model``)."""
    net, metadata = model.net, model.metadata
    sizes = "-".join(map(str, net.layers))
    activations = ", ".join(sorted(set(net.activation))) or "none (linear)"
    lines = [
        f"architecture: {sizes} (hidden activation {activations}; biases {'on' if all(net.bias) else 'partly off'})",
        f"parameters:   {net.n_params:,}",
        f"dtype:        {np.dtype(net.dtype).name}",
        f"loss:         {net.loss_name}",
        f"optimizer:    {_optimizer_text(net.optimizer)}",
    ]
    if not metadata:
        lines.append("(a plain nnfast net file: no feature names, scaling or training record)")
        return lines
    features = model.features
    shown = ", ".join(features[:8]) + (f", ... ({len(features)} in all)" if len(features) > 8 else "")
    lines += [f"task:         {metadata['task']}", f"features:     {shown}", f"target:       {metadata['target']}"]
    if model.is_classifier:
        lines.append(f"classes:      {', '.join(model.classes)}")
    scale = metadata["input_scale"]
    if np.all(scale == 1) and not np.any(metadata["input_mean"]):
        lines.append("scaling:      none")
    else:
        lines.append(f"scaling:      inputs standardized (scales {scale.min():.3g} to {scale.max():.3g})"
                     + (f"; target mean {metadata['target_mean']:.6g}, scale {metadata['target_scale']:.6g}"
                        if not model.is_classifier and metadata["target_scale"] != 1 else ""))
    epoch_loss = metadata.get("epoch_loss", np.empty(0))
    if len(epoch_loss):
        record = (f"{len(epoch_loss)} epochs on {metadata.get('data', '?')} in {format_seconds(metadata.get('train_seconds', 0))}; "
                  f"training loss {epoch_loss[0]:.4g} -> {epoch_loss[-1]:.4g}")
        val_loss = metadata.get("val_loss")
        if val_loss is not None and len(val_loss):
            record += f", validation loss {val_loss[0]:.4g} -> {val_loss[-1]:.4g} (best {val_loss.min():.4g} " \
                      f"at epoch {int(val_loss.argmin()) + 1})"
        if metadata.get("best_epoch", -1) >= 0:
            record += f"; early stopping kept epoch {metadata['best_epoch'] + 1}"
        lines.append(f"training:     {record}")
    return lines


def _optimizer_text(optimizer):
    if optimizer is None:
        return "none"
    if optimizer.n_moments == 0:
        state = "no moment buffers"
    else:
        state = "no state yet" if optimizer.buffers is None else f"{optimizer.n_moments} moment buffer(s)"
    return f"{type(optimizer).__name__}(lr={optimizer.lr:g}), {optimizer.step_count:,} steps taken, {state}"


def run(args):
    """Print the description of ``args.model``; return the exit status."""
    print("\n".join(describe(load_model(args.model, require_metadata=False))))
    return 0
