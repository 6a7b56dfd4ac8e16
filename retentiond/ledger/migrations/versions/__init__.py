"""The revisions, one module each (Alembic reads this folder; it skips this file)."""
