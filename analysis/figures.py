"""Plotly figures: the one place charts are drawn. Units on every axis, time in seconds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from analysis.landmarks import BONES, LANDMARK_NAMES

if TYPE_CHECKING:
    from analysis.compare import Comparison
    from analysis.events import Event
    from analysis.exercises import Exercise
    from analysis.reps import Rep

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
        ends = np.array([(a, b) for a, b in BONES if seen[a] and seen[b]], np.intp).reshape(-1, 2)
        figure.add_trace(go.Scatter3d(
            x=_segments(right, ends), y=_segments(depth, ends), z=_segments(up, ends), mode="lines",
            line=dict(color=colour, width=6), name=f"person {person + 1}", hoverinfo="skip"))
        figure.add_trace(go.Scatter3d(
            x=right[seen], y=depth[seen], z=up[seen], mode="markers",
            marker=dict(size=3.5, color="#ffffff", line=dict(color=colour, width=1)),
            text=np.array(LANDMARK_NAMES)[seen], showlegend=False,
            hovertemplate="%{text}<br>x %{x:.2f} m, depth %{y:.2f} m, height %{z:.2f} m<extra></extra>"))
    figure.update_layout(
        scene=dict(xaxis_title="x (m)", yaxis_title="depth (m)", zaxis_title="height (m)", aspectmode="data",
                   camera=dict(eye=dict(x=0.9, y=-2.4, z=0.4), up=dict(x=0, y=0, z=1))),
        margin=dict(l=0, r=0, t=30, b=0), height=520, legend=dict(orientation="h"),
        title=dict(text="3D skeleton (world landmarks, metres)", font=dict(size=14)))
    return figure


def _segments(axis: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """One coordinate of the bones' end points with a NaN break after each bone, so one trace draws them all."""
    return np.column_stack([axis[ends[:, 0]], axis[ends[:, 1]], np.full(len(ends), np.nan)]).ravel()


# --- curves over time: the Video page (and anything else with a clip) ---------------------------------------------

# One colour per curve, in legend order: distinct from each other on the dark theme, and none of them the red
# of the marker line.
CURVE_COLOURS = ("#4ea8de", "#f5b400", "#3cb371", "#c084fc", "#ff8c42", "#f472b6", "#2dd4bf", "#a3e635",
                 "#94a3b8", "#fde68a")
MARKER_COLOUR = "#e6361e"
TIME_TITLE = "Time (s)"


# Invisible markers on the curves: Plotly selects (and Streamlit reports) a clicked point only on a trace with
# markers. None is drawn (maxdisplayed), so a long clip's chart stays light, and a selection dims nothing.
_CLICKABLE = {"marker": dict(size=8, opacity=0, maxdisplayed=1), "selected": dict(marker=dict(opacity=0)),
              "unselected": dict(marker=dict(opacity=0))}


def time_series(times_s: np.ndarray, values: np.ndarray, names: Sequence[str], y_title: str, *,
                raw: np.ndarray | None = None, marker_s: float | None = None, title: str | None = None,
                height: int = 330) -> go.Figure:
    """Curves over time, one per name, e.g. joint angles in degrees or speeds in px/s.

    times_s: (frames,) seconds, each frame's own time (variable frame rates stay true). values: (frames, n),
    drawn as bold lines; raw: (frames, n), the same quantities before smoothing, drawn beneath as thin faint
    lines in the same colour. NaN breaks a line. y_title names the quantity and its unit, e.g. "Angle (°)".
    marker_s: a vertical line at that time, the frame the page shows.
    """
    unit = y_title[y_title.rfind("(") + 1:y_title.rfind(")")] if "(" in y_title else ""
    figure = go.Figure()
    for i, name in enumerate(names):
        colour = CURVE_COLOURS[i % len(CURVE_COLOURS)]
        if raw is not None:
            figure.add_trace(go.Scatter(
                x=times_s, y=raw[:, i], mode="lines", name=f"{name} (raw)", legendgroup=name, showlegend=False,
                line=dict(color=colour, width=1), opacity=0.45, hoverinfo="skip"))
        figure.add_trace(go.Scatter(
            x=times_s, y=values[:, i], mode="lines+markers", name=name, legendgroup=name,
            line=dict(color=colour, width=2.5), **_CLICKABLE,
            hovertemplate=f"%{{y:.1f}} {unit}<extra>{name}</extra>" if unit else f"%{{y:.1f}}<extra>{name}</extra>"))
    figure.update_layout(
        height=height, margin=dict(l=10, r=10, t=40 if title else 10, b=10), hovermode="x unified",
        legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="left", x=0),
        title=dict(text=title, font=dict(size=14)) if title else None,
        xaxis=dict(title=TIME_TITLE, hoverformat=".2f"), yaxis=dict(title=y_title))
    if marker_s is not None:
        _mark_time(figure, marker_s)
    return figure


