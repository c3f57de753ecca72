"""``python -m edgecnn``: the same as the ``edgecnn`` command."""

from edgecnn.entry import main

main()
