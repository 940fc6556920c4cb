"""tests/ mirrors the code: a module's tests are found by its name (tests/README.md).

- tests/<path>/test_<name>.py tests voting/<path>/<name>.py (or the package or folder
  voting/<path>/<name>/, its own code); tests/<path>/test_<name>_<aspect>.py is more of
  the same module's tests (a package's modules are tested in its folder). Under
  tests/loadtests/ the same holds for loadtests/.
- The suites that cut across the code live in declared folders (CROSS_CUTTING), and the
  checks of the project as a whole are named (PROJECT_WIDE).
- Support code lives in tests/fixtures/ and holds no tests; every folder is a package (so
  equal basenames in two folders collect); no test module imports another test module
  or a conftest.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
# Suites whose subject is the whole engine seen from one side, not one module.
CROSS_CUTTING = {
    "browser": "the pages in a real browser (Playwright, axe-core)",
    "faults": "servers killed and restarted under load",
    "cluster": "the Redis Cluster itself (the shared suites run on it via redis_backend)",
    "security": "attack suites over every route: CSRF, roles, tokens, injection, limits",
}
PROJECT_WIDE = {"test_architecture.py", "test_layout.py", "test_packaging.py"}


def subject(test: Path, root: Path = ROOT) -> Path | None:
    """The module (or package) a test module mirrors, None when it mirrors nothing."""
    relative = test.relative_to(root / "tests")
    folders, name = relative.parts[:-1], relative.name
    if not name.startswith("test_") or not name.endswith(".py"):
        return None
    stem = name[len("test_") : -len(".py")]
    if folders[:1] == ("loadtests",):
        base = root.joinpath("loadtests", *folders[1:])
    else:
        base = root.joinpath("voting", *folders)
    if not base.is_dir():
        return None
    # The longest module name the test's name starts with: test_voting_admin.py is
    # web/voting.py's, test_i18n_catalogs.py is i18n_catalogs.py's, not i18n.py's.
    found: Path | None = None
    for candidate in base.iterdir():
        module = candidate.stem if candidate.suffix == ".py" else candidate.name
        if candidate.name.startswith(("_", ".")) or module == "":
            continue
        if not (candidate.suffix == ".py" or candidate.is_dir()):
            continue
        # A package's own tests (its __init__) sit beside it under its exact name; the
        # tests of its modules go in its folder, not in test_<package>_<module>.py.
        matches = stem == module or (candidate.is_file() and stem.startswith(module + "_"))
        if matches and (found is None or len(module) > len(found.stem)):
            found = candidate
    return found


def placed(test: Path, root: Path = ROOT) -> bool:
    relative = test.relative_to(root / "tests")
    if len(relative.parts) > 1 and relative.parts[0] in CROSS_CUTTING:
        return True
    if len(relative.parts) == 1 and relative.name in PROJECT_WIDE:
        return True
    return subject(test, root) is not None


def _test_modules() -> list[Path]:
    return sorted(TESTS.rglob("test_*.py"))


def test_the_rule_places_and_refuses():
    # The control: the rule refuses what mirrors nothing, so the test below can fail.
    assert subject(TESTS / "tally" / "test_merge.py") == ROOT / "voting" / "tally" / "merge.py"
    assert subject(TESTS / "web" / "test_voting_admin.py") == ROOT / "voting/web/voting.py"
    assert subject(TESTS / "test_i18n_catalogs.py") == ROOT / "voting" / "i18n_catalogs.py"
    assert subject(TESTS / "test_contest.py") == ROOT / "voting" / "contest"
    assert subject(TESTS / "loadtests" / "test_loadtest.py") == ROOT / "loadtests/loadtest.py"
    for stray in (
        TESTS / "test_tally_merge.py",  # the flat name the mirror replaced
        TESTS / "tally" / "test_ballot.py",  # a module of another package
        TESTS / "web" / "test_nowhere.py",
        TESTS / "nowhere" / "test_merge.py",
        TESTS / "test_edge.py",  # web/edge.py's tests belong in tests/web/
    ):
        assert not placed(stray), stray
    assert placed(TESTS / "security" / "test_anything.py")
    assert not placed(TESTS / "fixtures" / "test_anything.py")


@pytest.mark.parametrize("test", _test_modules(), ids=lambda p: str(p.relative_to(TESTS)))
def test_every_test_module_mirrors_a_module_or_sits_in_a_declared_folder(test: Path):
    assert placed(test), (
        f"{test.relative_to(ROOT)} mirrors no module of voting/ or loadtests/ and is not in "
        f"a cross-cutting folder ({', '.join(sorted(CROSS_CUTTING))}): see tests/README.md"
    )


def test_there_are_many_test_modules():
    # A broken glob would check nothing.
    assert len(_test_modules()) >= 60


def test_every_folder_is_a_package():
    for folder in [TESTS, *(p for p in TESTS.rglob("*") if p.is_dir())]:
        if folder.name == "__pycache__" or "__pycache__" in folder.parts:
            continue
        if not any(folder.glob("*.py")):
            continue  # screenshots, data
        assert (folder / "__init__.py").exists(), f"{folder.relative_to(ROOT)} is no package"


def test_fixtures_hold_no_tests():
    assert not list((TESTS / "fixtures").rglob("test_*.py"))


def _imported(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def _is_test_module(dotted: str) -> bool:
    last = dotted.rsplit(".", 1)[-1]
    return dotted.startswith("tests.") and (last.startswith("test_") or last == "conftest")


def test_the_import_check_sees_an_import_of_a_test_module(tmp_path: Path):
    # The control of the check below.
    sample = tmp_path / "test_sample.py"
    sample.write_text(
        "from tests.web.test_voting import open_voting\nfrom tests import conftest\n"
        "from tests.fixtures.voting import flush\n"
    )
    assert sorted(n for n in _imported(sample) if _is_test_module(n)) == [
        "tests.conftest",
        "tests.web.test_voting",
    ]


def test_no_module_imports_a_test_module_or_a_conftest():
    offenders = {
        str(path.relative_to(ROOT)): sorted(n for n in _imported(path) if _is_test_module(n))
        for path in sorted(TESTS.rglob("*.py"))
    }
    assert {k: v for k, v in offenders.items() if v} == {}
