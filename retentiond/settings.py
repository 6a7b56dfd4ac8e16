"""Settings: a TOML file plus ``RETENTIOND_*`` environment variables, validated and frozen.

Precedence, highest first: environment (``RETENTIOND_STATE_URL``, nested with ``__`` as in
``RETENTIOND_STORES__APP__URL``), then the TOML file (``/etc/retentiond/retentiond.toml``
unless ``--config`` names another), then the defaults below.

Secrets never live in this file: a store's password comes from ``password_file`` or from a
systemd credential (``password_credential``, read from ``$CREDENTIALS_DIRECTORY``), and is
never printed or logged (:func:`masked_url`).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from datetime import datetime, time, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializeAsAny,
    ValidationError,
    field_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)
from sqlalchemy.engine import URL, make_url

from retentiond.errors import ConfigError
from retentiond.policy.cron import crontab
from retentiond.policy.periods import PeriodField
from retentiond.stores.kinds import StoreSettings, store_settings

DEFAULT_CONFIG = Path("/etc/retentiond/retentiond.toml")


def _cron_setting(value: str) -> str:
    try:
        crontab(value)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a cron expression ({exc}); write five fields, "
                         "e.g. '0 3 * * *'") from None
    return value


class LogFormat(StrEnum):
    """How log events are rendered."""

    AUTO = "auto"
    """JSON lines when stderr is not a terminal (journald), readable console output when it is."""
    JSON = "json"
    CONSOLE = "console"


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SecretSource(_Frozen):
    """Where a secret lives: a file, or a systemd credential (``LoadCredential=``)."""

    file: Path | None = None
    credential: str | None = None

    def read(self) -> bytes:
        """The secret's bytes (surrounding whitespace removed); ConfigError when unreadable."""
        if (self.file is None) == (self.credential is None):
            raise ConfigError("a key needs exactly one of 'file' or 'credential'",
                              "set one of them in [pseudonymize.keys.<id>]")
        path = self.file
        if self.credential is not None:
            directory = os.environ.get("CREDENTIALS_DIRECTORY")
            if not directory:
                raise ConfigError(f"credential {self.credential!r} is named but "
                                  "$CREDENTIALS_DIRECTORY is not set",
                                  "run under systemd with LoadCredential=, or use 'file'")
            path = Path(directory) / self.credential
        assert path is not None  # noqa: S101 - guaranteed by the check above
        try:
            return path.read_bytes().strip()
        except OSError as exc:
            raise ConfigError(f"cannot read the key file {path}: {exc.strerror}",
                              "check the path and that the service user may read it") from None


class PseudonymSettings(_Frozen):
    """Pseudonym keys by id; ``key_id`` names the one new pseudonyms are made with."""

    key_id: str | None = None
    keys: dict[str, SecretSource] = Field(default_factory=dict)


class Defaults(_Frozen):
    """Defaults for what a rule does not say itself; the brakes are on unless a rule lifts them."""

    batch_size: Annotated[int, Field(gt=0, le=100_000)] = 1000
    max_rows: Annotated[int, Field(gt=0)] = 100_000
    max_percent: Annotated[float, Field(gt=0, le=100)] = 50.0
    schedule: str = "0 3 * * *"
    """Cron expression (five fields) for rules that do not give their own schedule."""
    timezone: str = "UTC"

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        return _cron_setting(value)


class RunWindow(_Frozen):
    """Hours in which rules may run, e.g. 01:00 to 05:00 local time (may cross midnight)."""

    start: time
    end: time
    timezone: str = "UTC"

    def contains(self, moment: datetime) -> bool:
        """Whether ``moment`` falls inside the window (on the window's clock)."""
        local = moment.astimezone(ZoneInfo(self.timezone)).time()
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def next_start(self, moment: datetime) -> datetime:
        """The next time the window opens after ``moment``."""
        tz = ZoneInfo(self.timezone)
        local = moment.astimezone(tz)
        opening = datetime.combine(local.date(), self.start, tzinfo=tz)
        return opening if opening > local else opening + timedelta(days=1)


