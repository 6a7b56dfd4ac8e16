"""Running rules: from a validated policy set to batches in the stores and records in the ledger.

- :mod:`~retentiond.run.runtime`: settings, policies, stores and engine loaded and validated
  together.
- :mod:`~retentiond.run.engine`: what a rule selects, protects and reaches; the plan; brakes.
- :mod:`~retentiond.run.reach`: rows a removal reaches through foreign keys, and who blocks.
- :mod:`~retentiond.run.enforce`: a rule's run in short audited batches, and recovery after a
  crash.
- :mod:`~retentiond.run.leases`: one rule on one replica at a time.
"""
