"""The progress of a fit, shown while it runs: what ``fit(..., verbose=...)`` prints.

``verbose=True`` (or 1) keeps one live line, rewritten in place after each
epoch: the epoch count, the epoch's loss, ``val_loss`` and ``val_accuracy``
where the fit records them, the time elapsed and an estimate of the time
left. The line is a tqdm bar when tqdm is installed (``tqdm.autonotebook``,
so Jupyter shows its widget where ipywidgets is installed), else plain text
redrawn after a carriage return. ``verbose=2`` prints one line per epoch
instead, and so does ``verbose=True`` on a stream that is neither a
terminal nor Jupyter's (a file, a pipe, a CI log), where every redrawn
version of a line would stay in the text. Where the fit stops early (early
stopping, or the callback), the last line says so in place of the ETA.

Everything goes to ``sys.stdout`` as it is when the fit starts, where
``print`` goes and where nnfast always printed its epochs; with no
``sys.stdout`` (``pythonw``) nothing is shown.

Showing progress costs the fit a return to Python, so the fit runs in
chunks of epochs: one epoch first, then as many as take about
``LOOK_INTERVAL`` seconds, so that the line stays live while a fit of many
tiny epochs still runs in a few compiled calls. The numbers do not depend
on the chunks (``nnfast._training``). Without ``verbose`` nothing here
runs, and the fit is one compiled call.
"""
import numbers
import os
import sys
import time
import warnings

import numpy as np

from nnfast._validation import describe, is_number

# How long a chunk of epochs should run between two looks at the run, in
# seconds: half of tqdm's default refresh interval, so that each redraw shows
# numbers at most that old.
LOOK_INTERVAL = 0.05
# The plain live line is redrawn at most this often (tqdm's default
# mininterval), except for its last state.
REDRAW_INTERVAL = 0.1
VERBOSE_MESSAGE = "verbose must be False/0 (silent), True/1 (a live line) or 2 (a line per epoch)"


def check_verbose(verbose):
    """Return ``verbose`` as 0, 1 or 2.

    Parameters
    ----------
    verbose : bool or int
        False/0, True/1 or 2.

    Returns
    -------
    int

    Raises
    ------
    TypeError
        If ``verbose`` is neither a bool nor an int.
    ValueError
        If it is an int other than 0, 1 and 2.
    """
    if isinstance(verbose, (bool, np.bool_)):
        return int(verbose)
    if not is_number(verbose, numbers.Integral):
        raise TypeError(f"{VERBOSE_MESSAGE}, got {describe(verbose)}")
    if verbose not in (0, 1, 2):
        raise ValueError(f"{VERBOSE_MESSAGE}, got {describe(verbose)}")
    return int(verbose)


