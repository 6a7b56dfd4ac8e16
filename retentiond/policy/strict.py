"""The strict base of every model a policy file is read into: policy entries and action options.

It imports nothing of retentiond, so both :mod:`retentiond.policy` and
:mod:`retentiond.actions` build on it without importing each other for it.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """Frozen, no unknown keys: a typo in a policy is an error, never a silent default."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
