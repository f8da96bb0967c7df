"""The user's edits to a clip's people (analysis.identities) on Pose2Sim's real two-person demo, and the Video page's
People panel through AppTest."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import open_page
from test_people import multi_person_demo
from test_video_page import labelled, settle, temp_dir  # noqa: F401 - the page's fixture: no file left behind

from analysis import exports
from analysis.drawing import PRIVACY_BACKGROUND
from analysis.engine import PoseSettings
from analysis.identities import (
    THUMBNAIL_PX,
    PeopleEdits,
    leave_out,
    merge_people,
    people_found,
    person_label,
    rename,
    thumbnails,
)
from analysis.playback import render_annotated
from analysis.result import ClipResult
from analysis.series import PoseSeries, Smoothing, kinematics
from analysis.video import analyse_video
from analysis.video_io import read_frames

TWO = PoseSettings(max_people=3)


@pytest.fixture(scope="module")
def pair() -> tuple[ClipResult, Path]:
    """Pose2Sim's camera 4: the man and the woman side by side, both found in all 100 frames."""
    video = multi_person_demo("cam04")
    result = analyse_video(video, TWO, name=video.name)
    assert people_found(result) == [0, 1]
    return result, video


def split(result: ClipResult, person: int, at: int, into: int) -> ClipResult:
    """The same clip as the tracker would give it if `person` had been lost at frame `at` and come back as `into`."""
    s = result.series
    landmarks, world = s.landmarks.copy(), s.world.copy()
    landmarks[at:, into], world[at:, into] = landmarks[at:, person], world[at:, person]
    landmarks[at:, person], world[at:, person] = np.nan, np.nan
    return ClipResult(PoseSeries(s.times_s, s.frame_index, landmarks, world, s.width, s.height), result.source,
                      result.settings, result.options)


def test_merging_the_two_ids_of_one_person_gives_them_back_their_whole_track(pair) -> None:
    result, _ = pair
    broken = split(result, 1, 60, 2)
    assert people_found(broken) == [0, 1, 2]
    mended = merge_people(broken, 1, 2)
    assert people_found(mended) == [0, 1]
    np.testing.assert_array_equal(mended.series.landmarks, result.series.landmarks)
    np.testing.assert_array_equal(mended.series.world, result.series.world)


def test_where_both_ids_are_found_the_one_kept_keeps_its_poses(pair) -> None:
    result, _ = pair
    merged = merge_people(result, 0, 1)
    assert people_found(merged) == [0]
    np.testing.assert_array_equal(merged.series.landmarks[:, 0], result.series.landmarks[:, 0])
    with pytest.raises(ValueError, match="cannot merge"):
        merge_people(result, 0, 0)


def test_a_person_left_out_is_in_no_export(pair) -> None:
    result, _ = pair
    alone = leave_out(result, [1])
    motion = kinematics(alone.series, Smoothing())
    angles = exports.angle_frame(alone, motion)
    assert set(angles["person"]) == {1}  # the CSVs count people from 1
    summary = json.loads(exports.summary_json(alone, motion))
    assert [p["person"] for p in summary["people"]] == [1]
    assert [f.name for f in exports.clip_files(alone, motion) if f.name.endswith(".trc")] == ["person1.trc"]


def test_the_annotated_video_of_edited_people_draws_only_those_analysed(pair, tmp_path: Path) -> None:
    result, video = pair
    private = dataclasses.replace(result, options=dataclasses.replace(result.options, privacy=True))
    annotated = tmp_path / "annotated.mp4"
    render_annotated(video, leave_out(private, [0]), annotated)  # what the Video page makes of the edited result

    frames = [rgb for _, _, rgb in read_frames(annotated)]
    assert len(frames) == result.series.frames
    # At the analysis size, which the annotated video has too; a person not found has no joint seen.
    pixels = np.round(np.nan_to_num(result.series.pixels)).astype(int)
    seen = result.series.landmarks[..., 3] > 0.8
    for frame, points, visible in zip(frames[::10], pixels[::10], seen[::10]):
        drawn = np.abs(frame.astype(int) - PRIVACY_BACKGROUND).sum(axis=-1) > 60
        # At the person's own joints: the one kept drawn at nearly all, the one left out at few (where the
        # other's bones cross theirs).
        on_joints = [drawn[y, x][visible[person]].mean()
                     for person, (x, y) in enumerate(np.clip(points, 0, [frame.shape[1] - 1, frame.shape[0] - 1])
                                                     .transpose(0, 2, 1)[:2])]
        assert on_joints[1] > 0.8 and on_joints[0] < 0.2, on_joints


