"""Store kinds: how a ``[stores.NAME]`` table of the config becomes a store.

A kind is a settings model and a function that opens a store from those settings.  Kinds are
found through the entry-point group ``retentiond.stores`` (as APScheduler finds its job
stores): retentiond's own ``sql`` kind is registered there by its ``pyproject.toml``, and a
package of someone else's registers another kind the same way, without a change here::

    [project.entry-points."retentiond.stores"]
    memory = "my_package.memory:KIND"      # a StoreKind named "memory"

A ``[stores.NAME]`` table without ``kind`` is ``sql``, so existing configs keep working.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    ValidationError,
    ValidatorFunctionWrapHandler,
    model_validator,
)
from pydantic_core import InitErrorDetails

from retentiond.errors import ConfigError
from retentiond.policy.strict import with_suggestions

if TYPE_CHECKING:
    from retentiond.stores.base import Store

ENTRY_POINTS = "retentiond.stores"
DEFAULT_KIND = "sql"


class StoreSettings(BaseModel):
    """What every kind's settings have: the ``kind`` that says how to read the rest."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str = DEFAULT_KIND

    @model_validator(mode="wrap")
    @classmethod
    def _did_you_mean(cls, data: object, handler: ValidatorFunctionWrapHandler) -> Self:
        return with_suggestions(cls, data, handler)  # type: ignore[no-any-return]


SettingsT = TypeVar("SettingsT", bound=StoreSettings)


@dataclass(frozen=True)
class StoreKind(Generic[SettingsT]):
    """One kind of store: its name in configs, its settings model and how to open one."""

    name: str
    settings: type[SettingsT]
    open: Callable[[str, SettingsT], Store]
    """Open the store called ``name`` (nothing need connect before first use)."""


_known: dict[str, StoreKind[Any]] = {}


def kind_of(name: str) -> StoreKind[Any]:
    """The kind called ``name``, from the entry points; ConfigError when none is installed."""
    if name not in _known:
        for point in entry_points(group=ENTRY_POINTS, name=name):
            kind = point.load()
            if not isinstance(kind, StoreKind) or kind.name != name:
                raise ConfigError(
                    f"entry point {point.value!r} in group {ENTRY_POINTS!r} is not a store "
                    f"kind named {name!r}",
                    "point it at a StoreKind with that name, or uninstall the package")
            _known[name] = kind
            break
        else:
            known = ", ".join(sorted({point.name for point in entry_points(group=ENTRY_POINTS)}))
            raise ConfigError(f"store kind {name!r} is not installed (installed: "
                              f"{known or 'none'})",
                              "use one of those kinds, or install the package that provides it"
                              if known else "reinstall retentiond (pip install retentiond)")
    return _known[name]


def store_settings(configured: Mapping[str, object]) -> dict[str, StoreSettings]:
    """Each ``[stores.NAME]`` table read by the settings model of its kind.

    Raises pydantic's ValidationError with locations under the store's name, so a mistake
    reads ``stores.app.url: ...`` as it would for a single model.
    """
    read: dict[str, StoreSettings] = {}
    for name, raw in configured.items():
        if isinstance(raw, StoreSettings):
            read[name] = raw
            continue
        kind_name = raw.get("kind", DEFAULT_KIND) if isinstance(raw, Mapping) else DEFAULT_KIND
        try:
            kind = kind_of(str(kind_name))
        except ConfigError as exc:
            raise _located(name, ("kind",), kind_name, f"{exc.what}; {exc.fix}") from None
        try:
            read[name] = kind.settings.model_validate(raw)
        except ValidationError as exc:
            raise ValidationError.from_exception_data(exc.title, [
                InitErrorDetails(type=error["type"], loc=(name, *error["loc"]),
                                 input=error["input"], ctx=error.get("ctx", {}))
                for error in exc.errors()]) from None
    return read


def _located(name: str, loc: tuple[str, ...], value: object, what: str) -> ValidationError:
    return ValidationError.from_exception_data("StoreSettings", [InitErrorDetails(
        type="value_error", loc=(name, *loc), input=value, ctx={"error": ValueError(what)})])
