"""Revision 3: ``restore_exemptions``, the rows a quarantine restore exempts from its rule.

A restored batch would otherwise be quarantined again by the next run of the rule that moved
it.  Each applied restore keeps here the keys it put back, the rule, who restored them, why,
and until when they are exempt (issue 15).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "3"
down_revision = "2"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the table and its index on (store, table, rule)."""
    op.create_table(
        "restore_exemptions",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("batch_id", sa.String(36), nullable=False),
        sa.Column("store", sa.String(64), nullable=False),
        sa.Column("table_name", sa.String(128), nullable=False),
        sa.Column("rule", sa.String(80), nullable=False),
        sa.Column("keys", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("restored_by", sa.String(128), nullable=False),
        sa.Column("restored_at", sa.String(32), nullable=False),
        sa.Column("until", sa.String(32), nullable=False),
    )
    op.create_index("restore_exemptions_scope", "restore_exemptions",
                    ["store", "table_name", "rule"])
