"""The strict base of every model a policy file is read into: policy entries and action options.

It imports nothing of retentiond, so both :mod:`retentiond.policy` and
:mod:`retentiond.actions` build on it without importing each other for it.  The settings
models use :func:`with_suggestions` too: an unknown key, in a policy or in the config, comes
with the nearest key the model knows (``ctx["did_you_mean"]`` of pydantic's error).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from typing import Any, get_args

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic_core import ErrorDetails, InitErrorDetails, PydanticCustomError
from pydantic_core.core_schema import ErrorType

SUGGESTION = "did_you_mean"
"""The key of an ``extra_forbidden`` error's context that names the nearest known key."""

_KNOWN_TYPES = frozenset(get_args(ErrorType))


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """The one of ``choices`` closest to ``word`` (difflib), or None when none is close."""
    found = difflib.get_close_matches(word, sorted(set(choices)), n=1, cutoff=0.6)
    return found[0] if found else None


def known_keys(model: type[BaseModel]) -> set[str]:
    """Every key ``model`` accepts: its fields' names and aliases."""
    keys = set(model.model_fields)
    keys.update(field.alias for field in model.model_fields.values() if field.alias)
    return keys


def with_suggestions(model: type[BaseModel], data: Any,  # noqa: ANN401 - whatever was read
                     handler: Callable[[Any], Any]) -> Any:  # noqa: ANN401
    """Validate ``data`` into ``model``; each unknown key of its own gets the nearest known one.

    Used as a wrap model validator: every other error passes through as it was.
    """
    try:
        return handler(data)
    except ValidationError as exc:
        errors = exc.errors()
        hints = [did_you_mean(str(error["loc"][0]), known_keys(model))
                 if error["type"] == "extra_forbidden" and len(error["loc"]) == 1 else None
                 for error in errors]
        if not any(hints):
            raise
        raise ValidationError.from_exception_data(exc.title, [
            _details(error, hint) for error, hint in zip(errors, hints, strict=True)],
        ) from None


def _details(error: ErrorDetails, hint: str | None) -> InitErrorDetails:
    context = dict(error.get("ctx") or {})
    if hint is not None:
        context[SUGGESTION] = hint
    if error["type"] not in _KNOWN_TYPES:  # a validator's own: its words as they were, formatted
        return InitErrorDetails(type=PydanticCustomError(error["type"], error["msg"]),
                                loc=error["loc"], input=error["input"])
    return InitErrorDetails(type=error["type"], loc=error["loc"], input=error["input"],
                            ctx=context)


class StrictModel(BaseModel):
    """Frozen, no unknown keys: a typo in a policy is an error, never a silent default."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="wrap")
    @classmethod
    def _did_you_mean(cls, data: Any, handler: Callable[[Any], Any]) -> Any:  # noqa: ANN401
        return with_suggestions(cls, data, handler)
