"""The ``nnfast`` command line: ``nnfast <command> ...`` and ``python -m nnfast <command> ...``.

``main(argv)`` parses the command line, runs one command and returns its
exit status; each command lives in its own module (``_demo``, ``_train``,
``_predict``, ``_info``, ``_export``, ``_bench``) with an
``add_arguments(parser)`` and a ``run(args)``.
"""
import argparse
import os
import sys

__all__ = ["main", "EXIT_OK", "EXIT_BAD_INPUT", "EXIT_USAGE", "EXIT_INTERRUPTED", "EXIT_BROKEN_PIPE"]

EXIT_OK = 0
EXIT_BAD_INPUT = 1
EXIT_USAGE = 2  # what argparse exits with
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: the reader of the output went away (`nnfast predict ... | head`)

EPILOG = """\
exit status:
  0    success
  1    a bad file or bad data (one line on stderr: "nnfast: error: <file>: <problem>"),
       or training diverged
  2    a bad command line (argparse's usage message)
  130  interrupted with Ctrl-C (nothing is written)
  141  the program reading the output closed it early (as `| head` does)

`python -m nnfast` alone (or with --no-timing) runs `nnfast demo`."""

# command -> (module, one-line help)
COMMANDS = {
    "demo": ("_demo", "train the 3-3-1 example net with nnfast and the NumPy reference, and time both"),
    "train": ("_train", "train a net on a CSV or .npz file and save it as a model file"),
    "predict": ("_predict", "write a model's predictions for the rows of a data file as CSV"),
    "info": ("_info", "describe a model file: architecture, parameters, loss, optimizer, training"),
    "export": ("_export", "write a model as ONNX or PyTorch, with its input scaling folded in"),
    "bench": ("_bench", "time nnfast against the NumPy reference and the installed peers"),
}


def _module(command):
    import importlib

    return importlib.import_module(f"nnfast.cli.{COMMANDS[command][0]}")


def build_parser():
    """The ``argparse`` parser of the whole command line, one sub-parser per command."""
    import nnfast

    parser = argparse.ArgumentParser(
        prog="nnfast", description="Train, inspect, run and export nnfast networks from the shell.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"nnfast {nnfast.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command, (_, summary) in COMMANDS.items():
        sub = commands.add_parser(command, help=summary, description=(_module(command).__doc__ or "").split("\n\n")[0],
                                  epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
        _module(command).add_arguments(sub)
        sub.set_defaults(parser=sub)  # for the checks argparse cannot express (export's)
    return parser


def main(argv=None):
    """Run the command line ``argv`` and return the exit status.

    Parameters
    ----------
    argv : list of str, optional
        The arguments after the program name; ``sys.argv[1:]`` by default.

    Returns
    -------
    int
        ``EXIT_OK``, ``EXIT_BAD_INPUT``, ``EXIT_USAGE``, ``EXIT_INTERRUPTED``
        or ``EXIT_BROKEN_PIPE`` (see ``EPILOG``). A usage error exits from
        argparse with status 2.
    """
    from nnfast._history import DivergenceError
    from nnfast.cli._data import DataError

    try:
        args = build_parser().parse_args(argv)
        return _module(args.command).run(args)
    except DataError as error:
        print(f"nnfast: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except DivergenceError as error:
        print(f"nnfast: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:
        # Quietly, as other tools do; stdout is pointed at devnull so that
        # the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except OSError as error:  # writing an output: a full disk, a missing directory, no permission
        where = f"{error.filename}: " if error.filename else ""
        print(f"nnfast: error: {where}{error.strerror or error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("\nnnfast: interrupted; nothing was written", file=sys.stderr)
        return EXIT_INTERRUPTED
