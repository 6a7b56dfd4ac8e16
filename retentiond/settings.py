"""Settings: a TOML file plus ``RETENTIOND_*`` environment variables, validated and frozen.

Precedence, highest first: environment (``RETENTIOND_STATE_URL``, nested with ``__`` as in
``RETENTIOND_STORES__APP__URL``), then the TOML file (``/etc/retentiond/retentiond.toml``
unless ``--config`` names another), then the defaults below.

Relative paths in the file (``policy_dir``, key and password files, the checkpoint file, the
witness directory, SQLite URLs) are read from the file's directory, not the working directory.

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
from typing import Annotated, Any, Self
from zoneinfo import ZoneInfo

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializeAsAny,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from sqlalchemy.engine import URL, make_url

from retentiond.errors import ConfigError
from retentiond.policy.cron import crontab
from retentiond.policy.periods import PeriodField
from retentiond.policy.strict import SUGGESTION, with_suggestions
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

    @model_validator(mode="wrap")
    @classmethod
    def _did_you_mean(cls, data: object, handler: ValidatorFunctionWrapHandler) -> Self:
        return with_suggestions(cls, data, handler)  # type: ignore[no-any-return]


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
                                  "run under systemd with LoadCredential=; outside it, set "
                                  "CREDENTIALS_DIRECTORY to a directory holding the file "
                                  f"{self.credential!r} (see deploy/README.md); or use 'file'")
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


class ErasureSettings(_Frozen):
    """How long an erasure request may take: ``[erasure] due_days``, per regime in between.

    ``[erasure.regimes] ccpa = 45`` lets ``erasure record --regime ccpa`` be due 45 days after
    it was received; a request under no regime is due after ``due_days`` (GDPR's month).
    """

    due_days: Annotated[int, Field(gt=0, le=3650)] = 30
    regimes: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,63}$")],
                  Annotated[int, Field(gt=0, le=3650)]] = Field(default_factory=dict)


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
    erasure: ErasureSettings = Field(default_factory=ErasureSettings)

    @model_validator(mode="wrap")
    @classmethod
    def _did_you_mean(cls, data: object, handler: ValidatorFunctionWrapHandler) -> Self:
        return with_suggestions(cls, data, handler)  # type: ignore[no-any-return]

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


def settings_file(config: Path | None = None) -> Path | None:
    """The TOML file settings are read from: ``config``, else the default file if it exists."""
    path = config if config is not None else DEFAULT_CONFIG
    return path if path.is_file() else None


def load_settings(config: Path | None = None) -> Settings:
    """Load settings from ``config`` (or the default file, if it exists) and the environment.

    An explicitly named file must exist; the default one may be absent (environment only).
    Relative paths in the file are taken from the file's directory.  Every mistake becomes a
    one-line :class:`ConfigError` naming the file (and the line, when it is in the file).
    """
    if config is not None and not config.is_file():
        raise ConfigError(
            f"config file {config} does not exist",
            "check the --config path (an example is deploy/retentiond.toml)",
        )
    toml_file = settings_file(config)
    data = {} if toml_file is None else anchored(_read_toml(toml_file), toml_file.absolute().parent)

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
            return (init_settings, env_settings, InitSettingsSource(settings_cls, data))

    try:
        loaded = _FromFile()
    except ValidationError as exc:
        error = exc.errors()[0]
        located = tuple(str(part) for part in error["loc"])
        hint = (error.get("ctx") or {}).get(SUGGESTION)
        raise ConfigError(
            f"{'.'.join(located)}: {_plain(error)}",
            ("" if hint is None else f"did you mean {hint!r}? ")
            + "fix the setting in the config file or the RETENTIOND_* environment",
            file=toml_file,
            line=setting_line(setting_lines(toml_file), *located) if toml_file else None,
        ) from None
    return Settings.model_validate(loaded.model_dump())


def _plain(error: Any) -> str:  # noqa: ANN401 - pydantic's ErrorDetails is a TypedDict
    message = str(error["msg"])
    if error["type"] == "extra_forbidden":
        return "unknown setting"
    return message.removeprefix("Value error, ")


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
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


_PATH_KEYS = frozenset({"file", "verify_key"})
"""Keys holding a path besides those named ``*_file`` and ``*_dir``."""
_URL_KEYS = frozenset({"url", "plan_url", "state_url"})


def anchored(data: dict[str, Any], base: Path) -> dict[str, Any]:
    """``data`` read from a TOML file in ``base``, each relative path in it taken from ``base``.

    Paths are the values of keys named ``file``, ``verify_key``, ``*_file`` and ``*_dir``, and
    the file of a SQLite URL (``url``, ``plan_url``, ``state_url``); the rest is as it was.
    """
    found: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            found[key] = anchored(value, base)
        elif isinstance(value, str) and (key in _PATH_KEYS or key.endswith(("_file", "_dir"))):
            found[key] = str(base / value) if value and not Path(value).is_absolute() else value
        elif isinstance(value, str) and key in _URL_KEYS:
            found[key] = _anchored_url(value, base)
        else:
            found[key] = value
    return found


def _anchored_url(url: str, base: Path) -> str:
    """A SQLite URL with a relative file (``sqlite:///state.db``) made absolute from ``base``."""
    scheme, separator, rest = url.partition(":///")
    if not separator or scheme.partition("+")[0] != "sqlite":
        return url
    uri = rest.startswith("file:")
    path, question, query = rest.removeprefix("file:").partition("?")
    if not path or path.startswith("/") or path == ":memory:":
        return url
    return f"{scheme}:///{'file:' if uri else ''}{base / path}{question}{query}"


_HEADER = re.compile(r"^\s*\[(?!\[)(?P<key>[^\]]+)\]\s*(#.*)?$")
_KEY = re.compile(r"^\s*(?P<key>(?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*')"
                  r"(?:\s*\.\s*(?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*'))*)\s*=")
_PART = re.compile(r"[A-Za-z0-9_-]+|\"([^\"]*)\"|'([^']*)'")


def setting_lines(path: Path) -> dict[tuple[str, ...], int]:
    """Where each table and key of the TOML file ``path`` is (1-based lines), by its dotted path.

    ``{("stores", "app"): 12, ("stores", "app", "url"): 13, ...}``: a problem of a setting is
    pinned to its line.  Read line by line, as written; empty when the file cannot be read.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return {}
    lines: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    in_string = False
    for number, line in enumerate(text.splitlines(), start=1):
        quotes = line.count('"""') + line.count("'''")
        if in_string:
            in_string = quotes % 2 == 0
            continue
        in_string = quotes % 2 == 1
        header, key = _HEADER.match(line), _KEY.match(line)
        if header is not None:
            table = _parts(header["key"])
            lines.setdefault(table, number)
        elif key is not None:
            lines.setdefault((*table, *_parts(key["key"])), number)
    return lines


def _parts(dotted: str) -> tuple[str, ...]:
    return tuple(next((g for g in found.groups() if g is not None), found.group(0))
                 for found in _PART.finditer(dotted))


def setting_line(lines: dict[tuple[str, ...], int], *located: str) -> int | None:
    """The line of the setting at ``located`` or, if it is not written, of its nearest table."""
    for end in range(len(located), 0, -1):
        if located[:end] in lines:
            return lines[located[:end]]
    return None


def masked_url(url: str | URL) -> str:
    """The URL as it may be logged: password replaced by ``***``."""
    parsed = make_url(url) if isinstance(url, str) else url
    return parsed.render_as_string(hide_password=True)