@dataclass(frozen=True)
class Quality:
    """How trustworthy each frame's data is, for one person: each row (frames,) a fraction in [0, 1].

    no_person: 1 where the person was not found. low_visibility: the share of the 33 landmarks the model
    thinks hidden (below the visibility threshold), where the person was found. interpolated: the share
    of landmarks filled in by gap interpolation.
    """

    no_person: np.ndarray
    low_visibility: np.ndarray
    interpolated: np.ndarray

    @classmethod
    def of(cls, present: np.ndarray, visibility: np.ndarray, interpolated: np.ndarray,
           threshold: float) -> Quality:
        """present: (frames,) bool; visibility: (frames, 33); interpolated: (frames, 33) bool."""
        hidden = np.where(present[:, None], ~(visibility >= threshold), False)
        return cls((~present).astype(np.float64), hidden.mean(axis=-1), interpolated.mean(axis=-1, dtype=np.float64))

    def rows(self) -> dict[str, np.ndarray]:
        return {"No person": self.no_person, "Low visibility": self.low_visibility,
                "Interpolated": self.interpolated}

    def frames_affected(self) -> dict[str, int]:
        return {name: int((row > 0).sum()) for name, row in self.rows().items()}


_QUALITY_COLOURS = {"No person": "#e6361e", "Low visibility": "#f5b400", "Interpolated": "#1f9bd1"}
_QUALITY_HOVER = {"No person": "person not found",
                  "Low visibility": "%{z:.0%} of landmarks below the visibility threshold",
                  "Interpolated": "%{z:.0%} of landmarks interpolated"}


def quality_strip(times_s: np.ndarray, quality: Quality, marker_s: float | None = None) -> go.Figure:
    """A compact heat strip over time, one row per check: the darker the cell, the less to trust that frame."""
    figure = go.Figure()
    rows = quality.rows()
    for position, (name, row) in enumerate(rows.items()):
        shown = np.where(row > 0, row, np.nan)  # clean frames stay transparent
        figure.add_trace(go.Heatmap(
            x=times_s, y=[position], z=[shown], zmin=0, zmax=1, showscale=False, name=name, xgap=0, ygap=3,
            colorscale=[[0.0, _faded(_QUALITY_COLOURS[name])], [1.0, _QUALITY_COLOURS[name]]],
            hovertemplate=f"%{{x:.2f}} s: {_QUALITY_HOVER[name]}<extra>{name}</extra>"))
    if not any((row > 0).any() for row in rows.values()):
        figure.add_annotation(text="every frame clean", xref="paper", yref="paper", x=0.5, y=0.5,
                              showarrow=False, font=dict(color="#8b93a7"))
    start, end = (float(times_s[0]), float(times_s[-1])) if len(times_s) else (0.0, 1.0)
    pad = (end - start) / max(1, 2 * (len(times_s) - 1)) if end > start else 0.5
    figure.update_layout(
        height=150, margin=dict(l=10, r=10, t=10, b=10), showlegend=False,
        xaxis=dict(title=TIME_TITLE, range=[start - pad, end + pad], showgrid=False, zeroline=False),
        # Rows at fixed positions with their names as tick labels, so that they keep their labels even when no
        # frame has a problem. (A category axis with a categoryarray makes Plotly.js fail to draw heatmaps.)
        yaxis=dict(tickvals=list(range(len(rows))), ticktext=list(rows), range=[len(rows) - 0.5, -0.5],
                   showgrid=False, zeroline=False, fixedrange=True),
        plot_bgcolor="rgba(120, 130, 150, 0.12)")
    if marker_s is not None:
        _mark_time(figure, marker_s)
    return figure


def _mark_time(figure: go.Figure, time_s: float) -> None:
    """A vertical line across the whole plot at time_s, named so that tests and readers can find it."""
    figure.add_shape(type="line", name="scrubbed time", xref="x", yref="paper", x0=time_s, x1=time_s, y0=0, y1=1,
                     line=dict(color=MARKER_COLOUR, width=1.5, dash="dot"), layer="above")


def _faded(hex_colour: str, alpha: float = 0.25) -> str:
    red, green, blue = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red}, {green}, {blue}, {alpha})"