def test_names_are_shown_exported_and_kept_in_a_saved_pose_series(pair) -> None:
    result, _ = pair
    named = rename(rename(result, 1, "  Ana   Silva "), 0, "<b>Bo</b>")
    assert [person_label(named, p) for p in range(3)] == ["<b>Bo</b>", "Ana Silva", "person 3"]
    summary = json.loads(exports.summary_json(named, kinematics(named.series, Smoothing())))
    assert [(p["person"], p["name"]) for p in summary["people"]] == [(1, "<b>Bo</b>"), (2, "Ana Silva")]
    reopened = ClipResult.from_npz(named.to_npz())
    assert reopened.names == named.names
    assert person_label(reopened.select(people=np.array([1])), 0) == "Ana Silva"
    assert person_label(rename(named, 1, ""), 1) == "person 2"


def test_edits_apply_merges_then_who_is_left_out_then_names(pair) -> None:
    result, _ = pair
    edited = PeopleEdits(merges=((1, 2),), left_out=(0,), names=((1, "Ana"),)).apply(split(result, 1, 30, 2))
    assert people_found(edited) == [1] and person_label(edited, 1) == "Ana"
    assert edited.series.present[:, 1].all()


def test_thumbnails_show_each_person_from_the_video_or_as_a_skeleton_in_privacy_mode(pair) -> None:
    result, video = pair
    pictures = thumbnails(result, video)
    assert sorted(pictures) == [0, 1]
    for picture in pictures.values():
        assert picture.dtype == np.uint8 and picture.shape == (THUMBNAIL_PX, THUMBNAIL_PX, 3)
    # Side by side, the two crops are of different places: they differ.
    a, b = (np.asarray(pictures[p], float).mean(axis=(0, 1)) for p in (0, 1))
    assert np.abs(a - b).max() > 3
    private, drawn = thumbnails(result, video, privacy=True), thumbnails(result, None)
    assert sorted(private) == sorted(drawn) == [0, 1]
    for person, picture in private.items():  # the skeleton on the privacy background, as without any video
        np.testing.assert_array_equal(picture, drawn[person])
        assert (picture == PRIVACY_BACKGROUND).all(axis=-1).mean() > 0.3


def test_the_video_pages_people_panel_names_leaves_out_and_merges(pair) -> None:
    _, video = pair
    app = open_page("video", timeout_s=120)
    labelled(app.slider, "Most people to find").set_value(3)
    app.run()
    app.file_uploader[0].set_value(("two people.mp4", video.read_bytes(), "video/mp4"))
    app.run()
    settle(app)
    assert not app.exception, app.exception
    assert [e.label for e in app.expander if e.label.startswith("People")] == ["People: 2 found"]
    assert len(app.get("image")) >= 2
    app.text_input(key=next(k for k in _keys(app.text_input) if k.endswith("-1"))).set_value("Ana").run()
    assert labelled(app.selectbox, "Person").options == ["person 1 (100 frames)", "Ana (100 frames)"]
    labelled(app.button, "Merge").click().run()
    assert [e.label for e in app.expander if e.label.startswith("People")] == ["People: 1 found"]
    assert not [s for s in app.selectbox if s.label == "Person"], "one person left: no person to choose"
    labelled(app.button, "Undo the merges").click().run()
    assert [e.label for e in app.expander if e.label.startswith("People")] == ["People: 2 found"]
    app.checkbox(key=next(k for k in _keys(app.checkbox) if k.endswith("-0"))).uncheck().run()
    assert not [s for s in app.selectbox if s.label == "Person"]
    assert "Joint angles" in [h.value for h in app.subheader]
    app.checkbox(key=next(k for k in _keys(app.checkbox) if k.endswith("-1"))).uncheck().run()
    assert any("Everyone is left out" in i.value for i in app.info)
    assert "Joint angles" not in [h.value for h in app.subheader]
    assert not app.exception, app.exception


def _keys(widgets) -> list[str]:  # noqa: ANN001 - AppTest's widget list
    return [w.key for w in widgets if w.key]
