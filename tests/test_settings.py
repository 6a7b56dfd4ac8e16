"""Settings: defaults, the TOML file, ``RETENTIOND_*`` overrides, secrets, and one-line errors."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest
from pydantic import ValidationError

from retentiond import settings as settings_module
from retentiond.errors import ConfigError
from retentiond.settings import (
    Defaults,
    LogFormat,
    Settings,
    load_settings,
    masked_url,
)
from retentiond.stores.sql import SqlStoreSettings

CONFIG = """\
policy_dir = "/srv/retentiond/policies"
state_url = "postgresql+psycopg://retentiond@state/retentiond"
log_format = "json"
log_level = "WARNING"

[stores.app]
url = "postgresql+psycopg://retentiond@db/app"
plan_url = "postgresql+psycopg://planner@db/app"
lock_timeout_ms = 500

[defaults]
max_rows = 10
max_percent = 5
batch_size = 200
schedule = "30 4 * * *"
timezone = "Europe/Berlin"
"""


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    """No RETENTIOND_* variable or credentials directory of the caller leaks into a test."""
    for name in list(os.environ):
        if name.startswith("RETENTIOND_"):
            monkeypatch.delenv(name)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)


def config_file(tmp_path, text, name="retentiond.toml"):
    """Write ``text`` as a config file under ``tmp_path`` and return its path."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def config_error(path):
    """Return the ConfigError that loading ``path`` raises."""
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    return caught.value


def test_an_empty_file_gives_the_defaults(tmp_path):
    """Everything unset takes its documented default; the brakes are on."""
    loaded = load_settings(config_file(tmp_path, ""))

    assert (
        Path("/etc/retentiond/policies"),
        "sqlite:////var/lib/retentiond/state.db",
        LogFormat.AUTO,
        "info",
        {},
        Defaults(batch_size=1000, max_rows=100_000, max_percent=50.0, schedule="0 3 * * *",
                 timezone="UTC"),
    ) == (
        loaded.policy_dir,
        loaded.state_url,
        loaded.log_format,
        loaded.log_level,
        loaded.stores,
        loaded.defaults,
    )


def test_without_config_and_default_file_the_environment_and_defaults_apply(
    tmp_path, monkeypatch,
):
    """With no --config and no file at the default path, environment and defaults are used."""
    monkeypatch.setattr(settings_module, "DEFAULT_CONFIG", tmp_path / "absent.toml")
    monkeypatch.setenv("RETENTIOND_POLICY_DIR", "/from/env")

    loaded = load_settings()

    assert (Path("/from/env"), {}, Defaults()) == (
        loaded.policy_dir, loaded.stores, loaded.defaults,
    )


def test_file_values_are_read(tmp_path):
    """Every value of the TOML file arrives, typed; the log level is lowercased."""
    loaded = load_settings(config_file(tmp_path, CONFIG))

    assert (
        Path("/srv/retentiond/policies"),
        "postgresql+psycopg://retentiond@state/retentiond",
        LogFormat.JSON,
        "warning",
        {"app": SqlStoreSettings(url="postgresql+psycopg://retentiond@db/app",
                              plan_url="postgresql+psycopg://planner@db/app",
                              lock_timeout_ms=500)},
        Defaults(batch_size=200, max_rows=10, max_percent=5.0, schedule="30 4 * * *",
                 timezone="Europe/Berlin"),
    ) == (
        loaded.policy_dir,
        loaded.state_url,
        loaded.log_format,
        loaded.log_level,
        loaded.stores,
        loaded.defaults,
    )


def test_environment_beats_the_file(tmp_path, monkeypatch):
    """RETENTIOND_* variables override file values, nested ones key by key (``__``)."""
    monkeypatch.setenv("RETENTIOND_POLICY_DIR", "/from/env/policies")
    monkeypatch.setenv("RETENTIOND_STORES__APP__URL", "mysql+pymysql://retentiond@other/app")
    monkeypatch.setenv("RETENTIOND_DEFAULTS__MAX_ROWS", "7")

    loaded = load_settings(config_file(tmp_path, CONFIG))

    assert (
        Path("/from/env/policies"),
        "mysql+pymysql://retentiond@other/app",
        500,
        "postgresql+psycopg://planner@db/app",
        7,
        5.0,
    ) == (
        loaded.policy_dir,
        loaded.stores["app"].url,
        loaded.stores["app"].lock_timeout_ms,
        loaded.stores["app"].plan_url,
        loaded.defaults.max_rows,
        loaded.defaults.max_percent,
    )


def test_a_missing_explicit_config_file_is_a_config_error(tmp_path):
    """A --config path that does not exist is an error, never a silent fall back to defaults."""
    missing = tmp_path / "nope.toml"

    error = config_error(missing)

    assert (f"config file {missing} does not exist", None) == (error.what, error.file)


