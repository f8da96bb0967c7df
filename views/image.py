"""Image page: photos in, skeleton, landmark and angle tables, 3D view and downloads out."""

from __future__ import annotations

from pathlib import PurePath

import numpy as np
import streamlit as st

from analysis.cache import BoundedCache
from analysis.engine import FramePose, PoseSettings
from analysis.figures import skeleton_3d
from analysis.images import IMAGE_TYPES, ImageError, load_image
from analysis.models import ModelError
from analysis.photo import PhotoAnalysis, analyse_photo
from analysis.templates import OffJointAnnotator, PoseTemplate, TemplateError, furthest_joints, score
from analysis.uploads import content_digest, safe_stems
from views.shared import NO_PERSON_HINTS, escape_markdown, image_engine, pose_settings_sidebar, show_model_error

MAX_IMAGE_MB = 50
MAX_TEMPLATE_MB = 1  # the smallest limit Streamlit takes; PoseTemplate.from_json refuses anything over 64 KB


@st.cache_resource
def photo_results() -> BoundedCache[PhotoAnalysis]:
    """Analysed photos of every session, by content and settings: at most 32, and 512 MB (a 50 MP photo's
    annotated copy alone is 150 MB)."""
    return BoundedCache(max_entries=32, max_bytes=512 << 20)


def analyse(data: memoryview, settings: PoseSettings, privacy: bool) -> PhotoAnalysis:
    def make() -> PhotoAnalysis:
        rgb = load_image(bytes(data))
        with image_engine(settings) as engine:
            return analyse_photo(engine, rgb, privacy)
    with st.spinner("Finding the pose…"):
        return photo_results().get_or_make((content_digest(data), settings, privacy), make)


def show_result(name: str, stem: str, result: PhotoAnalysis, settings: PoseSettings) -> None:
    """One photo's result; `stem` is unique among the photos shown, so it keys the widgets and names the files."""
    pose = result.pose
    picture, view3d = st.columns([3, 2])
    shown = picture.empty()  # filled last: a template's furthest-off joints are ringed on it
    caption = (f"{escape_markdown(name)}: {pose.width} × {pose.height} px, "
               f"{pose.people} {'person' if pose.people == 1 else 'people'}")
    if pose.people == 0:
        shown.image(result.annotated, caption=caption)
        picture.info(NO_PERSON_HINTS, icon=":material/person_search:")
        return
    view3d.plotly_chart(skeleton_3d(pose.world, pose.visibility), key=f"3d-{stem}")

    downloads = picture.columns(3)
    # Callables: the PNG, CSV and JSON are made when a button is clicked, not on every rerun.
    downloads[0].download_button("Annotated PNG", result.png, f"{stem}_annotated.png", "image/png",
                                 key=f"png-{stem}", on_click="ignore")
    downloads[1].download_button("Landmarks CSV", lambda: result.landmarks().to_csv(index=False),
                                 f"{stem}_landmarks.csv", "text/csv", key=f"csv-{stem}", on_click="ignore")
    downloads[2].download_button("Everything (JSON)", lambda: result.to_json(settings, name), f"{stem}_pose.json",
                                 "application/json", key=f"json-{stem}", on_click="ignore")

    person = 0
    if pose.people > 1:
        person = st.radio("Person", range(pose.people), format_func=lambda p: f"person {p + 1}", horizontal=True,
                          key=f"person-{stem}")
    off = show_template(name, stem, pose, person)
    shown.image(OffJointAnnotator().annotate(result.annotated.copy(), pose, person, off) if off else result.annotated,
                caption=caption)

    slug = stem.lower().replace(".", "-")
    angles = st.container(key=f"angles-{slug}")
    angles.subheader("Angles", help="Joint angles: at the middle landmark. Segment angles: against the horizontal. "
                 "2D from the picture, 3D from world landmarks. None where a landmark is hidden.")
    angles.dataframe(result.angles(person), hide_index=True,
                 column_config={"2D (°)": st.column_config.NumberColumn(format="%.1f"),
                                "3D (°)": st.column_config.NumberColumn(format="%.1f"),
                                "what the numbers mean": st.column_config.TextColumn(width="large")})
    landmarks = st.container(key=f"landmarks-{slug}")
    landmarks.subheader("Landmarks", help="x, y: fraction of the image width and height; z: depth relative to the "
                 "hips; x_px, y_px: pixels; world x, y, z: metres from the point between the hips (y points down).")
    table = result.landmarks()
    landmarks.dataframe(table[table.person == person + 1].drop(columns="person"), hide_index=True, height=420,
                 column_config={c: st.column_config.NumberColumn(format="%.3f")
                                for c in ("x", "y", "z", "visibility", "presence", "world_x", "world_y", "world_z")}
                 | {c: st.column_config.NumberColumn(format="%.0f") for c in ("x_px", "y_px")})


