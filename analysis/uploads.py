"""Uploaded files: staged once on disk for decoding, and identified by a hash of their whole content.

PyAV reads paths, so a video upload is written to a private temporary folder, once, and hashed in the
same pass: the hash names the content (two different files never share a result; the same file uploaded
again finds its earlier one), and the staged file is what both the header probe and the analysis read.
The file is named by us (upload.<known extension>), never by the user's file name.
"""

from __future__ import annotations

import errno
import hashlib
import re
import shutil
import tempfile
import weakref
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePath

CHUNK_BYTES = 8 << 20
_NO_SPACE = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}


MAX_STEM = 60


def safe_name(text: str, fallback: str) -> str:
    """text with only [A-Za-z0-9._-] (other runs become _), no leading or trailing dots, at most MAX_STEM long."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._")[:MAX_STEM] or fallback


def safe_stems(names: Sequence[str], fallback: str = "upload") -> list[str]:
    """A file-name stem for each user-given name, with only [A-Za-z0-9._-], unique ignoring case (-2, -3, …).

    Why: a user's file name is never a path (nor part of one) as it is, and two inputs whose names are
    the same (two phones' IMG_0001.jpg) or become the same (`a b.jpg`, `a_b.jpg`) still get their own
    folders and downloads, also on case-insensitive file systems.
    """
    taken: set[str] = set()
    stems = []
    for name in names:
        base = safe_name(PurePath(name).stem, fallback)
        stem, n = base, 1
        while stem.lower() in taken:
            n += 1
            stem = f"{base}-{n}"
        taken.add(stem.lower())
        stems.append(stem)
    return stems


class UploadError(ValueError):
    """An upload that could not be staged; the message is one sentence for the user."""


def content_digest(data: memoryview | bytes) -> str:
    """A hash of every byte (BLAKE2b, 128 bits), read in chunks so no copy of the data is made."""
    digest = hashlib.blake2b(digest_size=16)
    view = memoryview(data)
    for start in range(0, len(view), CHUNK_BYTES):
        digest.update(view[start:start + CHUNK_BYTES])
    return digest.hexdigest()


def known_suffix(name: str, known: Iterable[str], default: str) -> str:
    """The file name's extension if it is one of `known`, else `default`: the staged file's extension."""
    suffix = PurePath(name).suffix.lower().lstrip(".")
    return suffix if suffix in set(known) else default


class StagedFile:
    """An upload's one copy on disk, in a private temporary folder removed by `close` (or when garbage collected).

    path: the file. digest: the hash of its content (content_digest). size: its length in bytes.
    """

    def __init__(self, data: memoryview | bytes, suffix: str, root: str | None = None) -> None:
        self.size = len(data)
        folder = Path(tempfile.mkdtemp(prefix="posescope-", dir=root))
        self._remove = weakref.finalize(self, shutil.rmtree, folder, ignore_errors=True)
        self.path = folder / f"upload.{suffix}"
        try:
            self.digest = _write_hashing(memoryview(data), self.path)
        except OSError as error:
            self.close()
            if error.errno in _NO_SPACE:
                raise UploadError(
                    f"There is not enough free disk space in the temporary folder ({folder.parent}) to hold this "
                    f"{self.size / 1e6:,.0f} MB file. Free some space there (or set TMPDIR to a larger disk) and "
                    "upload it again.") from None
            raise UploadError(f"The upload could not be stored for decoding ({error.strerror or error}).") from None

    @property
    def closed(self) -> bool:
        return not self._remove.alive

    def close(self) -> None:
        """Remove the staged file and its folder; safe to call again."""
        self._remove()


def _write_hashing(view: memoryview, path: Path) -> str:
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "xb") as file:
        for start in range(0, len(view), CHUNK_BYTES):
            chunk = view[start:start + CHUNK_BYTES]
            digest.update(chunk)
            file.write(chunk)
    return digest.hexdigest()
