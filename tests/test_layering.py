"""The package direction holds: each part of callbridge imports only the parts below it.

The direction (lowest first) is written once, in `LAYERS`, and drawn in docs/architecture.md. An
import of a part on the same layer or above, an import cycle between parts, or a new part that has
no place in the direction fails here. Imports inside functions count: a lazy import is still a
dependency.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import callbridge

PACKAGE_DIR = Path(callbridge.__file__).parent

# Lowest first. A part may import any part on a lower layer, never one on its own layer or above.
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"__init__", "errors", "closing", "redact", "logs", "webhooks"}),
    frozenset({"audio"}),
    frozenset({"core"}),
    frozenset({"tools", "structured_outputs"}),
    frozenset({"agents"}),
    frozenset({"config"}),
    frozenset({"store", "capture"}),
    frozenset({"analytics"}),
    frozenset({"server"}),
    frozenset({"testing"}),
    frozenset({"evals"}),
    frozenset({"simulate", "cli_twilio", "cli_analytics", "cli_calls"}),
    frozenset({"cli"}),
    frozenset({"__main__"}),
)
RANK = {part: rank for rank, parts in enumerate(LAYERS) for part in parts}


def part_of(path: Path) -> str:
    """The part a source file belongs to: its subpackage, or the top-level module's name."""
    relative = path.relative_to(PACKAGE_DIR)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def is_part(name: str) -> bool:
    """Whether `name` is a subpackage or top-level module of callbridge (not an attribute)."""
    return (PACKAGE_DIR / name).is_dir() or (PACKAGE_DIR / f"{name}.py").is_file()


def imported_parts(source: str) -> set[str]:
    """The callbridge parts one module's source imports, wherever the import statement is."""
    parts: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
            if node.module == "callbridge":  # `from callbridge import config` imports a part
                names += [f"callbridge.{alias.name}" for alias in node.names
                          if is_part(alias.name)]
        else:
            continue
        for name in names:
            pieces = name.split(".")
            if pieces[0] == "callbridge":
                parts.add(pieces[1] if len(pieces) > 1 else "__init__")
    return parts


def violations(imports: dict[str, set[str]]) -> list[str]:
    """Every import, part to part, that goes sideways or up, as 'a -> b (why)'."""
    found = []
    for part, targets in sorted(imports.items()):
        for target in sorted(targets - {part}):
            if part not in RANK or target not in RANK:
                unplaced = part if part not in RANK else target
                found.append(f"{part} -> {target} ({unplaced} has no layer in LAYERS)")
            elif RANK[target] >= RANK[part]:
                found.append(f"{part} -> {target} (layer {RANK[part]} imports layer "
                             f"{RANK[target]})")
    return found


def cycles(imports: dict[str, set[str]]) -> list[list[str]]:
    """Import cycles between parts (each found once, from its smallest part)."""
    found: list[list[str]] = []

    def walk(path: list[str]) -> None:
        for target in sorted(imports.get(path[-1], set()) - {path[-1]}):
            if target == path[0]:
                found.append([*path, target])
            elif target not in path and target > path[0]:
                walk([*path, target])

    for start in sorted(imports):
        walk([start])
    return found


def package_imports() -> dict[str, set[str]]:
    """What each part of the installed package imports."""
    imports: dict[str, set[str]] = defaultdict(set)
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        imports[part_of(path)] |= imported_parts(path.read_text(encoding="utf-8"))
    return dict(imports)


def test_every_import_goes_down_the_direction() -> None:
    """No part imports a part on its own layer or above, and every part has a layer."""
    assert violations(package_imports()) == []


def test_there_is_no_import_cycle_between_parts() -> None:
    """Following imports from part to part never comes back to where it started."""
    assert cycles(package_imports()) == []


def test_every_layer_names_a_part_that_exists() -> None:
    """LAYERS does not keep names of parts that were removed or renamed."""
    assert set(RANK) <= set(package_imports()) | {"__main__"}


def test_the_checks_catch_an_upward_import_a_cycle_and_an_unplaced_part() -> None:
    """Canary: store importing analytics, a cycle through it, and an unknown part all show."""
    imports = {"store": {"analytics", "errors"}, "analytics": {"store"}, "newthing": {"core"}}
    assert violations(imports) == [
        "newthing -> core (newthing has no layer in LAYERS)",
        "store -> analytics (layer 6 imports layer 7)",
    ]
    assert cycles(imports) == [["analytics", "store", "analytics"]]


def test_the_scanner_sees_lazy_imports_and_from_callbridge_imports() -> None:
    """An import inside a function and `from callbridge import x` both count."""
    source = ("from callbridge import __version__, config\n"
              "def f():\n    import callbridge.server.app\n    from callbridge.store import x\n")
    assert imported_parts(source) == {"__init__", "config", "server", "store"}
