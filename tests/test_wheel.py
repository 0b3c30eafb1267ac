"""The built wheel, installed (not editable) into a fresh virtual environment, runs the demo.

The email templates live at the top level (templates/email/) and reach the package through
the link publisher/email/templates; this proves a plain `pip install` carries them, and that the
demo needs nothing from the source tree.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow
_CACHES = shutil.ignore_patterns("__pycache__", "*.pyc")


def _run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    assert done.returncode == 0, f"{args[:3]} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def test_the_wheel_installs_and_runs_the_demo_from_an_empty_folder(tmp_path: Path) -> None:
    dist, env_dir, work = tmp_path / "dist", tmp_path / "venv", tmp_path / "empty"
    work.mkdir()
    source = tmp_path / "source"  # a clean copy: a build leaves build/ behind in its folder
    shutil.copytree(ROOT / "publisher", source / "publisher", symlinks=True, ignore=_CACHES)
    shutil.copytree(ROOT / "templates", source / "templates", ignore=_CACHES)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    wheel_cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist)]
    _run([*wheel_cmd, str(source)], source)
    (wheel,) = dist.glob("publisher-*.whl")
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    lock = ROOT / "requirements.lock"
    _run([str(python), "-m", "pip", "install", "-q", "-c", str(lock), str(wheel)], work)
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PUBLISHER_", "PYTHON"))}
    found = _run([str(python), "-c", "import publisher; print(publisher.__file__)"], work, clean)
    assert str(env_dir) in found and str(ROOT) not in found  # the installed copy, not the source
    languages = "from publisher.i18n import available_locales; print(*available_locales())"
    assert _run([str(python), "-c", languages], work, clean).split() == ["en", "es", "pt"]

    out = _run([str(env_dir / "bin" / "publisher"), "demo"], work, clean)

    assert "feeds written to" in out
    mail = list((work / "var" / "mail").rglob("*"))
    messages = [p for p in mail if p.is_file()]
    assert messages, "the demo sent no email"
    body = messages[0].read_bytes()
    assert b"Content-Type: text/html" in body and b"Unsubscribe" in body
    assert (work / "feeds" / "index.opml").is_file()
