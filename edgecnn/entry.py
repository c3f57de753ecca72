"""The ``edgecnn`` script's first code: Ctrl-C is recorded before the CLI (click, edgecnn.cli) is imported.

An interrupt while those modules load used to print a traceback from ``import click``; here it is
one line and exit 130 like an interrupt anywhere else (``edgecnn.interrupts``). Stdlib only.
"""

from __future__ import annotations

import sys

from edgecnn import interrupts


def main(argv=None) -> None:
    interrupts.install()
    try:
        from edgecnn.cli import main as cli_main
    except KeyboardInterrupt:
        print("Error: interrupted", file=sys.stderr)
        interrupts.leave(interrupts.EXIT_CODE)
    cli_main(argv)
