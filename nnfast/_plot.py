"""``History.plot``: loss curves with matplotlib, an optional dependency (``pip install nnfast[plot]``)."""


def _pyplot():
    try:
        import matplotlib.pyplot as pyplot
    except ImportError as error:
        raise ImportError("History.plot needs matplotlib, which is not installed: "
                          "pip install nnfast[plot] (or pip install matplotlib)") from error
    return pyplot


def plot_history(history, ax=None, log=False):
    """Draw ``history`` on ``ax`` (a new figure's axes by default); return ``ax``.

    The loss of every step is drawn thin at its position in epochs (step
    ``k`` of an epoch of ``n`` ends at ``k / n``), the epoch losses and
    validation losses as markers at each epoch's end, and the validation
    accuracy, where there is one, against a second axis on the right.
    """
    if ax is None:
        _, ax = _pyplot().subplots(figsize=(6.4, 4.4), layout="constrained")
    import numpy as np

    steps = np.arange(1, len(history.loss) + 1) / max(history.steps_per_epoch, 1)
    epochs = np.arange(1, history.epochs + 1)
    ax.plot(steps, history.loss, color="C0", linewidth=0.8, alpha=0.5, label="training loss, per step")
    ax.plot(epochs, history.epoch_loss, "o-", color="C0", markersize=3, label="training loss, per epoch")
    if history.val_loss is not None and len(history.val_loss):
        ax.plot(epochs, history.val_loss, "s-", color="C1", markersize=3, label="validation loss")
    if history.best_epoch is not None:
        ax.axvline(history.best_epoch + 1, color="0.5", linestyle=":", label="best epoch")
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss" + (" (log scale)" if log else ""))
    ax.grid(True, alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if history.val_accuracy is not None and len(history.val_accuracy):
        accuracy_axis = ax.twinx()
        accuracy_axis.plot(epochs, history.val_accuracy, "^-", color="C2", markersize=3,
                           label="validation accuracy")
        accuracy_axis.set_ylabel("validation accuracy")
        accuracy_axis.set_ylim(0, 1.02)
        more_handles, more_labels = accuracy_axis.get_legend_handles_labels()
        handles, labels = handles + more_handles, labels + more_labels
    # Below the axes, on the topmost of them: inside, it would hide a curve, and the second axis
    # would draw over a legend of the first.
    top = accuracy_axis if history.val_accuracy is not None and len(history.val_accuracy) else ax
    top.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncols=3, fontsize="small",
               frameon=False)
    return ax
