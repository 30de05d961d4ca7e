"""``python -m convscope``: the same as the ``convscope`` command."""

from .cli.launch import main

main()
