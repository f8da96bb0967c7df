"""Plotly figures: the one place charts are drawn. Units on every axis, time in seconds."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from analysis.landmarks import BONES, LANDMARK_NAMES

PERSON_COLOURS = ("#e6361e", "#1f9bd1", "#f5b400", "#3cb371", "#b05cc6", "#ff7f50")


def skeleton_3d(world: np.ndarray, visibility: np.ndarray, threshold: float = 0.5) -> go.Figure:
    """A rotatable 3D skeleton from (people, 33, 3) world landmarks in metres.

    MediaPipe's world y points down and z toward the camera; the figure shows height upward and
    depth away from the viewer, so the person stands upright when the chart opens.
    """
    figure = go.Figure()
    for person, (points, seen) in enumerate(zip(world, visibility >= threshold)):
        right, up, depth = points[:, 0], -points[:, 1], -points[:, 2]
        colour = PERSON_COLOURS[person % len(PERSON_COLOURS)]
        bones = [(a, b) for a, b in BONES if seen[a] and seen[b]]
        ends = np.array(bones, np.intp).reshape(-1, 2)
        def segments(axis: np.ndarray) -> np.ndarray:
            """Bone end points with a NaN break after each bone, so one trace draws them all."""
            return np.column_stack([axis[ends[:, 0]], axis[ends[:, 1]], np.full(len(ends), np.nan)]).ravel()
        figure.add_trace(go.Scatter3d(
            x=segments(right), y=segments(depth), z=segments(up), mode="lines",
            line=dict(color=colour, width=6), name=f"person {person + 1}", hoverinfo="skip"))
        figure.add_trace(go.Scatter3d(
            x=right[seen], y=depth[seen], z=up[seen], mode="markers",
            marker=dict(size=3.5, color="#ffffff", line=dict(color=colour, width=1)),
            text=np.array(LANDMARK_NAMES)[seen], showlegend=False,
            hovertemplate="%{text}<br>x %{x:.2f} m, depth %{y:.2f} m, height %{z:.2f} m<extra></extra>"))
    figure.update_layout(
        scene=dict(xaxis_title="x (m)", yaxis_title="depth (m)", zaxis_title="height (m)", aspectmode="data",
                   camera=dict(eye=dict(x=0.0, y=-2.0, z=0.3), up=dict(x=0, y=0, z=1))),
        margin=dict(l=0, r=0, t=30, b=0), height=420, legend=dict(orientation="h"),
        title=dict(text="3D skeleton (world landmarks, metres)", font=dict(size=14)))
    return figure
