"""Turning an uploaded file's bytes into an RGB array, or into a sentence saying why not.

Decoding happens in memory: an upload never becomes a file, so its name never becomes a path.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_PIXELS = 50_000_000  # 50 megapixels: larger than any camera photo, small enough to analyse in memory
IMAGE_TYPES = ("jpg", "jpeg", "png", "webp", "bmp")
_FORMATS = ["JPEG", "PNG", "WEBP", "BMP"]


class ImageError(ValueError):
    """The bytes are not an image we can analyse; the message says why and what to do."""


def load_image(data: bytes) -> np.ndarray:
    """RGB uint8 (height, width, 3), upright as the camera meant it (EXIF orientation applied).

    Grayscale, palette, RGBA (composited on white) and 16-bit images are converted.
    """
    if not data:
        raise ImageError("This file is empty (0 bytes). Choose a JPEG, PNG, WebP or BMP photo.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=_FORMATS)
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise ImageError(
                    f"This image is {width:,} × {height:,} pixels ({width * height / 1e6:.0f} megapixels); the largest "
                    f"we analyse is {MAX_PIXELS / 1e6:.0f} megapixels. Resize it and upload it again.")
            image.load()
            image = ImageOps.exif_transpose(image)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"This image is too large to open safely (over {MAX_PIXELS / 1e6:.0f} megapixels). "
                         "Resize it and upload it again.") from None
    except UnidentifiedImageError:
        raise ImageError("This file is not an image we can read. Choose a JPEG, PNG, WebP or BMP photo.") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageError(f"This image could not be decoded: it may be truncated or damaged ({error}). "
                         "Try exporting it again from the camera or editor.") from None
    return _to_rgb(image)


def _to_rgb(image: Image.Image) -> np.ndarray:
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
        # 16-bit grey: keep the top 8 bits so the whole range stays visible.
        grey = np.asarray(image, np.uint32)
        grey = (grey >> 8).astype(np.uint8) if grey.max(initial=0) > 255 else grey.astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey[..., None], 3, axis=2))
    if image.mode == "F":
        grey = np.asarray(image, np.float32)
        grey = np.clip(grey * (255.0 / max(float(grey.max(initial=0)), 1.0)), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey[..., None], 3, axis=2))
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return np.ascontiguousarray(np.asarray(image.convert("RGB")))
