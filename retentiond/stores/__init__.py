"""Data stores: what a store is (:mod:`~retentiond.stores.base`), its kinds, and SQL (``sql/``)."""

from __future__ import annotations

from retentiond.stores.base import Store
from retentiond.stores.kinds import StoreSettings, kind_of

__all__ = ["open_store"]


def open_store(name: str, settings: StoreSettings) -> Store:
    """The store ``name`` described by ``settings``, opened by the kind they name.

    Raises ConfigError when that kind is not installed, StoreError when the settings describe
    a store the kind cannot open.  Nothing need connect until the store is first used.
    """
    return kind_of(settings.kind).open(name, settings)
