"""``python -m nas.cli``: the same as the ``nas`` command."""

from nas.cli import main

main()
