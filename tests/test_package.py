"""`pip install .`: the wheel, built offline from this repository, installed into a fresh virtual environment and
used from a folder outside the repository, as a user would use it.

The wheel is built with the build backend already in .venv (``pip wheel --no-build-isolation``, no index) and
installed with ``--no-deps`` into a ``venv --without-pip``; a ``.pth`` file there points at this interpreter's
site-packages for the dependencies, so nothing is downloaded or installed twice. Everything PoseScope itself needs
(its code, pages, Streamlit settings and model bundles) must come from the installed tree.

Run: ``.venv/bin/python -m pytest tests/test_package.py -q``.
"""

from __future__ import annotations

import configparser
import hashlib
import json
import os
import subprocess
import sys
import sysconfig
import tempfile
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from browser_support import (  # noqa: F401 - the *_fixture names register the browser and page fixtures
    AppServer,
    SERVER_START_TIMEOUT_S,
    _log_tail,
    _stop,
    _wait_healthy,
    assert_no_exception,
    browser_fixture,
    free_port,
    page_fixture,
    playwright_fixture,
    wait_for_app_idle,
)
from test_browser_offline import Recorder
from test_cli import PHOTO_FILES

if TYPE_CHECKING:
    from playwright.sync_api import Page

ROOT = Path(__file__).resolve().parent.parent
BUNDLES = tuple(f"pose_landmarker_{complexity}.task" for complexity in ("lite", "full", "heavy"))
# The installed tree: the repository's app, as site-packages/posescope/<these>.
INSTALLED_TOP = {"analysis", "views", "assets", "models", ".streamlit", "dashboard.py"}
NOT_SHIPPED = {"tests", "docs", "benchmarks", ".venv", "__pycache__", ".git", ".ci"}
# Settings a user's environment could otherwise give the installed app, hiding whether the packaged ones apply.
FOREIGN_ENV = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV")
DARK_BACKGROUND = "rgb(17, 19, 24)"  # .streamlit/config.toml: theme.backgroundColor = "#111318"


def _clean_env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if key not in FOREIGN_ENV and not key.startswith("STREAMLIT_")}
    return env | {"COLUMNS": "100"} | extra  # argparse wraps --help to the terminal's width


def _run(command: list[str | Path], cwd: Path, timeout: float = 300, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(part) for part in command], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env=_clean_env(**env), stdin=subprocess.DEVNULL)


def _ok(command: list[str | Path], cwd: Path) -> subprocess.CompletedProcess[str]:
    run = _run(command, cwd)
    assert run.returncode == 0, f"{' '.join(map(str, command))} failed ({run.returncode}):\n{run.stdout}{run.stderr}"
    return run