def test_bad_toml_is_a_config_error_with_its_line(tmp_path):
    """A TOML syntax error names the file and the line it is on."""
    path = config_file(tmp_path, 'policy_dir = "/srv/policies"\n\n[stores.app\nurl = "x"\n')

    error = config_error(path)

    assert (path, 3, True) == (error.file, error.line, error.what.startswith("not valid TOML"))
    assert str(error).startswith(f"{path}:3: not valid TOML")


@pytest.mark.parametrize(
    ("text", "where"),
    [
        pytest.param('colour = "blue"\n', "colour", id="top-level"),
        pytest.param('[stores.app]\nurl = "sqlite://"\ncolour = "blue"\n', "stores.app.colour",
                     id="in-a-store"),
        pytest.param("[defaults]\nmax_row = 5\n", "defaults.max_row", id="in-defaults"),
    ],
)
def test_an_unknown_key_is_a_config_error_naming_it(tmp_path, text, where):
    """A misspelt setting is refused, named with its full dotted path, never ignored."""
    path = config_file(tmp_path, text)

    error = config_error(path)

    assert (path, f"{where}: unknown setting") == (error.file, error.what)


def test_a_bad_store_url_is_a_config_error(tmp_path):
    """A store URL SQLAlchemy cannot parse is refused when the settings load."""
    path = config_file(tmp_path, '[stores.app]\nurl = "not a url"\n')

    error = config_error(path)

    assert (path, True) == (error.file, error.what.startswith(
        "stores.app.url: not a SQLAlchemy URL"))


@pytest.mark.parametrize(
    ("text", "where"),
    [
        pytest.param('log_level = "loud"\n', "log_level", id="log-level"),
        pytest.param("[defaults]\nmax_rows = 0\n", "defaults.max_rows", id="brake-off"),
        pytest.param('[stores."a b"]\nurl = "sqlite://"\n', "stores", id="store-name"),
    ],
)
def test_an_invalid_value_is_a_config_error_naming_the_setting(tmp_path, text, where):
    """A value out of range or of the wrong form is refused, naming the setting."""
    error = config_error(config_file(tmp_path, text))

    assert error.what.startswith(f"{where}: ")


def test_password_file_is_read_when_connecting_and_never_shown(tmp_path):
    """The password is read from its file for each connection URL; masked_url hides it."""
    password_file = tmp_path / "password"
    store = SqlStoreSettings(url="postgresql+psycopg://app@db/app", password_file=password_file)
    first, second = f"Sekr3t{secrets.token_hex(6)}", f"Rotated{secrets.token_hex(6)}"

    password_file.write_text(first + "\n", encoding="utf-8")
    url_first = store.engine_url()
    password_file.write_text(second + "\n", encoding="utf-8")
    url_second = store.engine_url()

    assert (first, second) == (url_first.password, url_second.password)
    assert "postgresql+psycopg://app:***@db/app" == masked_url(url_second)
    assert [False, False] == [second in text for text in (masked_url(url_second), repr(store))]


def test_a_missing_password_file_is_a_config_error(tmp_path):
    """A password file that cannot be read is a ConfigError naming the path."""
    missing = tmp_path / "nope"
    store = SqlStoreSettings(url="postgresql+psycopg://app@db/app", password_file=missing)

    with pytest.raises(ConfigError) as caught:
        store.engine_url()

    assert caught.value.what.startswith(f"cannot read the password file {missing}")


def test_password_credential_is_read_from_the_credentials_directory(tmp_path, monkeypatch):
    """A systemd credential is read from $CREDENTIALS_DIRECTORY/<name>."""
    secret = f"Sekr3t{secrets.token_hex(6)}"
    (tmp_path / "app-db").write_text(secret + "\n", encoding="utf-8")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    store = SqlStoreSettings(url="mysql+pymysql://app@db/app", password_credential="app-db")  # noqa: S106

    url = store.engine_url()

    assert (secret, "mysql+pymysql://app:***@db/app") == (url.password, masked_url(url))


def test_password_credential_without_credentials_directory_is_a_config_error():
    """A credential named without $CREDENTIALS_DIRECTORY set is a ConfigError with a fix."""
    store = SqlStoreSettings(url="mysql+pymysql://app@db/app", password_credential="app-db")  # noqa: S106

    with pytest.raises(ConfigError) as caught:
        store.engine_url()

    assert (
        "password_credential 'app-db' is set but $CREDENTIALS_DIRECTORY is not",
        "run under systemd with LoadCredential=; outside it, set CREDENTIALS_DIRECTORY to a "
        "directory holding the file 'app-db' (see deploy/README.md); or use password_file",
    ) == (caught.value.what, caught.value.fix)


