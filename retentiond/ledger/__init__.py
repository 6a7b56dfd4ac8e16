"""The ledger: the evidence of everything retentiond does, and the database that keeps it.

- :mod:`~retentiond.ledger.state`: the state database (the ledger table, holds placed at run
  time, installation secrets), its schema revisions (:mod:`~retentiond.ledger.migrations`).
- :mod:`~retentiond.ledger.chain`: append to, read and verify the hash-chained records.
- :mod:`~retentiond.ledger.checkpoints`: C2SP signed notes of the chain's head.
- :mod:`~retentiond.ledger.evidence`: record signatures, checkpoints, certificates, and the
  checks ``audit verify`` runs beyond the chain.
- :mod:`~retentiond.ledger.witness`: checkpoints published where the database's owner cannot
  rewrite them.
- :mod:`~retentiond.ledger.export` and :mod:`~retentiond.ledger.review`: the ledger as files
  and as totals for reviewers.
"""
