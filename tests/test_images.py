"""Decoding uploads: every odd or bad file gets a sentence, good ones come out upright RGB."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from analysis.images import ImageError, load_image


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP"])
def test_each_format_decodes_to_rgb(fmt: str) -> None:
    rgb = load_image(encode(Image.new("RGB", (64, 48), (200, 40, 10)), fmt))
    assert rgb.shape == (48, 64, 3) and rgb.dtype == np.uint8
    np.testing.assert_allclose(rgb[24, 32], (200, 40, 10), atol=12)


def test_exif_orientation_turns_a_sideways_photo_upright(media: Path) -> None:
    photo = Image.open(media / "bus.jpg")
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: rotate 90° clockwise to view
    rgb = load_image(encode(photo.rotate(90, expand=True), "JPEG", exif=exif, quality=95))
    assert rgb.shape == (1080, 810, 3)
    original = np.asarray(photo, np.float32)
    assert np.abs(rgb.astype(np.float32) - original).mean() < 8


def test_grayscale_rgba_palette_and_16_bit_images_become_rgb() -> None:
    grey = load_image(encode(Image.new("L", (10, 8), 77), "PNG"))
    assert grey.shape == (8, 10, 3) and (grey == 77).all()
    transparent = load_image(encode(Image.new("RGBA", (10, 8), (255, 0, 0, 0)), "PNG"))
    assert (transparent == 255).all()  # composited onto white, not a stray colour
    palette = load_image(encode(Image.new("RGB", (10, 8), (0, 0, 255)).convert("P"), "PNG"))
    assert tuple(palette[0, 0]) == (0, 0, 255)
    deep = np.full((8, 10), 40000, np.uint16)
    rgb = load_image(encode(Image.fromarray(deep), "PNG"))
    assert rgb.shape == (8, 10, 3) and (rgb == 40000 >> 8).all()


@pytest.mark.parametrize(("data", "words"), [
    (b"", "empty"),
    (b"name,age\nAda,36\n" * 20, "not an image"),
    (b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "not an image"),
])
def test_files_that_are_not_images(data: bytes, words: str) -> None:
    with pytest.raises(ImageError, match=words):
        load_image(data)


def test_truncated_photo(media: Path) -> None:
    data = (media / "bus.jpg").read_bytes()
    with pytest.raises(ImageError, match="truncated or damaged"):
        load_image(data[: len(data) // 3])


def test_huge_and_decompression_bomb_images_are_refused_before_decoding() -> None:
    bomb = encode(Image.new("1", (20000, 20000)), "PNG")  # 400 megapixels in a few kilobytes
    assert len(bomb) < 100_000
    with pytest.raises(ImageError, match="Resize it"):
        load_image(bomb)
    large = encode(Image.new("L", (9000, 6000)), "PNG")  # 54 MP: under Pillow's own guard, over ours
    with pytest.raises(ImageError, match="9,000 × 6,000 pixels"):
        load_image(large)
