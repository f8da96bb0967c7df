"""Rebuild models/pose_landmarker_{lite,full,heavy}.task from registry packages, reproducibly.

MediaPipe's hosted .task bundles are out of reach offline, but the same weights ship in registry
packages: the person detector in the PyPI wheel mediapipe==0.10.21, the three landmark models in
the npm package @mediapipe/pose. The raw .tflite files lack the image-normalisation metadata the
Tasks API needs, so this script writes that metadata (with the flatbuffer schemas mediapipe itself
ships), and packs each pair into a .task bundle: a zip of stored, 4-byte-aligned entries with fixed
timestamps, so the same inputs always give the same bytes (checked against models/SHA256SUMS).

    python models/build_models.py            # download sources, build, verify
    python models/build_models.py --check    # only verify the bundles present
    python models/build_models.py --out DIR  # build elsewhere, e.g. to prove the build reproducible
"""

from __future__ import annotations

import argparse
import hashlib
import io
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parent
CHECKSUMS_FILE = MODELS_DIR / "SHA256SUMS"
COMPLEXITIES = ("lite", "full", "heavy")

DETECTOR_WHEEL = "mediapipe==0.10.21"
DETECTOR_MEMBER = "mediapipe/modules/pose_detection/pose_detection.tflite"
LANDMARK_NPM_PACKAGE = "@mediapipe/pose@0.5.1675469404"

# sha256 of each source model, so a changed upload in a registry cannot slip in unnoticed.
SOURCE_SHA256 = {
    "pose_detection.tflite": "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c",
    "pose_landmark_lite.tflite": "f17bfbecadb61c3be1baa8b8d851cc6619c870a87167b32848ad20db306b9d61",
    "pose_landmark_full.tflite": "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f",
    "pose_landmark_heavy.tflite": "59e42d71bcd44cbdbabc419f0ff76686595fd265419566bd4009ef703ea8e1fe",
}


@dataclass(frozen=True)
class InputNormalisation:
    """How a model expects its RGB image input: (pixel - mean) / std, giving [low, high]."""

    mean: float
    std: float
    low: float
    high: float


DETECTOR_INPUT = InputNormalisation(mean=127.5, std=127.5, low=-1.0, high=1.0)
LANDMARKS_INPUT = InputNormalisation(mean=0.0, std=255.0, low=0.0, high=1.0)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch_sources(workdir: Path) -> dict[str, bytes]:
    """Download the two registry packages and return the four source models by file name."""
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
         "--python-version", "3.11", "--platform", "manylinux_2_28_x86_64",
         "-d", str(workdir), DETECTOR_WHEEL],
        check=True,
    )
    subprocess.run(["npm", "pack", "--silent", LANDMARK_NPM_PACKAGE], cwd=workdir, check=True,
                   stdout=subprocess.DEVNULL)
    wheel = next(workdir.glob("mediapipe-*.whl"))
    tarball = next(workdir.glob("mediapipe-pose-*.tgz"))
    sources: dict[str, bytes] = {}
    with zipfile.ZipFile(wheel) as archive:
        sources["pose_detection.tflite"] = archive.read(DETECTOR_MEMBER)
    with tarfile.open(tarball) as archive:
        for complexity in COMPLEXITIES:
            name = f"pose_landmark_{complexity}.tflite"
            member = archive.extractfile(f"package/{name}")
            assert member is not None, f"{name} missing from {tarball.name}"
            sources[name] = member.read()
    for name, data in sources.items():
        if sha256(data) != SOURCE_SHA256[name]:
            raise SystemExit(f"{name} from the registry does not match its pinned sha256; refusing to build.")
    return sources


