"""Packaging: the distribution's name, version and metadata agree with what the docs tell a user.

Role: a new user copies the install lines of README.md and docs/; they must name the
distribution pyproject.toml builds (`looplet-asyncio`: `looplet` on PyPI is another
project), and the version looplet reports must be the one it was built as. A plain
build is pure Python and needs neither mypy nor a C compiler (mypyc is opt-in,
`LOOPLET_COMPILE=1`); the wheel carries the MIT licence, as its metadata says.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import zipfile
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


# -- what a build needs, and what it ships ---------------------------------------------


def test_the_licence_is_mit_in_the_metadata_and_the_file() -> None:
    project = PYPROJECT["project"]
    assert project["license"] == "MIT"
    assert project["license-files"] == ["LICENSE"]
    text = (REPO / "LICENSE").read_text()
    assert text.startswith("MIT License\n")
    assert "Permission is hereby granted, free of charge" in text
    assert "MIT" in (REPO / "README.md").read_text().split("## Licence", 1)[1]


def test_a_build_needs_neither_mypy_nor_a_compiler() -> None:
    # mypyc is asked for only by LOOPLET_COMPILE=1 (setup.py's setup_requires).
    requires = PYPROJECT["build-system"]["requires"]
    assert [re.split(r"[<>=!~ ;\[]", r, maxsplit=1)[0] for r in requires] == ["setuptools"]


def test_the_changelog_covers_this_version() -> None:
    text = (REPO / "CHANGELOG.md").read_text()
    assert f"## {PYPROJECT['project']['version']} " in text


def test_no_internal_issue_references() -> None:
    # The docs and the code say what the code does and why, not which ticket asked.
    paths = [REPO / "README.md", REPO / "CHANGELOG.md", *DOCS, *REPO.glob("looplet/**/*.py")]
    paths += [*REPO.glob("examples/**/*.py"), *REPO.glob("tests/**/*.py")]
    pattern = re.compile(r"\bissues?\s*#?\d+|\bhelper-\d+", re.IGNORECASE)
    found = [f"{p.relative_to(REPO)}: {m.group(0)}" for p in paths for m in pattern.finditer(p.read_text())]
    assert found == []


def test_a_wheel_builds_pure_without_mypy(tmp_path: Path) -> None:
    # A wheel as `pip install .` builds it, in pip's isolated build environment, from a
    # copy of the source tree without what builds and tools leave in a checkout (no git
    # needed: the 3.14/3.15 root CI runs in has none).
    src = tmp_path / "src"
    shutil.copytree(
        REPO,
        src,
        ignore=shutil.ignore_patterns(".git", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", "*.so", "*.c"),
    )
    env = {k: v for k, v in os.environ.items() if k not in ("LOOPLET_COMPILE", "PYTHONPATH")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--disable-pip-version-check",
            "-w",
            str(tmp_path),
            "-v",
            str(src),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    wheels = sorted(tmp_path.glob("*.whl"))
    assert [w.name for w in wheels] == [f"looplet_asyncio-{PYPROJECT['project']['version']}-py3-none-any.whl"]
    with zipfile.ZipFile(wheels[0]) as wheel:
        names = wheel.namelist()
        assert not [n for n in names if n.endswith((".so", ".c"))]
        dist_info = f"looplet_asyncio-{PYPROJECT['project']['version']}.dist-info"
        metadata = wheel.read(f"{dist_info}/METADATA").decode()
        assert f"{dist_info}/licenses/LICENSE" in names
    assert "Name: looplet-asyncio\n" in metadata
    assert "License-Expression: MIT\n" in metadata
    # pip names what it installed to build: setuptools, and no mypy.
    installs = [line for line in (proc.stdout + proc.stderr).splitlines() if "Successfully installed" in line]
    assert installs and all("setuptools" in line and "mypy" not in line for line in installs), installs
