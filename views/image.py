"""Image page: photos in, skeleton, landmark and angle tables, 3D view and downloads out."""

from __future__ import annotations

import streamlit as st

from analysis.engine import PoseSettings
from analysis.figures import skeleton_3d
from analysis.images import IMAGE_TYPES, ImageError, load_image
from analysis.models import ModelError
from analysis.photo import PhotoAnalysis, analyse_photo
from views.shared import NO_PERSON_HINTS, download_stem, image_engine, pose_settings_sidebar, show_model_error

MAX_IMAGE_MB = 50


@st.cache_data(max_entries=64, show_spinner="Finding the pose…")
def analyse(data: bytes, settings: PoseSettings, privacy: bool) -> PhotoAnalysis:
    rgb = load_image(data)
    with image_engine(settings) as engine:
        return analyse_photo(engine, rgb, privacy)


def show_result(name: str, result: PhotoAnalysis, settings: PoseSettings) -> None:
    pose = result.pose
    picture, view3d = st.columns([3, 2])
    picture.image(result.annotated, caption=f"{name}: {pose.width} × {pose.height} px, "
                                            f"{pose.people} {'person' if pose.people == 1 else 'people'}")
    if pose.people == 0:
        picture.info(NO_PERSON_HINTS, icon=":material/person_search:")
        return
    view3d.plotly_chart(skeleton_3d(pose.world, pose.visibility), key=f"3d-{name}")

    stem = download_stem(name)
    downloads = picture.columns(3)
    # Callables: the PNG, CSV and JSON are made when a button is clicked, not on every rerun.
    downloads[0].download_button("Annotated PNG", result.png, f"{stem}_annotated.png", "image/png",
                                 key=f"png-{name}", on_click="ignore")
    downloads[1].download_button("Landmarks CSV", lambda: result.landmarks().to_csv(index=False),
                                 f"{stem}_landmarks.csv", "text/csv", key=f"csv-{name}", on_click="ignore")
    downloads[2].download_button("Everything (JSON)", lambda: result.to_json(settings, name), f"{stem}_pose.json",
                                 "application/json", key=f"json-{name}", on_click="ignore")

    person = 0
    if pose.people > 1:
        person = st.radio("Person", range(pose.people), format_func=lambda p: f"person {p + 1}", horizontal=True,
                          key=f"person-{name}")
    slug = download_stem(name).lower().replace(".", "-")
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


st.title("Image")
settings, privacy = pose_settings_sidebar()
uploads = st.file_uploader(f"Photos (JPEG, PNG, WebP, BMP; up to {MAX_IMAGE_MB} MB each)", type=list(IMAGE_TYPES),
                           accept_multiple_files=True, max_upload_size=MAX_IMAGE_MB)
if not uploads:
    st.caption("Drop one or more photos of a person: the skeleton, 33 landmarks, joint angles and a 3D view "
               "appear in a second or two. Everything is computed on this machine.")

for upload in uploads or []:
    with st.container(border=True):
        try:
            show_result(upload.name, analyse(upload.getvalue(), settings, privacy), settings)
        except ImageError as error:
            st.error(f"**{upload.name}**: {error}", icon=":material/image:")
        except ModelError as error:
            show_model_error(error)
