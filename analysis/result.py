"""The one result of analysing a clip, from a video file or the camera: what every export, chart and page reads.

A ClipResult is the pose series plus where it came from, the settings it was made with, how long it took
and what went wrong on the way. It is validated when made (PoseSeries checks its arrays), so a damaged
`.npz` is refused at the door rather than by each caller, and it saves to and loads from one `.npz` file.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from analysis.engine import PoseSettings
from analysis.series import PoseSeries, SeriesError
from analysis.video_io import VideoInfo

CAMERA = "camera"
NPZ_FORMAT = "posescope-clip/2"
# A saved clip is small (20 minutes of 6 people at 30 frames/s: about 230 MB unpacked); anything that
# unpacks to more than this is refused before it is unpacked.
MAX_NPZ_UNPACKED_BYTES = 1 << 30
NOT_A_RECORDING = ("This .npz file is not a PoseScope pose series. Choose one saved by the Webcam page or by the "
                   "Video page's “Pose series (.npz)” download.")
_ARRAYS = ("times_s", "frame_index", "landmarks", "world", "size")


class RecordingError(ValueError):
    """A saved clip that cannot be opened; the message is one sentence for the user."""


@dataclass(frozen=True)
class ClipOptions:
    """Which part of a video to analyse and how to render it.

    analysis_max_side: frames are shrunk to this before pose estimation. MediaPipe looks at the person
        through a 256-pixel crop anyway, but its own handling of a large frame costs more than the model
        (1080p: 40 frames/s, 960x540: 90 frames/s, on 2 cores); 960 halves 1080p exactly, which is
        also the fastest scaling to decode.
    preview_max_side: the annotated video's longer side, light enough to stream in a browser.
    """

    start_s: float = 0.0
    end_s: float | None = None
    stride: int = 1
    privacy: bool = False
    analysis_max_side: int = 960
    preview_max_side: int = 960


@dataclass(frozen=True)
class Source:
    """Where a clip came from. name: the user's file name (shown escaped, never used as a path) or "camera".
    video: the file's header; None for the camera."""

    name: str
    video: VideoInfo | None = None

    @property
    def is_camera(self) -> bool:
        return self.video is None