class DaemonSettings(_Frozen):
    """How the daemon schedules and coordinates."""

    misfire_grace_seconds: Annotated[int, Field(gt=0)] = 6 * 3600
    """A run missed by less than this (daemon down, busy) still happens, once."""
    lease_retry_seconds: Annotated[float, Field(gt=0)] = 30.0
    """How often a replica that found a rule taken by another replica looks again."""
    purge_schedule: str = "30 * * * *"
    """When due quarantine batches are purged (cron)."""

    @field_validator("purge_schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        return _cron_setting(value)
    workers: Annotated[int, Field(gt=0, le=64)] = 4
    run_window: RunWindow | None = None
    metrics_port: Annotated[int, Field(gt=0, lt=65536)] | None = None
    """Serve Prometheus metrics on 127.0.0.1:PORT (off when unset)."""


class AuditSettings(_Frozen):
    """Signed checkpoints of the ledger and what verification expects of them."""

    origin: Annotated[str, Field(pattern=r"^[^\s+]+$")] = "retentiond"
    """The log's name in every checkpoint (e.g. ``retentiond.example.com/audit``)."""
    signing_key: SecretSource | None = None
    """Ed25519 private key (PEM or base64 seed) from a file or credential; the daemon only."""
    verify_key: Path | None = None
    """The matching public key; enough to verify, useless for forging."""
    checkpoint_interval_seconds: Annotated[int, Field(gt=0)] = 3600
    """At most this long between checkpoints; verification reports larger gaps."""
    checkpoint_file: Path | None = None
    """A copy of the newest checkpoint kept outside the database: truncating the ledger
    below it is detected even by someone who can rewrite the database."""
    witness_dir: Path | None = None
    """A directory where the daemon can add files but not remove or change them (another
    machine's mount, ``chattr +a``): every checkpoint is published there as a file of its own,
    and verification checks the ledger against each; see :mod:`retentiond.ledger.witness`."""


class ResidualSettings(_Frozen):
    """How long copies outside the live tables keep what a run deleted or rewrote.

    Backups and archived WAL are the operator's, not retentiond's: these periods are what the
    operator's backup and archive retention keep them for, stated here so that every run
    certificate and the published schedule can date when the last copy is gone.  Unset, a
    certificate says the horizon is unknown rather than guess.
    """

    backups: PeriodField | None = None
    """How long a backup is kept (e.g. ``35 days``): a value deleted today is in backups taken
    before, until the newest of them expires."""
    wal: PeriodField | None = None
    """How long archived WAL / binary logs (point-in-time recovery) are kept, if longer than
    the backups they extend; a replica's WAL is replayed within seconds and not counted."""


class Settings(BaseSettings):
    """Everything the operator configures; frozen once loaded."""

    model_config = SettingsConfigDict(
        env_prefix="RETENTIOND_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    policy_dir: Path = Path("/etc/retentiond/policies")
    state_url: str = "sqlite:////var/lib/retentiond/state.db"
    """Where holds, runs and the audit ledger live (SQLite by default, PostgreSQL in production)."""
    log_format: LogFormat = LogFormat.AUTO
    log_level: str = "info"
    stores: dict[str, SerializeAsAny[StoreSettings]] = Field(default_factory=dict)
    """Each ``[stores.NAME]``, read by the settings model of its ``kind`` (``sql`` if none)."""
    defaults: Defaults = Field(default_factory=Defaults)
    pseudonymize: PseudonymSettings = Field(default_factory=PseudonymSettings)
    daemon: DaemonSettings = Field(default_factory=DaemonSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    residual: ResidualSettings = Field(default_factory=ResidualSettings)

    @field_validator("stores", mode="before")
    @classmethod
    def _store_kinds(cls, value: object) -> object:
        return store_settings(value) if isinstance(value, Mapping) else value

    @field_validator("stores")
    @classmethod
    def _store_names(cls, value: dict[str, StoreSettings]) -> dict[str, StoreSettings]:
        for name in value:
            if not name.replace("_", "").replace("-", "").isalnum():
                raise ValueError(f"store name {name!r} may only use letters, digits, - and _")
        return value

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        levels = {"debug", "info", "warning", "error"}
        if value.lower() not in levels:
            raise ValueError(f"log_level must be one of {sorted(levels)}")
        return value.lower()


def load_settings(config: Path | None = None) -> Settings:
    """Load settings from ``config`` (or the default file, if it exists) and the environment.

    An explicitly named file must exist; the default one may be absent (environment only).
    Every mistake becomes a one-line :class:`ConfigError` naming the file.
    """
    path = config if config is not None else DEFAULT_CONFIG
    if config is not None and not path.is_file():
        raise ConfigError(
            f"config file {path} does not exist",
            "check the --config path (an example is deploy/retentiond.toml)",
        )
    toml_file = path if path.is_file() else None
    if toml_file is not None:
        _check_toml_syntax(toml_file)

    class _FromFile(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,  # noqa: ARG003 - no .env files by design
            file_secret_settings: PydanticBaseSettingsSource,  # noqa: ARG003
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
            if toml_file is not None:
                sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
            return tuple(sources)

    try:
        loaded = _FromFile()
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise ConfigError(
            f"{where}: {_plain(error)}",
            "fix the setting in the config file or the RETENTIOND_* environment",
            file=toml_file,
        ) from None
    return Settings.model_validate(loaded.model_dump())


def _plain(error: Any) -> str:  # noqa: ANN401 - pydantic's ErrorDetails is a TypedDict
    message = str(error["msg"])
    if error["type"] == "extra_forbidden":
        return "unknown setting"
    return message.removeprefix("Value error, ")


def _check_toml_syntax(path: Path) -> None:
    try:
        with path.open("rb") as handle:
            tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        # Python 3.11 keeps the position only in the message: "... (at line 3, column 12)".
        found = re.search(r"\(at line (\d+), column \d+\)", str(exc))
        line = int(found.group(1)) if found else None
        message = str(exc)[: found.start()].strip() if found else str(exc)
        raise ConfigError(
            f"not valid TOML: {message}",
            "fix the syntax (see deploy/retentiond.toml for an example)",
            file=path,
            line=line,
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", "check the file's permissions",
                          file=path) from None


def masked_url(url: str | URL) -> str:
    """The URL as it may be logged: password replaced by ``***``."""
    parsed = make_url(url) if isinstance(url, str) else url
    return parsed.render_as_string(hide_password=True)
