"""Revision 2: each ledger record's Ed25519 signature, and the digest key made here.

``audit_log.signature`` (nullable: records written before it, and by an install without a
signing key, have none).  The installation secret ``audit-digest-key`` (keyed digests of
primary keys in the ledger) is made here when absent, so that the daemon's role needs no
INSERT on ``retentiond_meta``; an existing key is kept, or every digest already in the ledger
would stop matching.
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

revision = "2"
down_revision = "1"
branch_labels = None
depends_on = None

_META = sa.table("retentiond_meta", sa.column("name", sa.String), sa.column("value", sa.String))
DIGEST_KEY = "audit-digest-key"


def upgrade() -> None:
    """Add the signature column (unless there: a development build made it), make the key."""
    bind = op.get_bind()
    columns = {column["name"] for column in sa.inspect(bind).get_columns("audit_log")}
    if "signature" not in columns:
        op.add_column("audit_log", sa.Column("signature", sa.String(128)))
    found = bind.execute(sa.select(_META.c.value).where(_META.c.name == DIGEST_KEY)).first()
    if found is None:
        bind.execute(_META.insert().values(name=DIGEST_KEY, value=secrets.token_hex(32)))
