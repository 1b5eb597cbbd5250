"""The core stays sans-I/O: no clock, no randomness, no sockets, no event loop, no files."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import callbridge.core

CORE_DIR = Path(callbridge.core.__file__).parent
CORE_MODULES = ["callbridge.core"] + [
    f"callbridge.core.{info.name}" for info in pkgutil.iter_modules([str(CORE_DIR)])
]
CORE_FILES = sorted(CORE_DIR.glob("*.py"))

# Modules a core source file may not import itself: the clock, randomness, the environment and
# concurrency come in as arguments or live in the adapters.
FORBIDDEN_IMPORTS = frozenset(
    {"time", "datetime", "os", "random", "asyncio", "socket", "threading"}
)
# Calls that reach the outside world from any module.
FORBIDDEN_CALLS = frozenset({"open", "__import__"})
# I/O libraries that must not end up in sys.modules, however indirectly they are imported.
IO_LIBRARIES = frozenset({
    "asyncio", "socket", "ssl", "selectors", "websockets", "starlette", "httpx", "sqlalchemy",
    "uvicorn", "aiohttp", "requests",
})
CANARY = "asyncio"  # imported on purpose, to prove the import walk sees what it should


def offences(source: str) -> list[str]:
    """Forbidden imports and calls in one module's source, as 'line: what' in source order."""
    found: list[tuple[int, int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            roots = [alias.name.split(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots = [node.module.split(".")[0]]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            roots = [node.func.id + "()"] if node.func.id in FORBIDDEN_CALLS else []
        else:
            continue
        found += [(node.lineno, node.col_offset, root) for root in roots
                  if root in FORBIDDEN_IMPORTS or root.endswith("()")]
    return [f"{line}: {what}" for line, _, what in sorted(found)]


@pytest.fixture(scope="module")
def loaded_modules() -> dict[str, set[str]]:
    """sys.modules after importing each core module alone in a fresh interpreter (in parallel)."""
    processes = {
        module: subprocess.Popen(
            [sys.executable, "-c", f"import {module}, sys; print(' '.join(sorted(sys.modules)))"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for module in [*CORE_MODULES, CANARY]
    }
    loaded = {}
    for module, process in processes.items():
        stdout, stderr = process.communicate(timeout=60)
        assert process.returncode == 0, stderr
        loaded[module] = set(stdout.split())
    return loaded


def test_the_scanner_flags_forbidden_imports_and_calls() -> None:
    """The AST check catches `import time`, `from os import path`, asyncio.sleep and open()."""
    source = (
        "import json\nimport time\nfrom os import path\nimport asyncio.tasks\n"
        "from datetime import datetime as dt\nfrom . import sibling\n"
        "def f():\n    return open('x').read(), __import__('random')\n"
    )
    assert offences(source) == [
        "2: time", "3: os", "4: asyncio", "5: datetime", "8: open()", "8: __import__()",
    ]


@pytest.mark.parametrize("path", CORE_FILES, ids=[p.name for p in CORE_FILES])
def test_no_core_module_imports_the_clock_the_environment_or_concurrency(path: Path) -> None:
    """No core file imports time, datetime, os, random, asyncio, socket or threading, or opens."""
    assert offences(path.read_text(encoding="utf-8")) == []


def test_the_import_walk_sees_an_io_library_when_one_is_imported(
    loaded_modules: dict[str, set[str]],
) -> None:
    """Importing asyncio in the same kind of subprocess is detected, so the check below can fail."""
    assert CANARY in loaded_modules[CANARY] & IO_LIBRARIES


@pytest.mark.parametrize("module", CORE_MODULES)
def test_importing_a_core_module_pulls_in_no_io_library(
    module: str, loaded_modules: dict[str, set[str]]
) -> None:
    """Each core module, with everything it imports (twilio included), loads no I/O library."""
    roots = {name.split(".")[0] for name in loaded_modules[module]}
    assert sorted(roots & IO_LIBRARIES) == []
