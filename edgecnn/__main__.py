"""``python -m edgecnn``: the same as the ``edgecnn`` command."""

from edgecnn.cli import main

main()
