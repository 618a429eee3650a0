"""Dependencies point one way, read from the import statements (so a stray import fails here, not in review):
services/ imports no handlers/, processing/, bot/ or presentation/ (it returns data; the others render it);
presentation/ imports no handlers/, processing/ or bot/ (wording sits below both handlers and workers);
processing/ imports no handlers/ and takes its wording from presentation/, never bot.texts;
routes/ (HTTP) imports no handlers/ or bot/; transport/ (gate, metrics, logs) and config/ (settings) sit at the
bottom and import none of the app's packages."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "services": ("handlers", "processing", "bot", "presentation", "routes"),
    "presentation": ("handlers", "processing", "bot"),
    "processing": ("handlers", "bot.texts", "routes"),
    "routes": ("handlers", "bot"),
    "transport": ("bot", "handlers", "processing", "services", "presentation", "routes", "config"),
    "config": ("bot", "handlers", "processing", "services", "presentation", "routes", "transport", "db"),
}


def imported_modules(source: str) -> set[str]:
    """Every absolute module an import statement names, at any depth (lazy imports count too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)  # `from bot import texts`
    return names


def violations(root: Path) -> list[str]:
    found = []
    for package, banned in FORBIDDEN.items():
        for path in sorted((root / package).rglob("*.py")):
            for module in sorted(imported_modules(path.read_text(encoding="utf-8"))):
                if any(module == b or module.startswith(b + ".") for b in banned):
                    found.append(f"{path.relative_to(root)} imports {module}")
    return found


def test_layers_point_one_way():
    assert violations(ROOT) == []


def test_a_wrong_way_import_is_caught(tmp_path):
    """The checker itself: each kind of wrong-way import, lazy or aliased, is reported."""
    for package in ("services", "presentation", "processing"):
        (tmp_path / package).mkdir()
    (tmp_path / "services" / "a.py").write_text("def f():\n    from presentation.whales import wallet_name\n")
    (tmp_path / "services" / "b.py").write_text("import handlers.user.whales as w\n")
    (tmp_path / "presentation" / "c.py").write_text("from processing import notify\n")
    (tmp_path / "processing" / "d.py").write_text("from bot import texts\nfrom transport.gate import bulk\n")
    (tmp_path / "processing" / "e.py").write_text("from presentation.texts import status_label\n")
    assert violations(tmp_path) == [
        "services/a.py imports presentation.whales",
        "services/a.py imports presentation.whales.wallet_name",
        "services/b.py imports handlers.user.whales",
        "presentation/c.py imports processing",
        "presentation/c.py imports processing.notify",
        "processing/d.py imports bot.texts",
    ]


def direct_answers(root: Path) -> list[str]:
    """Calls of `.answer(...)` on a parameter annotated `CallbackQuery`, outside bot/screens.py (which answers
    every tap, so none is answered twice or forgotten)."""
    found = []
    for path in sorted([*(root / "handlers").rglob("*.py"), *(root / "bot").rglob("*.py")]):
        if path == root / "bot" / "screens.py":
            continue
        for function in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            queries = {arg.arg for arg in function.args.args + function.args.kwonlyargs
                       if arg.annotation is not None and ast.unparse(arg.annotation) == "CallbackQuery"}
            for node in ast.walk(function):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "answer"
                        and isinstance(node.func.value, ast.Name) and node.func.value.id in queries):
                    found.append(f"{path.relative_to(root)}:{node.lineno} {function.name}")
    return found


def test_taps_are_answered_only_in_bot_screens():
    assert direct_answers(ROOT) == []


def test_a_direct_answer_is_caught(tmp_path):
    (tmp_path / "handlers").mkdir()
    (tmp_path / "bot").mkdir()
    (tmp_path / "handlers" / "a.py").write_text(
        "async def tap(query: CallbackQuery, state):\n    await query.answer('hi')\n\n"
        "async def pay(query: PreCheckoutQuery):\n    await query.answer(ok=True)\n")
    (tmp_path / "bot" / "screens.py").write_text("async def alert(query: CallbackQuery):\n    await query.answer()\n")
    assert direct_answers(tmp_path) == ["handlers/a.py:2 tap"]
