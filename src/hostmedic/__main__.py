"""Allow ``python -m hostmedic``."""

from hostmedic.cli import main

main()