_SEVERITY_COLOURS = {"": "#3cb371", "info": "#4ea8de", "warning": "#f5b400", "error": "#e6361e"}


def mark_reps(figure: go.Figure, reps: Sequence[Rep], partials: Sequence[Rep] = (), events: Sequence[Event] = (),
              cues: bool = False) -> go.Figure:
    """Shade each rep on a chart over time (green when clean, amber or red by its worst cue) and number it at the
    top, with its cues when asked; partial reps grey; events as dotted lines at their start, falls in red. In place."""
    for rep in reps:
        colour = _SEVERITY_COLOURS[rep.severity]
        said = ", ".join(c.text for c in rep.cues) if cues else ""
        figure.add_vrect(x0=rep.start_s, x1=rep.end_s, fillcolor=_faded(colour, 0.22), line_width=0, layer="below",
                         name=f"rep {rep.number}", annotation_text=f"{rep.number}" + (f" {said}" if said else ""),
                         annotation_position="top left", annotation_font=dict(size=12, color=colour))
    for rep in partials:
        figure.add_vrect(x0=rep.start_s, x1=rep.end_s, fillcolor="rgba(139, 147, 167, 0.18)", line_width=0,
                         layer="below", name="partial rep", annotation_text="partial",
                         annotation_position="top left", annotation_font=dict(size=11, color="#8b93a7"))
    for event in events:
        colour = "#e6361e" if event.kind == "fall" else "#8b93a7"
        figure.add_shape(type="line", name=event.kind, xref="x", yref="paper", x0=event.start_s, x1=event.start_s,
                         y0=0, y1=1, line=dict(color=colour, width=2 if event.kind == "fall" else 1, dash="dot"))
        if event.kind == "fall":
            figure.add_annotation(x=event.start_s, y=1, xref="x", yref="paper", text="<b>fall</b>", showarrow=False,
                                  xanchor="left", yanchor="top", font=dict(color=colour, size=12))
    return figure


def exercise_chart(times_s: np.ndarray, signal: np.ndarray, exercise: Exercise, reps: Sequence[Rep],
                   partials: Sequence[Rep] = (), marker_s: float | None = None) -> go.Figure:
    """The exercise's own signal over time with its thresholds (rest, work, target) as lines, each rep shaded
    and numbered with its cues: the picture of what was counted and why."""
    figure = time_series(times_s, signal[:, None], [exercise.title.lower() + " signal"], "Signal (°)",
                         marker_s=marker_s, height=300)
    for level, name, colour in ((exercise.rest, "rest", "#8b93a7"), (exercise.work, "counts past", "#4ea8de"),
                                (exercise.target, "target", "#e6361e")):
        if level is not None:
            figure.add_hline(y=level, line=dict(color=colour, dash="dot", width=1), name=name,
                             annotation_text=f"{name} {level:.0f}°", annotation_position="right",
                             annotation_font=dict(size=10, color=colour))
    figure.update_layout(margin=dict(l=10, r=90, t=30, b=10), showlegend=False)
    return mark_reps(figure, reps, partials, cues=True)


def rep_chart(reps: Sequence[Rep], target_deg: float | None = None) -> go.Figure:
    """Per rep: the range of motion (bars, °; the extreme reached as a dot against the target depth) above, and
    the tempo below (the eccentric and concentric phases stacked, s)."""
    numbers = [r.number for r in reps]
    figure = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.12,
                           subplot_titles=("Range of motion", "Tempo"))
    figure.add_trace(go.Bar(x=numbers, y=[r.rom_deg for r in reps], name="range of motion",
                            marker_color=[_SEVERITY_COLOURS[r.severity] for r in reps],
                            hovertemplate="rep %{x}: %{y:.0f}°<extra>range of motion</extra>"), row=1, col=1)
    figure.add_trace(go.Scatter(x=numbers, y=[r.extreme_deg for r in reps], mode="markers+lines", name="extreme reached",
                                line=dict(color="#c084fc", width=1.5), marker=dict(size=9, color="#c084fc"),
                                hovertemplate="rep %{x}: %{y:.0f}°<extra>extreme reached</extra>"), row=1, col=1)
    if target_deg is not None:
        figure.add_hline(y=target_deg, line=dict(color="#e6361e", dash="dot", width=1), row=1, col=1,
                         annotation_text=f"target {target_deg:.0f}°", annotation_position="bottom left",
                         annotation_font=dict(size=10, color="#e6361e"))
    figure.add_trace(go.Bar(x=numbers, y=[r.eccentric_s for r in reps], name="eccentric", marker_color="#1f9bd1",
                            hovertemplate="rep %{x}: %{y:.2f} s<extra>eccentric</extra>"), row=2, col=1)
    figure.add_trace(go.Bar(x=numbers, y=[r.concentric_s for r in reps], name="concentric", marker_color="#f5b400",
                            hovertemplate="rep %{x}: %{y:.2f} s<extra>concentric</extra>"), row=2, col=1)
    figure.update_layout(barmode="stack", height=420, margin=dict(l=10, r=10, t=70, b=10),
                         legend=dict(orientation="h", yanchor="bottom", y=1.1, xanchor="left", x=0, traceorder="normal"))
    figure.update_yaxes(title_text="Range, depth (°)", row=1, col=1)
    figure.update_yaxes(title_text="Duration (s)", row=2, col=1)
    figure.update_xaxes(title_text="Rep", dtick=1, row=2, col=1)
    return figure


