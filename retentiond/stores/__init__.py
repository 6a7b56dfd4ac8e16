"""Data stores: what a store is (:mod:`~retentiond.stores.base`) and the SQL implementation."""

from __future__ import annotations

from typing import TYPE_CHECKING

from retentiond.stores.sql import SqlStore

if TYPE_CHECKING:
    from retentiond.settings import StoreSettings
    from retentiond.stores.base import Store

__all__ = ["SqlStore", "open_store"]


def open_store(name: str, settings: StoreSettings) -> Store:
    """The store ``name`` described by ``settings``; every supported URL is a SQL database.

    Raises StoreError when the URL names a database retentiond does not support.  Nothing
    connects until the store is first used.
    """
    return SqlStore(name, settings)