def show_template(name: str, stem: str, pose: FramePose, person: int) -> list[str]:
    """This person's pose to save as a template, and a template to score it against; returns the joints
    furthest off, to ring on the picture."""
    st.subheader("Pose template", help="Save this pose as a reference (a yoga pose, a rehab position), or score "
                 "it against one saved before: 100 % is the same pose, whatever its place and size in the picture or "
                 "a small tilt of the camera.")
    save, compare = st.columns(2)
    pixels, visibility = pose.pixels[person], pose.visibility[person]
    try:
        own = PoseTemplate.from_pose(pixels, visibility, PurePath(name).stem.strip() or stem, source=name)
        save.download_button("Pose template (JSON)", own.to_json, f"{stem}_template.json", "application/json",
                             key=f"template-json-{stem}", on_click="ignore")
        save.caption("This person's pose as a small file, to compare other photos, videos or the webcam with.")
    except TemplateError as error:
        save.info(f"This pose cannot be a template: {error}", icon=":material/accessibility_new:")
    upload = compare.file_uploader("Compare with a template (JSON)", type="json", max_upload_size=MAX_TEMPLATE_MB,
                                   key=f"template-file-{stem}")
    mirror = compare.toggle("Either side", key=f"template-mirror-{stem}",
                            help="Also compare with the mirror image (left and right swapped), and keep the better: "
                                 "for a pose done on the other side.")
    if upload is None:
        return []
    try:
        template = PoseTemplate.from_json(upload.getvalue())
    except TemplateError as error:
        compare.error(f"**{escape_markdown(upload.name)}**: {error}", icon=":material/rule:")
        return []
    similarity = score(template, pixels, visibility, mirror)
    if np.isnan(similarity.score):
        compare.warning(f"Too few of the joints of **{escape_markdown(template.name)}** are visible in this photo "
                        "to compare the two.", icon=":material/visibility_off:")
        return []
    off = furthest_joints(similarity.joint_error)
    compare.metric("Match", f"{similarity.score:.0f} % like {escape_markdown(template.name)}")
    joints = ", ".join(joint.replace("_", " ") for joint in off)
    side = " Matched on the other side." if similarity.mirrored else ""
    compare.caption(f"Furthest off (ringed on the picture): {joints}.{side}" if off else f"No joint is far off.{side}")
    return off


st.title("Image")
settings, privacy = pose_settings_sidebar()
uploads = st.file_uploader(f"Photos (JPEG, PNG, WebP, BMP; up to {MAX_IMAGE_MB} MB each)", type=list(IMAGE_TYPES),
                           accept_multiple_files=True, max_upload_size=MAX_IMAGE_MB)
if not uploads:
    st.caption("Drop one or more photos of a person: the skeleton, 33 landmarks, joint angles and a 3D view "
               "appear in a second or two. Everything is computed on this machine.")

uploads = uploads or []
for upload, stem in zip(uploads, safe_stems([upload.name for upload in uploads]), strict=False):
    with st.container(border=True):
        try:
            show_result(upload.name, stem, analyse(upload.getbuffer(), settings, privacy), settings)
        except ImageError as error:
            st.error(f"**{escape_markdown(upload.name)}**: {error}", icon=":material/image:")
        except ModelError as error:
            show_model_error(error)
