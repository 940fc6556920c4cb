"""docs/architecture.md stays true, and the import graph keeps its shape.

- Every module path and dotted name the page writes in backquotes exists (a path on
  disk, a name that imports), so moving code without the page fails here.
- No import cycle anywhere in voting and loadtests, imports inside functions included
  (grimp's graph, strongly connected components): import-linter's contracts check layers
  and cycles between the modules of a package, this checks every module against every
  other.
- The import-linter contracts in pyproject.toml hold (`./dev test` runs `lint-imports`
  too; here they also hold for a bare pytest run).
"""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "architecture.md"
# `voting/ballot.py`, `voting/web/`, `tests/test_compat.py`, `voting.ballot.Ballot.cast`
_NAME = re.compile(r"`((?:voting|loadtests|tests)(?:[./][A-Za-z_][A-Za-z0-9_]*)+(?:\.py|/)?)`")


def _names() -> list[str]:
    return sorted(set(_NAME.findall(DOC.read_text(encoding="utf-8"))))


def _resolve(dotted: str) -> object:
    """The module or attribute a dotted name denotes: the longest importable prefix, then
    attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[cut:]:
            target = getattr(target, attribute)
        return target
    raise ModuleNotFoundError(dotted)


def test_the_page_names_many_things() -> None:
    # A broken pattern would find nothing and check nothing.
    names = _names()
    assert len([n for n in names if "/" in n]) >= 30
    assert len([n for n in names if "/" not in n]) >= 40


@pytest.mark.parametrize("name", _names())
def test_every_name_on_the_page_exists(name: str) -> None:
    if "/" in name:
        assert (ROOT / name).exists(), f"docs/architecture.md names {name}, which is gone"
    else:
        try:
            _resolve(name)
        except (ImportError, AttributeError) as exc:
            pytest.fail(f"docs/architecture.md names {name}, which does not import: {exc}")


def test_the_readme_links_the_page() -> None:
    assert "docs/architecture.md" in (ROOT / "README.md").read_text(encoding="utf-8")


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append(
                        (child, iter(sorted(graph.find_modules_directly_imported_by(child))))
                    )
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    # The control: a graph with a cycle (and one without) through the same function.
    graph = grimp.ImportGraph()
    for importer, imported in [("p.a", "p.b"), ("p.b", "p.c"), ("p.c", "p.a"), ("p.c", "p.d")]:
        graph.add_import(importer=importer, imported=imported)
    assert _cycles(graph) == [["p.a", "p.b", "p.c"]]
    graph.remove_import(importer="p.c", imported="p.a")
    assert _cycles(graph) == []


def test_no_import_cycles_in_voting_and_loadtests() -> None:
    graph = grimp.build_graph("voting", "loadtests", cache_dir=None)
    assert "voting.web.edge" in graph.modules  # the graph is this tree's
    assert _cycles(graph) == []


def test_import_linter_contracts_hold() -> None:
    # In a child process: lint_imports configures logging with dictConfig, which would
    # switch off every logger this process made before (the access log's among them).
    check = (
        "import sys; from importlinter.cli import lint_imports;"
        " sys.exit(lint_imports(no_cache=True))"
    )
    done = subprocess.run(
        [sys.executable, "-c", check],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_python_m_loadtests_bench_is_still_voting_bench() -> None:
    # loadtests.bench no longer imports voting.cli (which imports it): it runs the command.
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "loadtests.bench", "--help"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: voting bench")
