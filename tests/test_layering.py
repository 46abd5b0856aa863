"""`server` → `loaders` → SQLAlchemy: `loaders/` never reaches up into the web stack."""

import ast
import inspect
import re
import subprocess
import sys
from pathlib import Path

import loaders

FORBIDDEN = ("server", "strawberry", "starlette")
LOADERS_DIR = Path(loaders.__file__).parent

PROBE = f"""
import sys
import loaders
forbidden = {FORBIDDEN!r}
print("\\n".join(sorted(m for m in sys.modules if m.split(".")[0] in forbidden)))
"""


def test_importing_loaders_pulls_in_no_web_module() -> None:
    # A fresh interpreter: this test process has long since imported server and strawberry.
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=LOADERS_DIR.parent,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [], f"`import loaders` imported: {result.stdout.split()}"


def test_no_loaders_module_imports_the_web_stack_even_lazily() -> None:
    # The subprocess check misses an import inside a function; reading the source does not.
    offenders = []
    for path in sorted(LOADERS_DIR.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            offenders += [
                f"{path.name}:{node.lineno} imports {name}"
                for name in names
                if name.split(".")[0] in FORBIDDEN
            ]
    assert offenders == []


def isort_style(name: str) -> tuple[int, list[str | int]]:
    """ruff's RUF022 order: CONSTANTS, then Classes, then the rest; natural sort within each."""
    kind = 0 if name.isupper() else 1 if name[:1].isupper() else 2
    return kind, [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def test_loaders_all_is_sorted_and_exists() -> None:
    # Sorted the way the linter sorts it (RUF022), so `ruff --fix` and this test agree.
    assert loaders.__all__ == sorted(loaders.__all__, key=isort_style)
    assert len(set(loaders.__all__)) == len(loaders.__all__)
    missing = [name for name in loaders.__all__ if not hasattr(loaders, name)]
    assert missing == []


def test_loaders_all_is_complete() -> None:
    # Every public name the package namespace offers (its submodules aside) is exported.
    public = {
        name
        for name, value in vars(loaders).items()
        if not name.startswith("_") and not inspect.ismodule(value)
    }
    assert public == set(loaders.__all__)