def with_image_metadata(model: bytes, normalisation: InputNormalisation, name: str) -> bytes:
    """Return the tflite model with TFLITE_METADATA describing its image input."""
    import flatbuffers
    from mediapipe.tasks.metadata import metadata_schema_py_generated as meta
    from mediapipe.tasks.metadata import schema_py_generated as tflite

    tflite_model = tflite.ModelT.InitFromObj(tflite.Model.GetRootAs(model, 0))
    subgraph = tflite_model.subgraphs[0]

    image = meta.TensorMetadataT()
    image.name = "image"
    image.content = meta.ContentT()
    image.content.contentPropertiesType = meta.ContentProperties.ImageProperties
    image.content.contentProperties = meta.ImagePropertiesT()
    image.content.contentProperties.colorSpace = meta.ColorSpaceType.RGB
    unit = meta.ProcessUnitT()
    unit.optionsType = meta.ProcessUnitOptions.NormalizationOptions
    unit.options = meta.NormalizationOptionsT()
    unit.options.mean = [normalisation.mean]
    unit.options.std = [normalisation.std]
    image.processUnits = [unit]
    image.stats = meta.StatsT()
    image.stats.max = [normalisation.high]
    image.stats.min = [normalisation.low]

    outputs = []
    for index in subgraph.outputs:
        output = meta.TensorMetadataT()
        output.name = subgraph.tensors[index].name.decode()
        outputs.append(output)

    graph = meta.SubGraphMetadataT()
    graph.inputTensorMetadata = [image]
    graph.outputTensorMetadata = outputs
    model_metadata = meta.ModelMetadataT()
    model_metadata.name = name
    model_metadata.description = "MediaPipe BlazePose model with input metadata added by PoseScope."
    model_metadata.license = "Apache-2.0"
    model_metadata.minParserVersion = "1.0.0"
    model_metadata.subgraphMetadata = [graph]

    builder = flatbuffers.Builder(0)
    builder.Finish(model_metadata.Pack(builder), b"M001")
    metadata_buffer = tflite.BufferT()
    metadata_buffer.data = bytes(builder.Output())
    tflite_model.buffers.append(metadata_buffer)
    entry = tflite.MetadataT()
    entry.name = "TFLITE_METADATA"
    entry.buffer = len(tflite_model.buffers) - 1
    tflite_model.metadata = [m for m in (tflite_model.metadata or []) if m.name != b"TFLITE_METADATA"]
    tflite_model.metadata.append(entry)

    builder = flatbuffers.Builder(0)
    builder.Finish(tflite_model.Pack(builder), b"TFL3")
    return bytes(builder.Output())


def aligned_bundle(entries: dict[str, bytes]) -> bytes:
    """Zip stored entries with 4-byte-aligned data and fixed timestamps (MediaPipe maps them in place)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as bundle:
        for name, data in entries.items():
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            header_end = out.tell() + 30 + len(name.encode()) + 4
            padding = (-header_end) % 4
            # An extra field of id 0xD935 (zipalign's) that carries only padding bytes.
            info.extra = b"\x35\xd9" + padding.to_bytes(2, "little") + b"\0" * padding
            bundle.writestr(info, data)
    return out.getvalue()


def build(sources: dict[str, bytes]) -> dict[str, bytes]:
    detector = with_image_metadata(sources["pose_detection.tflite"], DETECTOR_INPUT, "pose_detector")
    return {
        f"pose_landmarker_{complexity}.task": aligned_bundle({
            "pose_detector.tflite": detector,
            "pose_landmarks_detector.tflite": with_image_metadata(
                sources[f"pose_landmark_{complexity}.tflite"], LANDMARKS_INPUT, f"pose_landmark_{complexity}"),
        })
        for complexity in COMPLEXITIES
    }


def read_checksums() -> dict[str, str]:
    lines = CHECKSUMS_FILE.read_text().splitlines()
    return {name: digest for digest, name in (line.split() for line in lines if line.strip())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only verify the bundles, do not build")
    parser.add_argument("--out", type=Path, default=MODELS_DIR, help="where the bundles go (default: models/)")
    parser.add_argument("--write-checksums", action="store_true",
                        help="record the built bundles' sha256 in models/SHA256SUMS (after a deliberate change)")
    args = parser.parse_args()

    if not args.check:
        with tempfile.TemporaryDirectory(prefix="posescope-models-") as workdir:
            bundles = build(fetch_sources(Path(workdir)))
        for name, data in bundles.items():
            (args.out / name).write_bytes(data)
            print(f"built {name}  {len(data) / 1e6:.1f} MB  sha256 {sha256(data)}")
        if args.write_checksums:
            CHECKSUMS_FILE.write_text("".join(f"{sha256(d)}  {n}\n" for n, d in bundles.items()))

    bad = [name for name, digest in read_checksums().items()
           if not (args.out / name).is_file() or sha256((args.out / name).read_bytes()) != digest]
    if bad:
        print(f"checksum mismatch or missing: {', '.join(bad)}", file=sys.stderr)
        return 1
    print(f"all bundles in {args.out} match models/SHA256SUMS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
