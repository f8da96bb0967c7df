"""The People panel of a clip with several people: a picture of each, their names, who is analysed, and merging two
IDs that are one person. Pages keep the user's edits per analysis and apply them (analysis.identities) before
anything is computed from the result."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from analysis.identities import PeopleEdits, people_found, person_label, thumbnails
from analysis.result import ClipResult


@st.cache_data(max_entries=16, show_spinner=False)
def _pictures(cache_key: str, _result: ClipResult, video: str | None, privacy: bool) -> dict[int, object]:
    """The people's thumbnails, made once per analysis, merges and privacy (cache_key names them)."""
    return thumbnails(_result, Path(video) if video else None, privacy)


def people_panel(result: ClipResult, video: Path | None, privacy: bool, key: str) -> PeopleEdits:
    """The panel (only where the analysis found several people) and the user's edits so far."""
    state = st.session_state.setdefault(f"people-{key}", {"merges": []})
    if len(people_found(result)) < 2:
        return PeopleEdits()
    merges = tuple(state["merges"])
    merged = PeopleEdits(merges).apply(result)
    found = people_found(merged)
    names, left_out = [], []
    with st.expander(f"People: {len(found)} found", icon=":material/groups:", expanded=True):
        st.caption("Name them, untick anyone not to analyse, and merge two IDs that are one person (someone out of "
                   "view longer than the keep-ID time comes back as someone new). Charts, tables, reps and every "
                   "download follow.")
        pictures = _pictures(f"{key}|{merges}|{privacy}", merged, str(video) if video else None, privacy)
        for person, column in zip(found, st.columns(min(len(found), 6))):
            with column:
                st.image(pictures[person], caption=f"ID {person + 1} · {int(merged.series.present[:, person].sum())} "
                                                   "frames")
                name = st.text_input("Name", key=f"people-name-{key}-{person}", placeholder=f"person {person + 1}",
                                     max_chars=40)
                if name.strip():
                    names.append((person, name))
                if not st.checkbox("Analyse", value=True, key=f"people-keep-{key}-{person}"):
                    left_out.append(person)
        named = PeopleEdits(names=tuple(names)).apply(merged)
        kept_box, merged_box, button = st.columns([2, 2, 1], vertical_alignment="bottom")
        kept = kept_box.selectbox("Keep", found, format_func=lambda p: person_label(named, p),
                                  key=f"people-kept-{key}")
        into = merged_box.selectbox("and merge into it", [p for p in found if p != kept],
                                    format_func=lambda p: person_label(named, p), key=f"people-merged-{key}")
        button.button("Merge", key=f"people-merge-{key}", icon=":material/merge:", disabled=into is None,
                      on_click=state["merges"].append, args=((kept, into),))
        if merges:
            st.button("Undo the merges", key=f"people-unmerge-{key}", on_click=state["merges"].clear)
    return PeopleEdits(merges, tuple(left_out), tuple(names))
