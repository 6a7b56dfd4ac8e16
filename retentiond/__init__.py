"""retentiond: make a privacy policy's retention promises true, and provable.

The public surface is small: load settings and policies, build an :class:`Engine`, plan.
"""

from retentiond.errors import (
    ActionError,
    AuditError,
    ConfigError,
    LimitExceeded,
    PolicyError,
    Problem,
    RetentionError,
    SchemaChanged,
    StoreError,
    StoreUnavailable,
    WitnessError,
)
from retentiond.policy.loader import load_policies
from retentiond.policy.model import Hold, PolicySet, Retention, Rule
from retentiond.run.engine import Engine, RulePlan
from retentiond.settings import Settings, load_settings

__version__ = "0.1.0"

__all__ = [
    "ActionError",
    "AuditError",
    "ConfigError",
    "Engine",
    "Hold",
    "LimitExceeded",
    "PolicyError",
    "PolicySet",
    "Problem",
    "Retention",
    "RetentionError",
    "Rule",
    "RulePlan",
    "SchemaChanged",
    "Settings",
    "StoreError",
    "StoreUnavailable",
    "WitnessError",
    "__version__",
    "load_policies",
    "load_settings",
]
