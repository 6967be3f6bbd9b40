"""The package layout: one import name, and the dependency rule that `make lint` enforces.

docs/ARCHITECTURE.md states the rule; pyproject.toml's ``[tool.importlinter]`` contracts
encode it. These tests show the check is real (a reversed import breaks it) and that an
install puts nothing but ``slawatch`` on the import path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _copy_project(tmp_path: Path) -> Path:
    """A copy of the sources (symlinks kept) that a test may break."""
    copy = tmp_path / "project"
    copy.mkdir()
    for name in ("slawatch", "streams", "agents", "schemas"):
        shutil.copytree(ROOT / name, copy / name, symlinks=True,
                        ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, copy / name)
    return copy


def _lint_imports(project: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(project)}
    return subprocess.run(
        [str(BIN / "lint-imports"), "--config", str(project / "pyproject.toml"), "--no-cache"],
        cwd=project, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_the_tree_keeps_the_dependency_rule(tmp_path: Path) -> None:
    result = _lint_imports(_copy_project(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "reversed_import"),
    [
        ("slawatch/core/keys.py", "import slawatch.schemas.events"),  # core -> contracts
        ("schemas/reasons.py", "import slawatch.agents.ingest"),  # contracts -> runtime
        ("agents/ingest.py", "import slawatch.worker.runtime"),  # agents -> the worker
        ("streams/topics.py", "import slawatch.dev.embedded"),  # runtime -> dev tools
        ("slawatch/core/clock.py", "import orjson"),  # core -> a third-party package
    ],
)
def test_a_reversed_import_breaks_the_rule(
    tmp_path: Path, module: str, reversed_import: str
) -> None:
    project = _copy_project(tmp_path)
    target = project / module
    with target.open("a") as source:
        source.write(f"\n{reversed_import}  # deliberately reversed\n")
    result = _lint_imports(project)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 broken" in result.stdout


def test_an_install_puts_only_slawatch_on_the_import_path(tmp_path: Path) -> None:
    project = _copy_project(tmp_path)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
         "--disable-pip-version-check", "-w", str(tmp_path / "dist"), str(project)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (wheel,) = (tmp_path / "dist").glob("slawatch-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {name.split("/", 1)[0] for name in names if "/" in name}
    assert top_level == {"slawatch", wheel.name.split("-py")[0] + ".dist-info"}
    # The card's folders install under the one name, with their data files.
    assert "slawatch/streams/app.py" in names
    assert "slawatch/agents/timers.py" in names
    assert "slawatch/schemas/json/sla-event.v1.json" in names
    assert "slawatch/dev/demo_policy.yaml" in names
