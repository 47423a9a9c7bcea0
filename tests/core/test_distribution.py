"""PyPI's `avatarkit` (SpatialReal's SDK) is another project with the same import name: when it
is what gets imported, or mixed into our package, avatarkit says so and names both."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import avatarkit


def _run(code: str, *, path: Path) -> subprocess.CompletedProcess[str]:
    # the fake or mixed package goes first on sys.path, as an installed one would be found
    return subprocess.run(
        [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(path)!r}); {code}"],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_our_distribution_is_named() -> None:
    assert avatarkit.__distribution__ == "avatarkit-livekit"


def test_the_other_avatarkit_mixed_into_ours_stops_the_import(tmp_path: Path) -> None:
    ours = Path(avatarkit.__file__).parent
    shutil.copytree(ours, tmp_path / "avatarkit")
    # a module only SpatialReal's package has, as pip leaves it when both are installed
    (tmp_path / "avatarkit" / "avatar_session.py").write_text("")
    result = _run("import avatarkit", path=tmp_path)
    assert result.returncode != 0
    assert "ImportError" in result.stderr
    assert "avatarkit-livekit" in result.stderr and "SpatialReal" in result.stderr
    assert "pip uninstall avatarkit" in result.stderr


def test_the_command_refuses_the_other_avatarkit(tmp_path: Path) -> None:
    (tmp_path / "avatarkit").mkdir()
    (tmp_path / "avatarkit" / "__init__.py").write_text('"""Not ours."""\n')
    result = _run("from avatarkit_cli import main; main()", path=tmp_path)
    assert result.returncode == 1
    assert "PyPI's 'avatarkit'" in result.stderr and "avatarkit-livekit" in result.stderr
    assert str(tmp_path) in result.stderr  # where the wrong one was found
