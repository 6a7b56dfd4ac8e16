"""``python -m retentiond``."""

from retentiond.cli import main

main()
