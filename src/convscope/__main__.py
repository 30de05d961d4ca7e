"""``python -m convscope``: the same as the ``convscope`` command."""

from .cli.launch import main

if __name__ == "__main__":
    main()
