"""Holds: what keeps records whatever the rules say.

- :mod:`~retentiond.holds.guards`: the holds and minimum retentions of the policy files, and
  the sources of holds a run consults before every batch (:class:`~.guards.HoldSource`).
- :mod:`~retentiond.holds.placed`: legal holds placed at run time (``retentiond hold add``):
  checked, kept in the state database, audited, released, and read as a hold source.
"""
