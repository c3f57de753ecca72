"""``python -m edgecnn``: the same as the ``edgecnn`` command."""

from .cli import main

main()
