"""The package's layout: which rooms may import which, read from every module's imports.

Data flows one way: settings and policy files -> policy set -> scheduler -> engine -> store +
action -> audit, and a module must not reach back up that line.  Each rule is checked against
every import statement of ``retentiond/``, those under ``TYPE_CHECKING`` and inside functions
included (a dependency is one wherever it is written); the cycle rule counts only the imports
that run when a module is imported.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "retentiond"

POLICY_LANGUAGE = ("retentiond.policy.strict", "retentiond.policy.filters",
                   "retentiond.policy.periods", "retentiond.policy.cron")
"""The policy language's words: what actions and stores may build on without a cycle."""
ACTION_REGISTRY = ("retentiond.actions", "retentiond.actions.base")
"""How other rooms reach actions: the registry and the base every action shares."""


@dataclass(frozen=True)
class Import:
    """One imported module, where it is imported, and whether importing the importer runs it."""

    importer: str
    imported: str
    line: int
    eager: bool
    """At module level and not under ``TYPE_CHECKING``: it runs when the importer is imported."""

    def __str__(self) -> str:
        return f"{self.importer}:{self.line} imports {self.imported}"


def _name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def _modules() -> frozenset[str]:
    return frozenset(_name(path) for path in PACKAGE.rglob("*.py"))


