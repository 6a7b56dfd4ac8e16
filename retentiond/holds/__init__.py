"""Holds: what keeps records whatever the rules say.

- :mod:`~retentiond.holds.guards`: the holds and minimum retentions of the policy files, and
  the sources of holds a run consults before every batch (:class:`~.guards.HoldSource`).
- :mod:`~retentiond.holds.notation`: how counsel writes a hold placed at run time
  (``--where``, ``--subject``, ``--until``), and a filter written back in that notation.
- :mod:`~retentiond.holds.placing`: placing and releasing them: checked against the live
  stores, kept in the state database, audited in the same transaction.
- :mod:`~retentiond.holds.table`: the holds table, and its one reader.
- :mod:`~retentiond.holds.scope`: what such a hold covers (the tables its data subject
  reaches, the rows it holds there), read as a hold source before every batch.
"""
