"""The configured stores by name, opened lazily and closed together."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from retentiond.errors import StoreError
from retentiond.stores.base import Store
from retentiond.stores.kinds import StoreSettings

Opener = Callable[[str, StoreSettings], Store]


class Stores:
    """Named stores from settings; each is opened on first use and closed by :meth:`close`."""

    def __init__(self, configured: Mapping[str, StoreSettings], opener: Opener) -> None:
        self._configured = dict(configured)
        self._opener = opener
        self._open: dict[str, Store] = {}

    def __contains__(self, name: object) -> bool:
        return name in self._configured

    @property
    def names(self) -> tuple[str, ...]:
        """Names of the configured stores."""
        return tuple(sorted(self._configured))

    def get(self, name: str) -> Store:
        """The store called ``name``; StoreError when no such store is configured."""
        if name not in self._open:
            settings = self._configured.get(name)
            if settings is None:
                known = ", ".join(self.names) or "none"
                raise StoreError(name, f"no store of that name is configured (configured: {known})",
                                 f"add [stores.{name}] to the config file")
            self._open[name] = self._opener(name, settings)
        return self._open[name]

    def close(self) -> None:
        """Close every store opened so far."""
        for store in self._open.values():
            store.close()
        self._open.clear()
