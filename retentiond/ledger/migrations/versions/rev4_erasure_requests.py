"""Revision 4: ``erasure_requests``, the requests of data subjects to have their data erased.

Each request keeps here, and only here, the identity it names (as a subject hold keeps its
value in ``holds``); the ledger gets a keyed digest of it.  Who recorded it, when it was
received, when it is due, and its state (issue 16).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "4"
down_revision = "3"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the table and its index on (state, due_at)."""
    op.create_table(
        "erasure_requests",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("subject_kind", sa.String(64), nullable=False),
        sa.Column("subject_value", sa.String(256), nullable=False),
        sa.Column("regime", sa.String(64)),
        sa.Column("recorded_by", sa.String(128), nullable=False),
        sa.Column("recorded_at", sa.String(32), nullable=False),
        sa.Column("received_at", sa.String(32), nullable=False),
        sa.Column("due_at", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("note", sa.Text),
    )
    op.create_index("erasure_requests_due", "erasure_requests", ["state", "due_at"])