def similarity_curve(times_s: np.ndarray, scores: np.ndarray, name: str, marker_s: float | None = None) -> go.Figure:
    """A pose template's match over time, 0–100 %."""
    figure = time_series(times_s, scores[:, None], [f"match with {name}"], "Match (%)", marker_s=marker_s, height=240)
    figure.update_yaxes(range=[0, 100])
    return figure


# --- two performances compared ------------------------------------------------------------------------------------

REFERENCE_DASH, ATHLETE_DASH = "solid", "dash"
COMPARED_COLOURS = ("#4ea8de", "#f5b400")  # the reference's skeleton, the athlete's


def aligned_curves(comparison: Comparison, marker_s: float | None = None) -> go.Figure:
    """Both performances' angles along the warping path, over the reference's time: per joint the reference solid
    and the athlete dashed, in the joint's colour; hovering shows the athlete's own time too."""
    figure = go.Figure()
    times = comparison.reference_times_s
    for j, joint in enumerate(comparison.joints):
        colour = CURVE_COLOURS[j % len(CURVE_COLOURS)]
        for who, angles, dash in (("reference", comparison.reference_angles, REFERENCE_DASH),
                                  ("athlete", comparison.athlete_angles, ATHLETE_DASH)):
            first = who == "reference"  # one legend entry per joint: the dash tells who
            figure.add_trace(go.Scatter(
                x=times, y=angles[:, j], mode="lines+markers", name=joint if first else f"{joint}, athlete",
                legendgroup=joint, showlegend=first,
                line=dict(color=colour, width=2.5 if first else 2, dash=dash), **_CLICKABLE,
                customdata=comparison.athlete_times_s,
                hovertemplate=f"%{{y:.1f}} °<extra>{joint}, {who} (athlete at %{{customdata:.2f}} s)</extra>"))
    figure.update_layout(
        height=380, margin=dict(l=10, r=10, t=10, b=10), hovermode="x unified",
        legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="left", x=0),
        xaxis=dict(title="Time in the reference (s)", hoverformat=".2f"), yaxis=dict(title="Angle (°)"))
    if marker_s is not None:
        _mark_time(figure, marker_s)
    return figure


def overlaid_skeletons(poses: Sequence[tuple[str, np.ndarray]], height: int = 420) -> go.Figure:
    """Skeletons drawn over each other, one colour each: (name, (33, 2) pose normalised to one torso length, y up)."""
    figure = go.Figure()
    for i, (name, pose) in enumerate(poses):
        colour = COMPARED_COLOURS[i % len(COMPARED_COLOURS)]
        ends = np.array(BONES, np.intp)
        figure.add_trace(go.Scatter(x=_segments(pose[:, 0], ends), y=_segments(pose[:, 1], ends), mode="lines",
                                    name=name, line=dict(color=colour, width=4), hoverinfo="skip"))
        figure.add_trace(go.Scatter(x=pose[:, 0], y=pose[:, 1], mode="markers", showlegend=False, legendgroup=name,
                                    marker=dict(size=6, color=colour), text=list(LANDMARK_NAMES),
                                    hovertemplate=f"{name}: %{{text}}<extra></extra>"))
    figure.update_layout(
        height=height, margin=dict(l=10, r=10, t=10, b=10),
        legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="left", x=0),
        xaxis=dict(title="Across (torso lengths)", zeroline=False),
        yaxis=dict(title="Up (torso lengths)", scaleanchor="x", zeroline=False))
    return figure
