"""The settings of a SQL store: its URL, where its password comes from, timeouts, table names.

Secrets never live in the config file: the password comes from ``password_file`` or from a
systemd credential (``password_credential``, read from ``$CREDENTIALS_DIRECTORY``), is read
when connecting and never stored, printed or logged.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from retentiond.errors import ConfigError
from retentiond.stores.kinds import StoreSettings

_IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]{0,40}$"


class SqlStoreSettings(StoreSettings):
    """A relational database reached through SQLAlchemy: ``kind = "sql"`` (the default)."""

    kind: Literal["sql"] = "sql"

    url: str
    """A SQLAlchemy URL, without the password (``postgresql+psycopg://retentiond@db/app``)."""
    password_file: Path | None = None
    password_credential: str | None = None
    """Name of a systemd credential (``LoadCredential=``) holding the password."""
    plan_url: str | None = None
    """Optional URL of a role without write privileges, used for dry runs and plans."""
    lock_timeout_ms: Annotated[int, Field(gt=0)] = 2000
    statement_timeout_ms: Annotated[int, Field(gt=0)] = 60000
    marker_table: Annotated[str, Field(pattern=_IDENTIFIER)] = "retentiond_batches"
    """Table in the store where each applied batch leaves its marker (created on first run)."""
    done_table: Annotated[str, Field(pattern=_IDENTIFIER)] = "retentiond_pseudonymized"
    """Keys each pseudonymize rule has rewritten, so a re-run rewrites nothing twice."""
    done_bits_table: Annotated[str, Field(pattern=_IDENTIFIER)] = "retentiond_pseudonymized_bits"
    """The same for one-column integer keys, as bits (32 keys a row)."""
    quarantine_prefix: Annotated[str, Field(pattern=_IDENTIFIER)] = "retentiond_q_"
    """Quarantined rows of table T go to ``<prefix>T`` in the same database and schema."""

    @field_validator("url", "plan_url")
    @classmethod
    def _parses(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            make_url(value)
        except ArgumentError:
            raise ValueError(
                "not a SQLAlchemy URL; write e.g. 'sqlite:////var/lib/app.db' or "
                "'postgresql+psycopg://user@host/db'",
            ) from None
        return value

    def password(self) -> str | None:
        """The password from its file or credential, or None; read when connecting, never stored."""
        path = self.password_file
        if self.password_credential is not None:
            directory = os.environ.get("CREDENTIALS_DIRECTORY")
            if not directory:
                raise ConfigError(
                    f"password_credential {self.password_credential!r} is set but "
                    "$CREDENTIALS_DIRECTORY is not",
                    "run under systemd with LoadCredential=; outside it, set "
                    "CREDENTIALS_DIRECTORY to a directory holding the file "
                    f"{self.password_credential!r} (see deploy/README.md); or use password_file",
                )
            path = Path(directory) / self.password_credential
        if path is None:
            return None
        try:
            return path.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise ConfigError(
                f"cannot read the password file {path}: {exc.strerror}",
                "check the path and that the service user may read it",
            ) from None

    def engine_url(self, *, for_plan: bool = False) -> URL:
        """The URL to connect with, password filled in from its file or credential."""
        url = make_url(self.plan_url if for_plan and self.plan_url else self.url)
        secret = self.password()
        if secret is not None:
            url = url.set(password=secret)
        return url
