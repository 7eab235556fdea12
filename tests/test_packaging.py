"""Packaging: the distribution's name, version and metadata agree with what the docs tell a user.

Role: a new user copies the install lines of README.md and docs/; they must name the
distribution pyproject.toml builds (`looplet-asyncio`: `looplet` on PyPI is another
project), and the version looplet reports must be the one it was built as.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

import looplet

REPO = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]

# A pip command as the docs write it: `pip install ...`, `python -m pip show ...`.
PIP_COMMAND = re.compile(r"\bpip\s+(install|download|show|uninstall)\s+([^\n`#&|;]*)")


def looplet_requirements(text: str) -> list[str]:
    """The distribution names of looplet that the pip commands in `text` use."""
    names = []
    for match in PIP_COMMAND.finditer(text):
        for word in shlex.split(match.group(2)):
            if word.startswith(("-", ".", "/")):
                continue  # an option, or a path such as `.` or `'.[test]'`
            name = re.split(r"[\[<>=!~ ;@]", word, maxsplit=1)[0]
            if name.lower().startswith("looplet"):
                names.append(name)
    return names


def test_the_distribution_is_not_the_taken_name() -> None:
    assert PYPROJECT["project"]["name"] == "looplet-asyncio"


def test_docs_install_the_distribution_pyproject_builds() -> None:
    name = PYPROJECT["project"]["name"]
    found = {str(path.relative_to(REPO)): looplet_requirements(path.read_text()) for path in DOCS}
    assert found["README.md"], "README.md names the distribution in no pip command"
    wrong = {doc: names for doc, names in found.items() if any(n != name for n in names)}
    assert not wrong, f"pip commands name another distribution than {name!r}: {wrong}"


def test_the_name_check_sees_a_wrong_name() -> None:
    text = "python -m pip install looplet && pip show 'looplet-asyncio[test]>=0.1'  # looplet\n"
    assert looplet_requirements(text) == ["looplet", "looplet-asyncio"]
    assert looplet_requirements("python -m pip install . 'pytest-asyncio>=1.0'  # from a clone of looplet") == []


def test_version_is_the_built_version() -> None:
    assert looplet.__version__ == PYPROJECT["project"]["version"]
