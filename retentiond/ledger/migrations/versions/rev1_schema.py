"""Revision 1: the schema as retentiond created it before revisions were recorded.

The audit ledger, append-only in the database too (triggers reject UPDATE and DELETE, and
TRUNCATE on PostgreSQL), the holds placed at run time, and ``retentiond_meta`` for the
installation's secrets.  An install made by that retentiond has exactly these and is stamped
as revision 1 by ``retentiond state upgrade``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "1"
down_revision = None
branch_labels = None
depends_on = None

_SQLITE_APPEND_ONLY = (
    "CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
)
_POSTGRES_APPEND_ONLY = (
    "CREATE OR REPLACE FUNCTION retentiond_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$",
    "DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log",
    "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
    "FOR EACH ROW EXECUTE FUNCTION retentiond_append_only()",
    "DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log",
    "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
    "FOR EACH STATEMENT EXECUTE FUNCTION retentiond_append_only()",
)


def upgrade() -> None:
    """Create the ledger with its triggers, the holds and retentiond_meta."""
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("at", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("run_id", sa.String(36)),
        sa.Column("rule", sa.String(80)),
        sa.Column("rule_version", sa.String(16)),
        sa.Column("store", sa.String(64)),
        sa.Column("table_name", sa.String(128)),
        sa.Column("action", sa.String(16)),
        sa.Column("batch_id", sa.String(36)),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("record_hash", sa.String(64), nullable=False),
        sa.Column("chain_hash", sa.String(64), nullable=False),
    )
    op.create_index("audit_log_batch", "audit_log", ["batch_id", "kind"])
    op.create_index("audit_log_run", "audit_log", ["run_id"])
    op.create_table(
        "holds",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("store", sa.String(64)),
        sa.Column("table_name", sa.String(128)),
        sa.Column("where_filter", sa.Text),
        sa.Column("subject_kind", sa.String(64)),
        sa.Column("subject_value", sa.String(256)),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("case_id", sa.String(128)),
        sa.Column("placed_by", sa.String(128), nullable=False),
        sa.Column("placed_at", sa.String(32), nullable=False),
        sa.Column("until", sa.String(32)),
        sa.Column("released_at", sa.String(32)),
        sa.Column("released_by", sa.String(128)),
        sa.Column("release_reason", sa.Text),
    )
    op.create_index("holds_in_force", "holds", ["released_at", "store", "table_name"])
    op.create_table(
        "retentiond_meta",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(256), nullable=False),
    )
    sqlite = op.get_bind().dialect.name == "sqlite"
    for statement in _SQLITE_APPEND_ONLY if sqlite else _POSTGRES_APPEND_ONLY:
        op.execute(statement)