def test_plan_url_gets_the_password_too(tmp_path):
    """The plan URL, when set, is the one a plan connects with, with the password filled in."""
    (tmp_path / "password").write_text("pw1\n", encoding="utf-8")
    store = SqlStoreSettings(url="postgresql+psycopg://app@db/app",
                          plan_url="postgresql+psycopg://planner@db/app",
                          password_file=tmp_path / "password")

    url = store.engine_url(for_plan=True)

    assert ("planner", "pw1") == (url.username, url.password)


def test_settings_are_frozen(tmp_path):
    """Loaded settings, their stores and defaults cannot be changed by assignment."""
    loaded = load_settings(config_file(tmp_path, CONFIG))
    attempts = [
        (loaded, "policy_dir", Path("/elsewhere")),
        (loaded.stores["app"], "url", "sqlite://"),
        (loaded.defaults, "max_rows", 10**9),
    ]

    refused = []
    for target, name, value in attempts:
        with pytest.raises(ValidationError):
            setattr(target, name, value)
        refused.append(getattr(target, name) != value)

    assert [True, True, True] == refused
    assert isinstance(loaded, Settings)


@pytest.mark.parametrize(("text", "line", "what", "fix"), [
    pytest.param("policydir = 'x'\n", 1, "policydir: unknown setting", "did you mean "
                 "'policy_dir'? ", id="top-level"),
    pytest.param('[stores.app]\nurl = "sqlite://"\npasword_file = "p"\n', 3,
                 "stores.app.pasword_file: unknown setting", "did you mean 'password_file'? ",
                 id="in-a-store"),
    pytest.param("[defaults]\nmax_row = 5\n", 2, "defaults.max_row: unknown setting",
                 "did you mean 'max_rows'? ", id="in-defaults"),
    pytest.param("[audit]\nsigning_key = { fiel = 'k' }\n", 2,
                 "audit.signing_key.fiel: unknown setting", "did you mean 'file'? ",
                 id="inline-table"),
    pytest.param('colour = "blue"\n', 1, "colour: unknown setting", "", id="nothing-close"),
])
def test_an_unknown_setting_suggests_the_nearest_one_at_its_line(tmp_path, text, line, what,
                                                                 fix):
    """A misspelt setting: its line in the file, and the nearest setting of that table."""
    path = config_file(tmp_path, text)

    error = config_error(path)

    assert (path, line, what, fix + "fix the setting in the config file or the RETENTIOND_* "
            "environment") == (error.file, error.line, error.what, error.fix)


def test_relative_paths_are_taken_from_the_config_files_directory(tmp_path, monkeypatch):
    """Paths and SQLite files written relative are read from the file's directory.

    Not from the working directory; absolute ones, URLs of servers and the environment's
    values are left as they are.
    """
    monkeypatch.chdir("/")
    monkeypatch.setenv("RETENTIOND_POLICY_DIR", "from-env")
    path = config_file(tmp_path, """\
policy_dir = "policies"
state_url = "sqlite:///var/state.db"

[stores.app]
url = "sqlite:///data/app.db?mode=rw"
password_file = "secrets/app"
plan_url = "sqlite:////abs/app.db"

[stores.crm]
url = "postgresql+psycopg://crm@db/crm"

[pseudonymize]
key_id = "k1"

[pseudonymize.keys.k1]
file = "keys/k1"

[audit]
signing_key = { file = "keys/signing" }
verify_key = "keys/verify.pub"
checkpoint_file = "../checkpoint"
witness_dir = "/srv/witness"
""")

    loaded = load_settings(path)

    assert {
        "policy_dir": Path("from-env"),
        "state_url": f"sqlite:///{tmp_path}/var/state.db",
        "app": (f"sqlite:///{tmp_path}/data/app.db?mode=rw", tmp_path / "secrets/app",
                "sqlite:////abs/app.db"),
        "crm": "postgresql+psycopg://crm@db/crm",
        "keys": (tmp_path / "keys/k1", tmp_path / "keys/signing", tmp_path / "keys/verify.pub"),
        "places": (tmp_path / "../checkpoint", Path("/srv/witness")),
    } == {
        "policy_dir": loaded.policy_dir,
        "state_url": loaded.state_url,
        "app": (loaded.stores["app"].url, loaded.stores["app"].password_file,
                loaded.stores["app"].plan_url),
        "crm": loaded.stores["crm"].url,
        "keys": (loaded.pseudonymize.keys["k1"].file, loaded.audit.signing_key.file,
                 loaded.audit.verify_key),
        "places": (loaded.audit.checkpoint_file, loaded.audit.witness_dir),
    }