def _type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _targets(module: str, is_package: bool, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The modules an import statement names: ``from a import b`` names ``a.b`` if a module."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        package = module.split(".") if is_package else module.split(".")[:-1]
        base = ".".join([*package[:len(package) - node.level + 1], *([base] if base else [])])
    return [f"{base}.{alias.name}" if f"{base}.{alias.name}" in _modules() else base
            for alias in node.names]


def imports_of(module: str, source: str, *, is_package: bool = False) -> list[Import]:
    """Every import of ``retentiond`` modules in ``source``, the code of ``module``."""
    found: dict[Import, None] = {}  # one per module named, however many names it gives

    def walk(node: ast.AST, *, eager: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import | ast.ImportFrom):
                found.update((Import(module, target, child.lineno, eager), None)
                             for target in _targets(module, is_package, child)
                             if target == "retentiond" or target.startswith("retentiond."))
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                walk(child, eager=False)
            elif isinstance(child, ast.If) and _type_checking(child.test):
                walk(child, eager=False)
                for orelse in child.orelse:
                    walk(orelse, eager=eager)
            else:
                walk(child, eager=eager)

    walk(ast.parse(source), eager=True)
    return list(found)


@cache
def package_imports() -> tuple[Import, ...]:
    """Every import of every module of the package."""
    return tuple(found for path in sorted(PACKAGE.rglob("*.py"))
                 for found in imports_of(_name(path), path.read_text(encoding="utf-8"),
                                         is_package=path.name == "__init__.py"))


Where = Callable[[str], bool]
"""Which modules: a predicate on a module's dotted name."""


def within(*rooms: str) -> Where:
    """The modules of these rooms (a package and all below it, or one module)."""
    return lambda module: any(module == room or module.startswith(f"{room}.") for room in rooms)


def beyond(*rooms: str) -> Where:
    """The modules of the package outside these rooms."""
    inside = within(*rooms)
    return lambda module: not inside(module)


def reaching(imports: Iterable[Import], *, importers: Where, imported: Where,
             allowed: Iterable[str] = ()) -> list[str]:
    """The imports by ``importers`` of ``imported`` modules (but those ``allowed``)."""
    exempt = frozenset(allowed)
    return [str(found) for found in imports
            if importers(found.importer) and imported(found.imported)
            and found.imported not in exempt]


def cycles(imports: Iterable[Import]) -> list[list[str]]:
    """Modules that import each other, directly or round a loop, when they are imported.

    Imports of a module's own packages are left out: Python runs a package before its
    modules, so ``from retentiond.stores.sql import read`` inside ``stores/sql`` is no loop.
    """
    graph: dict[str, set[str]] = {}
    for found in imports:
        if found.eager and not found.importer.startswith(f"{found.imported}."):
            graph.setdefault(found.importer, set()).add(found.imported)

    def reach(start: str) -> set[str]:
        seen: set[str] = set()
        todo = [start]
        while todo:
            for target in graph.get(todo.pop(), ()):
                if target not in seen:
                    seen.add(target)
                    todo.append(target)
        return seen

    reached = {module: reach(module) for module in graph}
    loops = {frozenset(other for other in reached[module] if module in reached.get(other, ()))
             for module in graph if module in reached[module]}
    return sorted(sorted(loop) for loop in loops)


def _imports(found: Iterable[Import] | None) -> Iterator[Import]:
    yield from package_imports() if found is None else found


# -- the rules: each holds of the package, and the checker catches a break of it ----------------

def cli_rule(found: Iterable[Import] | None = None) -> list[str]:
    """Only the CLI imports the CLI: it is the top, the only place that prints and exits."""
    return reaching(_imports(found), importers=beyond("retentiond.cli", "retentiond.__main__"),
                    imported=within("retentiond.cli"))


def daemon_rule(found: Iterable[Import] | None = None) -> list[str]:
    """Only the CLI (``retentiond serve``) and the daemon itself import the daemon."""
    return reaching(_imports(found),
                    importers=beyond("retentiond.cli", "retentiond.__main__", "retentiond.daemon"),
                    imported=within("retentiond.daemon"))


def sql_rule(found: Iterable[Import] | None = None) -> list[str]:
    """Nothing outside ``stores/sql/`` imports it: the SQL kind joins through an entry point."""
    return reaching(_imports(found), importers=beyond("retentiond.stores.sql"),
                    imported=within("retentiond.stores.sql"))


def policy_rule(found: Iterable[Import] | None = None) -> list[str]:
    """Policy imports only itself, errors and the action registry (a rule carries its action).

    So: not run, stores, holds, ledger, publish, validation, quarantine, settings, cli or
    daemon, and no single action's module.
    """
    return reaching(_imports(found), importers=within("retentiond.policy"),
                    imported=beyond("retentiond.policy", "retentiond.errors"),
                    allowed=ACTION_REGISTRY)


def language_rule(found: Iterable[Import] | None = None) -> list[str]:
    """The policy language (strict, filters, periods, cron) imports nothing but errors and itself.

    Actions and stores build on these words; were the words to import the policy model, which
    imports the actions, there would be a cycle.
    """
    return reaching(_imports(found), importers=within(*POLICY_LANGUAGE),
                    imported=beyond(*POLICY_LANGUAGE, "retentiond.errors"))


def actions_rule(found: Iterable[Import] | None = None) -> list[str]:
    """Actions take from policy only its language, never the model, loader, checks or oracle."""
    return reaching(_imports(found), importers=within("retentiond.actions"),
                    imported=within("retentiond.policy"), allowed=POLICY_LANGUAGE)


def one_action_rule(found: Iterable[Import] | None = None) -> list[str]:
    """Outside ``actions/``, actions are reached through the registry, never one action's module.

    What one action knows that others need (which keys refuse a deletion, whether a value
    fits a column) belongs with the thing it is about, in ``stores``.
    """
    return reaching(_imports(found), importers=beyond("retentiond.actions"),
                    imported=within("retentiond.actions"), allowed=ACTION_REGISTRY)


def holds_rule(found: Iterable[Import] | None = None) -> list[str]:
    """Holds import neither run, publish, validation, cli nor daemon: a run reads the holds."""
    return reaching(_imports(found), importers=within("retentiond.holds"),
                    imported=within("retentiond.run", "retentiond.publish",
                                    "retentiond.validation", "retentiond.cli",
                                    "retentiond.daemon"))


def stores_rule(found: Iterable[Import] | None = None) -> list[str]:
    """Stores import none of what uses them: run, actions, holds, ledger, publish, and above."""
    return reaching(_imports(found), importers=within("retentiond.stores"),
                    imported=within("retentiond.run", "retentiond.actions", "retentiond.holds",
                                    "retentiond.ledger", "retentiond.publish",
                                    "retentiond.validation", "retentiond.quarantine",
                                    "retentiond.cli", "retentiond.daemon"))


RULES = (cli_rule, daemon_rule, sql_rule, policy_rule, language_rule, actions_rule,
         one_action_rule, holds_rule, stores_rule)

BREAKS = {
    cli_rule: ("retentiond.run.engine", "from retentiond.cli.app import App"),
    daemon_rule: ("retentiond.run.entrance", "from retentiond.daemon import service"),
    sql_rule: ("retentiond.stores", "from retentiond.stores.sql import SqlStore"),
    policy_rule: ("retentiond.policy.model", "from retentiond.ledger.chain import Kind"),
    language_rule: ("retentiond.policy.filters", "from retentiond.policy.model import Rule"),
    actions_rule: ("retentiond.actions.base", "from retentiond.policy.model import Rule"),
    one_action_rule: ("retentiond.run.engine", "from retentiond.actions.delete import X"),
    holds_rule: ("retentiond.holds.table",
                 "def f():\n    from retentiond.run.engine import RulePlan\n"),
    stores_rule: ("retentiond.stores.base",
                  "from typing import TYPE_CHECKING\n"
                  "if TYPE_CHECKING:\n    from retentiond.holds.guards import HoldSource\n"),
}
"""For each rule, a module and an import it must not have (lazy and type-only ones count)."""


def test_only_the_cli_imports_the_cli():
    """No module below the CLI imports ``retentiond.cli``."""
    assert [] == cli_rule()


def test_only_the_cli_and_the_daemon_import_the_daemon():
    """No module below the daemon imports ``retentiond.daemon``."""
    assert [] == daemon_rule()


def test_nothing_outside_stores_sql_imports_it():
    """``stores/sql/`` is imported only from within (the package finds it by entry point)."""
    assert [] == sql_rule()


def test_policy_imports_only_errors_and_the_action_registry():
    """Policy imports no room but errors and the action registry: not run, stores or ledger."""
    assert [] == policy_rule()


def test_the_policy_language_imports_nothing_above_it():
    """strict, filters, periods and cron import nothing of retentiond but errors and each other."""
    assert [] == language_rule()


def test_actions_take_only_the_policy_language():
    """Actions import the policy language, never the policy model that imports them."""
    assert [] == actions_rule()


def test_no_module_reaches_into_one_action():
    """Outside ``actions/``, only the registry and ``actions.base`` are imported."""
    assert [] == one_action_rule()


def test_holds_do_not_import_run():
    """Holds import neither run, publish, validation, cli nor daemon."""
    assert [] == holds_rule()


def test_stores_import_nothing_that_uses_them():
    """Stores import neither run, actions, holds, ledger, publish, validation, cli nor daemon."""
    assert [] == stores_rule()


def test_no_modules_import_each_other():
    """The imports that run when a module is imported form no cycle."""
    assert [] == cycles(package_imports())


def test_every_rule_catches_a_forbidden_import():
    """Each rule reports an import that breaks it, in a function or under TYPE_CHECKING too."""
    caught = {rule.__name__: rule(imports_of(module, source))
              for rule, (module, source) in BREAKS.items()}
    assert {rule.__name__: 1 for rule in RULES} == {name: len(v) for name, v in caught.items()}


def test_a_cycle_is_caught():
    """Two modules that import each other at import time are a cycle; a lazy import is not."""
    loop = [*imports_of("retentiond.holds.table", "from retentiond.holds.scope import x"),
            *imports_of("retentiond.holds.scope", "from retentiond.holds.table import y"),
            *imports_of("retentiond.run.engine", "def f():\n    import retentiond.run.reach\n"),
            *imports_of("retentiond.run.reach", "import retentiond.run.engine")]
    assert [["retentiond.holds.scope", "retentiond.holds.table"]] == cycles(loop)