def format_duration(seconds):
    """``seconds`` as ``4.21s``, ``12m05s`` or ``3h02m``."""
    if seconds < 60:
        return f"{seconds:.2f}s"
    if seconds < 3600:
        minutes, seconds = divmod(int(seconds), 60)
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(int(seconds) // 60, 60)
    return f"{hours}h{minutes:02d}m"


def epoch_fields(run, first, stop, classification):
    """The numbers of epochs ``first .. stop - 1`` of ``run``, one string each, as
    ``loss 0.25  val_loss 0.3  val_accuracy 0.9000``.

    Losses have six significant digits, as ``repr(History)`` shows them;
    the validation fields appear only where the fit records them.
    """
    # Python floats format three times faster than NumPy scalars, which counts in a
    # line per epoch of many tiny epochs.
    texts = [f"loss {loss:.6g}" for loss in run.epoch_loss[first:stop].tolist()]
    if run.has_validation:
        texts = [f"{text}  val_loss {loss:.6g}" for text, loss in zip(texts, run.val_loss[first:stop].tolist())]
        if classification:
            texts = [f"{text}  val_accuracy {accuracy:.4f}"
                     for text, accuracy in zip(texts, run.val_accuracy[first:stop].tolist())]
    return texts


def epochs_per_look(elapsed, done, remaining):
    """How many epochs to run before the next look: about ``LOOK_INTERVAL`` seconds' worth.

    Parameters
    ----------
    elapsed : float
        Seconds the ``done`` epochs took.
    done, remaining : int
        Epochs run so far and epochs left (>= 1).

    Returns
    -------
    int
        Between 1 and ``remaining``; 1 before the first epoch has been timed.
    """
    if done == 0 or elapsed <= 0:
        return 1
    return max(1, min(remaining, int(LOOK_INTERVAL * done / elapsed)))


def is_interactive(stream):
    """Whether a line rewritten in place on ``stream`` is seen as one line: a
    terminal, or the output of a Jupyter (ipykernel) cell."""
    if type(stream).__module__.startswith("ipykernel"):
        return True
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # no isatty, or a closed stream
        return False


def start(verbose, epochs, has_validation, classification):
    """The display of a fit's progress, started now; None when ``verbose`` is 0.

    Parameters
    ----------
    verbose : int
        0, 1 or 2, from ``check_verbose``.
    epochs : int
        The epochs the fit will run at most.
    has_validation, classification : bool
        Whether the fit records ``val_loss``, and ``val_accuracy``.

    Returns
    -------
    Progress or None
        None also where there is no ``sys.stdout`` to show it on.
    """
    if not verbose:
        return None
    stream = sys.stdout
    if stream is None:
        return None
    if verbose == 2 or not is_interactive(stream):
        return EpochLines(stream, epochs, classification)
    tqdm = import_tqdm()
    if tqdm is None:
        return LiveLine(stream, epochs, classification)
    return TqdmLine(tqdm, stream, epochs, classification)


def import_tqdm():
    """tqdm's class for this session, Jupyter's widget or the terminal's bar; None without tqdm.

    ``tqdm.autonotebook`` chooses as ``tqdm.auto`` does, without the asyncio
    support that ``tqdm.auto`` adds: importing asyncio is 50 ms of the first
    verbose fit, for nothing a fit uses.
    """
    try:
        with warnings.catch_warnings():
            # In Jupyter it warns that it chose the widget, the choice we want (tqdm.auto
            # silences this warning the same way).
            warnings.filterwarnings("ignore", message=".*notebook mode")
            from tqdm.autonotebook import tqdm
    except ImportError:
        return None
    return tqdm


class Progress:
    """The progress of one fit: told about the epochs as they finish, and closed at the end.

    This base class shows nothing. Subclasses implement ``_show``, and
    ``_close`` where the display needs ending.

    Parameters
    ----------
    stream : file-like
        Where the text goes.
    epochs : int
        The epochs the fit will run at most.
    classification : bool
        Whether the fit records ``val_accuracy`` (with validation data).
    """

    # Whether the display shows only the latest state, which can then be restated.
    rewrites = False

    def __init__(self, stream, epochs, classification):
        self.stream = stream
        self.epochs = epochs
        self.classification = classification
        self.shown = 0  # epochs reported to the display
        self.said_stopped = False  # whether they were shown as stopped early
        self.started = time.perf_counter()
        self.closed = False

    def epochs_to_run(self, run):
        """How many epochs ``run`` should run before ``update`` is next called."""
        return epochs_per_look(time.perf_counter() - self.started, run.epoch, run.epochs - run.epoch)

    def update(self, run):
        """Show the epochs of ``run`` that finished since the last call."""
        if run.epoch <= self.shown:
            return
        elapsed = time.perf_counter() - self.started
        # Early stopping is known as the chunk returns; a callback's stop, only at the close.
        stopped = run.stopped and run.epoch < self.epochs
        remaining = elapsed / run.epoch * (self.epochs - run.epoch)
        self._show(run, self.shown, run.epoch, elapsed, remaining, stopped)
        self.shown, self.said_stopped = run.epoch, stopped

    def close(self, run):
        """Show what is left to show of ``run`` and end the display (a newline, the bar closed).

        Safe to call more than once.
        """
        if self.closed:
            return
        self.closed = True
        try:
            self.update(run)
            if self.rewrites and self.shown and run.stopped and run.epoch < self.epochs and not self.said_stopped:
                # The line's ETA counted on epochs that will not run.
                self._show(run, self.shown - 1, self.shown, time.perf_counter() - self.started, 0.0, True)
        finally:
            self._close()

    def _show(self, run, first, stop, elapsed, remaining, stopped):
        """Show that epochs ``first .. stop - 1`` finished, ``elapsed`` seconds into the fit,
        with ``remaining`` seconds to go, or (``stopped``) the fit stopped early after them."""

    def _close(self):
        """End the display."""

    def _statuses(self, run, first, stop, elapsed, remaining, stopped):
        """The lines of epochs ``first .. stop - 1``, with the times given; the last one says
        ``stopped early`` instead of the ETA where ``stopped``."""
        eta = f"ETA {format_duration(remaining)}"
        times = f"  elapsed {format_duration(elapsed)}  {eta}"
        lines = [f"epoch {epoch}/{self.epochs}  {fields}{times}"
                 for epoch, fields in enumerate(epoch_fields(run, first, stop, self.classification), first + 1)]
        if stopped:
            lines[-1] = lines[-1][: -len(eta)] + "stopped early"
        return lines


class EpochLines(Progress):
    """One line per epoch (``verbose=2``, or ``verbose=True`` where a line cannot be
    rewritten). The epochs of one chunk are printed together, with the time at its end."""

    def _show(self, run, first, stop, elapsed, remaining, stopped):
        lines = self._statuses(run, first, stop, elapsed, remaining, stopped)
        self.stream.write("".join(line + "\n" for line in lines))
        self.stream.flush()


class LiveLine(Progress):
    """One line rewritten in place after a carriage return, where tqdm is not installed.

    Redrawn at most every ``REDRAW_INTERVAL`` seconds, and once more at the end.
    """

    rewrites = True

    def __init__(self, stream, epochs, classification):
        super().__init__(stream, epochs, classification)
        self.width = 0  # of the line drawn last, to blank what a shorter one leaves
        # A line longer than the terminal would wrap, and "\r" go back to its last row only.
        try:
            self.limit = os.get_terminal_size(stream.fileno()).columns - 1
        except (AttributeError, ValueError, OSError):  # not a terminal's file (Jupyter's stream)
            self.limit = None
        if self.limit is not None and self.limit < 20:  # a pseudo-terminal of no size
            self.limit = None
        self.drawn = -1.0  # when the line was drawn last
        self.pending = None  # the newest state not yet drawn

    def _show(self, run, first, stop, elapsed, remaining, stopped):
        self.pending = self._statuses(run, stop - 1, stop, elapsed, remaining, stopped)[0]
        if elapsed - self.drawn >= REDRAW_INTERVAL:
            self._draw(elapsed)

    def _draw(self, elapsed):
        line, self.pending = self.pending[: self.limit], None
        self.stream.write("\r" + line.ljust(self.width))
        self.stream.flush()
        self.width, self.drawn = len(line), elapsed

    def _close(self):
        if self.pending is not None:
            self._draw(self.drawn)
        if self.width:
            self.stream.write("\n")
            self.stream.flush()


class TqdmLine(Progress):
    """A tqdm bar of the epochs, with the same text as the other displays beside it.

    tqdm throttles the redraws (``mininterval``) and, in Jupyter with
    ipywidgets, draws a widget instead of text.
    """

    rewrites = True

    def __init__(self, tqdm, stream, epochs, classification):
        super().__init__(stream, epochs, classification)
        # The text is the bar's postfix, a list so that tqdm shows it as it is (a string
        # would get a ", " before it); tqdm's own times are left out for ours. The updates
        # come in chunks of epochs already spaced in time, so miniters=1: tqdm's adaptive
        # miniters, learnt from one chunk's size, would skip the next chunk's update.
        self.bar = tqdm(total=epochs, file=stream, leave=True, postfix=[""], miniters=1,
                        mininterval=REDRAW_INTERVAL,
                        bar_format="epoch {n_fmt}/{total_fmt} |{bar:10}| {postfix[0]}")

    def _show(self, run, first, stop, elapsed, remaining, stopped):
        when = "stopped early" if stopped else f"ETA {format_duration(remaining)}"
        self.bar.postfix[0] = (f"{epoch_fields(run, stop - 1, stop, self.classification)[0]}"
                               f"  elapsed {format_duration(elapsed)}  {when}")
        self.bar.update(stop - self.bar.n)  # 0 when the last state is restated; close draws it

    def _close(self):
        self.bar.close()
