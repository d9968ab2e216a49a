"""``python -m nnfast``: the seed demo, or with a command, the ``nnfast`` command line.

``python -m nnfast`` and ``python -m nnfast --no-timing`` run the seed demo
(``nnfast demo``); ``python -m nnfast <command> ...`` is ``nnfast <command> ...``.
"""
import sys

from nnfast.cli import main

# Arguments that keep meaning the demo, as before there were commands.
_DEMO_ARGUMENTS: tuple[set[str], ...] = ({"--no-timing"}, set())

if __name__ == "__main__":
    arguments = sys.argv[1:]
    sys.exit(main(["demo", *arguments] if set(arguments) in _DEMO_ARGUMENTS else arguments))