@dataclass(frozen=True)
class ClipResult:
    """One analysed clip.

    series: the poses, frame by frame (validated by PoseSeries).
    source, settings, options: what was analysed and how.
    elapsed_s: time spent on pose estimation: the whole analysis of a video, or the summed per-frame
        processing of a camera recording (so frames_per_s is how fast the analysis ran, never the capture rate).
    warnings: sentences for the user about results that are partial or approximate.
    names: what the user calls the people, by slot ("" or none: "person N"; analysis.identities).
    """

    series: PoseSeries
    source: Source
    settings: PoseSettings = field(default_factory=PoseSettings)
    options: ClipOptions = field(default_factory=ClipOptions)
    elapsed_s: float = math.nan
    warnings: tuple[str, ...] = ()
    names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.series, PoseSeries):
            raise TypeError(f"series must be a PoseSeries, got {type(self.series).__name__}")
        if not all(isinstance(warning, str) for warning in self.warnings):
            raise TypeError("warnings must be sentences (str)")
        if not all(isinstance(name, str) for name in self.names) or len(self.names) > self.series.people:
            raise TypeError("names must be at most one str per person")

    @property
    def frames_per_s(self) -> float | None:
        """Frames analysed per second of analysis time; None where it was not measured."""
        if not (self.elapsed_s > 0 and math.isfinite(self.elapsed_s)):
            return None
        return self.series.frames / self.elapsed_s

    @property
    def capture_fps(self) -> float:
        """The rate the frames were taken at: the video's own (over the stride), or the camera's median."""
        video = self.source.video
        if video is not None and video.fps:
            return video.fps / max(1, self.options.stride)
        return self.series.median_rate_hz

    def select(self, frames: slice | np.ndarray | None = None, people: slice | np.ndarray | None = None
               ) -> ClipResult:
        """The same clip restricted to some frames (in time order) and/or some people's slots (and their names)."""
        names = self.names
        if people is not None and names:
            padded = np.array([*names, *[""] * (self.series.people - len(names))], dtype=object)
            names = tuple(str(name) for name in np.atleast_1d(padded[people]))
        return replace(self, series=self.series.select(frames, people), names=names)

    # --- saving ------------------------------------------------------------------------------------------------

    def to_npz(self) -> bytes:
        """The poses and everything about them, in one compressed .npz that `from_npz` opens."""
        meta = {"format": NPZ_FORMAT, "source": self.source.name,
                "video": asdict(self.source.video) if self.source.video else None,
                "settings": asdict(self.settings), "options": asdict(self.options),
                "elapsed_s": self.elapsed_s if math.isfinite(self.elapsed_s) else None,
                "warnings": list(self.warnings), "names": list(self.names)}
        s = self.series
        buffer = io.BytesIO()
        np.savez_compressed(buffer, times_s=s.times_s, frame_index=s.frame_index, landmarks=s.landmarks,
                            world=s.world, size=np.array([s.width, s.height]), meta=np.array(json.dumps(meta)))
        return buffer.getvalue()

    @classmethod
    def from_npz(cls, data: bytes, name: str = "recording") -> ClipResult:
        """A clip saved by to_npz (or a pose series saved by an earlier PoseScope, which has no `meta`).

        Raises RecordingError with one sentence: not an .npz of ours, too large when unpacked, or arrays
        that are not a valid series (the reason PoseSeries gives). `name` names the source when the file
        does not.
        """
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                unpacked = sum(member.file_size for member in archive.infolist())
        except (zipfile.BadZipFile, OSError, EOFError, ValueError):
            raise RecordingError(NOT_A_RECORDING) from None
        if unpacked > MAX_NPZ_UNPACKED_BYTES:
            raise RecordingError(f"This .npz file would unpack to {unpacked / 1e9:.1f} GB, more than a pose series "
                                 f"can hold (at most {MAX_NPZ_UNPACKED_BYTES / 1e9:.1f} GB). Choose a pose series "
                                 "saved by PoseScope.")
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as saved:
                if not set(_ARRAYS) <= set(saved.files):
                    raise RecordingError(NOT_A_RECORDING)
                arrays = {key: saved[key] for key in _ARRAYS}
                meta = json.loads(str(saved["meta"])) if "meta" in saved.files else {}
        except RecordingError:
            raise
        except (ValueError, KeyError, OSError, EOFError, zipfile.BadZipFile, json.JSONDecodeError):
            raise RecordingError(NOT_A_RECORDING) from None
        size = arrays["size"]
        if size.shape != (2,) or not np.issubdtype(size.dtype, np.integer):
            raise RecordingError(NOT_A_RECORDING)
        try:
            series = PoseSeries(arrays["times_s"], arrays["frame_index"], arrays["landmarks"], arrays["world"],
                                int(size[0]), int(size[1]))
            return cls._with_meta(series, meta, name)
        except SeriesError as error:
            raise RecordingError(f"This pose series cannot be opened: {error}") from None
        except (TypeError, ValueError, KeyError):
            raise RecordingError(NOT_A_RECORDING) from None

    @classmethod
    def _with_meta(cls, series: PoseSeries, meta: dict[str, Any], name: str) -> ClipResult:
        if not meta:
            return cls(series, Source(name))
        video = VideoInfo(**meta["video"]) if meta.get("video") else None
        elapsed = meta.get("elapsed_s")
        return cls(series, Source(str(meta.get("source") or name), video), PoseSettings(**meta["settings"]),
                   ClipOptions(**meta["options"]), math.nan if elapsed is None else float(elapsed),
                   tuple(str(w) for w in meta.get("warnings", ())), tuple(str(n) for n in meta.get("names", ())))
