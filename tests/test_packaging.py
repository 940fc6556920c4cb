"""What installing the project prints: only what the project means to say."""

from __future__ import annotations

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_licence_is_an_spdx_expression_that_setuptools_takes_without_a_warning():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    # A TOML table ({text = ...}) makes setuptools print a deprecation block several
    # times per install; the SPDX string needs setuptools 77 or later at build time.
    assert project["project"]["license"] == "Apache-2.0"
    requires = project["build-system"]["requires"]
    assert any(r.replace(" ", "").startswith("setuptools>=77") for r in requires), requires
