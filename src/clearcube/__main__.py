"""``python -m clearcube``: the command line."""

from .cli import main

main()