@dataclass(frozen=True)
class Install:
    """PoseScope installed from the wheel into its own virtual environment."""

    venv: Path
    site: Path  # the venv's site-packages

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def tree(self) -> Path:
        return self.site / "posescope"

    def posescope(self, *args: str | Path, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """The installed `posescope` command, run from ``cwd``."""
        return _run([self.venv / "bin" / "posescope", *args], cwd, timeout)


def install(wheel: Path, venv: Path) -> Install:
    """A fresh venv without pip, the wheel installed into it without its dependencies, which come from here."""
    _ok([sys.executable, "-m", "venv", "--without-pip", venv], venv.parent)
    _ok([sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install", "-q", "--no-deps", "--no-index",
         "--disable-pip-version-check", wheel], venv.parent)
    probe = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(_ok([venv / "bin" / "python", "-c", probe], venv.parent).stdout.strip())
    (site / "zz_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # after posescope.pth: ours come first
    return Install(venv, site)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built offline from the repository as it is."""
    out = tmp_path_factory.mktemp("wheel")
    _ok([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index",
         "--disable-pip-version-check", ROOT, "-w", out], out)
    wheels = list(out.glob("*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.fixture(scope="module")
def wheel_names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Install:
    return install(wheel, tmp_path_factory.mktemp("installed") / "venv")


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    """An empty working folder outside the repository."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    assert not folder.is_relative_to(ROOT)
    return folder


def _checksums(text: str) -> dict[str, str]:
    return {name: digest for digest, name in (line.split() for line in text.splitlines() if line.strip())}


# --- the wheel -------------------------------------------------------------------------------------------------------


def test_the_wheel_holds_the_app_its_settings_and_its_models(wheel_names: set[str]) -> None:
    required = {"posescope.pth", "posescope/dashboard.py", "posescope/.streamlit/config.toml",
                "posescope/analysis/exercises.toml", "posescope/assets/favicon.png", "posescope/models/SHA256SUMS",
                "posescope/models/NOTICE", *(f"posescope/models/{bundle}" for bundle in BUNDLES)}
    assert required <= wheel_names, sorted(required - wheel_names)
    sources = {f"posescope/{path.relative_to(ROOT).as_posix()}"
               for folder in ("analysis", "views") for path in (ROOT / folder).glob("*.py")}
    assert any(name.startswith("posescope/views/") for name in sources)
    assert sources <= wheel_names, f"modules missing from the wheel: {sorted(sources - wheel_names)}"


def test_the_wheel_holds_nothing_else(wheel_names: set[str]) -> None:
    tops = {name.split("/")[0] for name in wheel_names}
    assert {top for top in tops if not top.endswith(".dist-info")} == {"posescope", "posescope.pth"}
    assert {name.split("/")[1] for name in wheel_names if name.startswith("posescope/")} == INSTALLED_TOP
    stray = sorted(name for name in wheel_names if NOT_SHIPPED & set(name.split("/")) or name.endswith(".pyc"))
    assert not stray, f"the wheel ships files it should not: {stray[:20]}"


def test_the_wheel_declares_the_posescope_command_and_its_path_file(wheel: Path, wheel_names: set[str]) -> None:
    with zipfile.ZipFile(wheel) as archive:
        [entry_points] = [name for name in wheel_names if name.endswith(".dist-info/entry_points.txt")]
        declared = configparser.ConfigParser()
        declared.read_string(archive.read(entry_points).decode())
        pth = archive.read("posescope.pth").decode()
        config = archive.read("posescope/.streamlit/config.toml")
    assert dict(declared["console_scripts"]) == {"posescope": "analysis.__main__:main"}
    assert [line.strip() for line in pth.splitlines() if line.strip()] == ["posescope"]
    assert config == (ROOT / ".streamlit" / "config.toml").read_bytes()


def test_each_bundle_in_the_wheel_matches_its_checksum(wheel: Path) -> None:
    expected = _checksums((ROOT / "models" / "SHA256SUMS").read_text())
    assert set(expected) == set(BUNDLES)
    with zipfile.ZipFile(wheel) as archive:
        assert _checksums(archive.read("posescope/models/SHA256SUMS").decode()) == expected
        for bundle in BUNDLES:
            assert hashlib.sha256(archive.read(f"posescope/models/{bundle}")).hexdigest() == expected[bundle], bundle


# --- the installed command -------------------------------------------------------------------------------------------


def _words(help_text: str) -> str:
    """The help with the program's name as `posescope` and argparse's line wrapping (which follows it) undone."""
    return " ".join(help_text.replace("python -m analysis", "posescope").split())


def test_the_installed_command_is_python_m_analysis(installed: Install, elsewhere: Path) -> None:
    run = installed.posescope("--help", cwd=elsewhere)
    assert run.returncode == 0 and run.stderr == "", run.stderr
    assert run.stdout.startswith("usage: posescope ")  # it names itself as the user called it
    here = _run([sys.executable, "-m", "analysis", "--help"], ROOT)
    assert here.returncode == 0, here.stderr
    assert _words(run.stdout) == _words(here.stdout) and "--model {lite,full,heavy}" in run.stdout


def test_the_installed_command_analyses_a_photo_from_any_folder(installed: Install, media: Path,
                                                                elsewhere: Path) -> None:
    out = elsewhere / "results"
    run = installed.posescope(media / "bus.jpg", "--model", "lite", "--out", out, cwd=elsewhere)
    assert run.returncode == 0 and run.stderr == "", run.stderr
    assert PHOTO_FILES <= {path.name for path in (out / "bus").iterdir()}  # (and the batch's own marker)
    assert (out / "bus" / "annotated.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pose = json.loads((out / "bus" / "pose.json").read_text())
    assert pose["source"] == "bus.jpg" and len(pose["people"]) == 1
    assert {path.name for path in elsewhere.iterdir()} == {"results"}  # nothing else left in the working folder


def test_the_installed_library_and_models_are_the_installed_ones(installed: Install, elsewhere: Path) -> None:
    probe = ("import json, analysis, analysis.models as models; "
             "print(json.dumps({'analysis': analysis.__file__, 'lite': str(models.verified_bundle('lite'))}))")
    run = _run([installed.python, "-c", probe], elsewhere)
    assert run.returncode == 0, run.stderr
    found = {key: Path(value).resolve() for key, value in json.loads(run.stdout).items()}
    assert found["analysis"] == (installed.tree / "analysis" / "__init__.py").resolve()
    assert found["lite"] == (installed.tree / "models" / "pose_landmarker_lite.task").resolve()
    assert not any(path.is_relative_to(ROOT) for path in found.values())


def test_a_damaged_installed_bundle_is_refused(wheel: Path, media: Path, tmp_path: Path, elsewhere: Path) -> None:
    """The checksum check still runs installed. An install of its own: the shared one stays intact."""
    damaged = install(wheel, tmp_path / "venv")
    bundle = damaged.tree / "models" / "pose_landmarker_lite.task"
    data = bytearray(bundle.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bundle.write_bytes(bytes(data))
    out = elsewhere / "results"
    run = damaged.posescope(media / "bus.jpg", "--model", "lite", "--out", out, cwd=elsewhere)
    assert run.returncode == 1, run.stderr
    lines = run.stderr.splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("posescope: ") and "pose_landmarker_lite.task" in lines[0] and "damaged" in lines[0]
    assert not (out / "bus").exists()


# --- the installed dashboard -----------------------------------------------------------------------------------------


@pytest.fixture
def installed_app(installed: Install, tmp_path: Path) -> Iterator[AppServer]:
    """`posescope app --server.port PORT` from an empty folder, with a home of its own (no ~/.streamlit settings):
    every other setting must come from the installed package."""
    cwd, home = tmp_path / "elsewhere", tmp_path / "home"
    cwd.mkdir()
    home.mkdir()
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    command = [str(installed.venv / "bin" / "posescope"), "app", "--server.port", str(port)]
    with tempfile.NamedTemporaryFile(prefix="posescope-app-", suffix=".log", delete=False) as log_file:
        log_path = Path(log_file.name)
        process = subprocess.Popen(command, cwd=cwd, stdout=log_file, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, env=_clean_env(HOME=str(home), PYTHONUNBUFFERED="1"),
                                   start_new_session=True)
    try:
        problem = _wait_healthy(process, base_url, SERVER_START_TIMEOUT_S)
        if problem:
            pytest.fail(f"{problem}\nCommand: {' '.join(command)}\nServer log:\n{_log_tail(log_path)}", pytrace=False)
        yield AppServer(base_url, log_path)
    finally:
        _stop(process)  # the whole process group: `posescope app` and the Streamlit server it started
        assert process.poll() is not None
        log_path.unlink(missing_ok=True)


@pytest.mark.browser
def test_posescope_app_serves_the_dashboard_with_its_packaged_settings(installed_app: AppServer,
                                                                       page: Page) -> None:
    with urllib.request.urlopen(f"{installed_app}/_stcore/health", timeout=5) as response:  # noqa: S310 - localhost
        assert response.read().decode().strip() == "ok"
    recorder = Recorder(page)
    try:
        page.goto(installed_app)
        heading = page.get_by_role("heading", name="PoseScope", exact=True)
        heading.wait_for(timeout=30_000)
        wait_for_app_idle(page)
        recorder.snapshot(page)
        assert page.title() == "PoseScope"
        assert_no_exception(page)
        # theme.base = "dark" with its colours, from the installed .streamlit/config.toml.
        background = page.locator('[data-testid="stApp"]').evaluate("app => getComputedStyle(app).backgroundColor")
        assert background == DARK_BACKGROUND
        # The installed bundles are found and intact: the home page asks to rebuild them otherwise.
        assert "Rebuild the model bundles" not in page.locator("body").inner_text()
        assert any(link.endswith(".png") for kind, link in recorder.seen if kind == "favicon link")  # assets/
    except Exception as error:
        error.add_note(f"Server log:\n{installed_app.log()}")
        raise
    # browser.gatherUsageStats = false: the page talks to nobody but the app.
    foreign = recorder.foreign(installed_app)
    assert not foreign, "the installed app contacted another host:\n" + "\n".join(foreign)
