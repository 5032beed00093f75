"""Frame sources: a video file decoded with decord, or a folder of frame images (the NW-UCLA and
SYSU releases keep RGB as one image per frame).

Both give random access to frame indices. Only the K sampled frames are decoded, read in sorted
order from one open reader: decord seeks to the nearest key frame, and sorted reads are several
times faster than random-order ones.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np
from PIL import Image

from shared.errors import MMCLError
from shared.registry import DatasetSpec

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp"})
VIDEO_SUFFIXES = (".avi", ".mp4", ".mkv", ".mov", ".webm")
FRAME_SUBDIRS = ("rgb", "RGB", "color")  # SYSU keeps <sample>/rgb/ beside depth/ and skeletons


# A damaged video still opens and yields frames: cut short, it decodes fewer frames than its container
# announces (a 40 % cut: 13 of 63); with corrupted bytes the decoder conceals broken macroblocks or
# drops frames. Either would give a temporal image of the wrong frames, silently.
FRAME_TOLERANCE = 0.02  # decoded frames may fall short of the announced count by this share (at least 1)
# NTU's videos and skeleton files hold the same frames, give or take a few; a video much shorter than
# its skeleton is cut.
SKELETON_COVERAGE = 0.9


class VideoError(MMCLError):
    """A sample's video is missing, cannot be decoded, is too short, or is damaged."""


def sample_indices(num_frames: int, k: int) -> np.ndarray:
    """K frame indices at equal intervals over the whole video: the centre of each of K equal
    segments (sorted, distinct when num_frames >= k)."""
    if num_frames < k:
        raise ValueError(f"cannot sample {k} frames from {num_frames}")
    return ((np.arange(k) + 0.5) * num_frames / k).astype(np.int64)


class FrameSource(ABC):
    """Random access to the RGB frames of one sample."""

    def __init__(self, path: Path):
        self.path = Path(path)

    @property
    @abstractmethod
    def num_frames(self) -> int: ...

    @abstractmethod
    def _read_sorted(self, indices: list[int]) -> np.ndarray:
        """Frames at distinct ascending indices as (k, H, W, 3) uint8."""

    def read(self, indices) -> np.ndarray:
        """Frames at `indices` (any order, repeats allowed) as (k, H, W, 3) uint8 RGB."""
        indices = np.asarray(indices, np.int64)
        if len(indices) and (indices.min() < 0 or indices.max() >= self.num_frames):
            raise VideoError(f"{self.path}: frame index out of range 0..{self.num_frames - 1}")
        unique, inverse = np.unique(indices, return_inverse=True)
        return self._read_sorted(unique.tolist())[inverse]

    def sample(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """K frames at equal intervals: (frames (K, H, W, 3) uint8, their indices (K,))."""
        n = self.num_frames
        if n < k:
            raise VideoError(f"{self.path}: {n} frames, fewer than the {k} to sample")
        indices = sample_indices(n, k)
        return self.read(indices), indices


class VideoFile(FrameSource):
    """A video file read with decord (opened once)."""

    def __init__(self, path: Path, threads: int = 1):
        super().__init__(path)
        import decord  # imported here: decord starts its own threads, keep it out of `import video`

        try:
            self._reader = decord.VideoReader(str(self.path), ctx=decord.cpu(0), num_threads=threads)
        except (RuntimeError, decord.DECORDError) as e:
            raise VideoError(f"{self.path}: cannot open the video ({_first_line(e)})") from None

    @property
    def num_frames(self) -> int:
        return len(self._reader)

    @property
    def key_frames(self) -> np.ndarray:
        """Indices of the key frames: reading a frame decodes from the key frame before it."""
        return np.asarray(self._reader.get_key_indices(), np.int64)

    def check_integrity(self) -> None:
        """Decode the whole stream once (with PyAV, frames not converted) and raise VideoError when
        the decoder reports an error or yields fewer frames than the container announces."""
        decoded, announced, errors = _decode_all(self.path)
        expected = max(announced, self.num_frames)
        problems = []
        if decoded < expected - max(1, int(FRAME_TOLERANCE * expected)):
            problems.append(f"decodes {decoded} of the {expected} frames its container announces")
        if errors:
            problems.append(f"{len(errors)} decode error(s), first: {errors[0]}")
        if problems:
            raise VideoError(f"{self.path}: damaged or cut video: {'; '.join(problems)}")

    def _read_sorted(self, indices: list[int]) -> np.ndarray:
        try:
            return self._reader.get_batch(indices).asnumpy()
        except Exception as e:  # noqa: BLE001 - decord raises several types for a corrupt stream
            raise VideoError(f"{self.path}: cannot decode frames {indices} ({_first_line(e)})") from None


class FrameFolder(FrameSource):
    """A folder of frame images, ordered by the numbers in their names (frame_2 before frame_10)."""

    def __init__(self, path: Path):
        super().__init__(path)
        self.files = sorted((p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES),
                            key=_natural_key)
        if not self.files:
            raise VideoError(f"{self.path}: no frame images ({', '.join(sorted(IMAGE_SUFFIXES))})")

    @property
    def num_frames(self) -> int:
        return len(self.files)

    def _read_sorted(self, indices: list[int]) -> np.ndarray:
        frames = []
        for i in indices:
            try:
                with Image.open(self.files[i]) as im:
                    frames.append(np.asarray(im.convert("RGB")))
            except OSError as e:
                raise VideoError(f"{self.files[i]}: cannot read the frame image ({e})") from None
        if len({f.shape for f in frames}) > 1:
            raise VideoError(f"{self.path}: frame images differ in size")
        return np.stack(frames)


def check_covers_skeleton(source: FrameSource, skeleton_frames: int) -> None:
    """VideoError when `source` is much shorter than the `skeleton_frames` its skeleton spans."""
    if source.num_frames < SKELETON_COVERAGE * skeleton_frames:
        raise VideoError(f"{source.path}: {source.num_frames} frames, but its skeleton spans {skeleton_frames} "
                         f"(cut or damaged video)")


def _decode_all(path: Path) -> tuple[int, int, list[str]]:
    """(frames decoded, frames the container announces or 0, the decoder's error messages)."""
    import av  # PyAV reports decode errors (decord conceals them)

    level = av.logging.get_level()
    av.logging.set_level(av.logging.ERROR)  # without a level PyAV captures nothing
    decoded, errors = 0, []
    try:
        with av.logging.Capture() as logs, av.open(str(path)) as container:
            stream = container.streams.video[0]
            announced = int(stream.frames or 0)
            try:
                for _ in container.decode(stream):
                    decoded += 1
            except av.FFmpegError as e:
                errors.append(_first_line(e))
        errors = [message.strip() for lvl, _, message in logs if lvl <= av.logging.ERROR] + errors
    except (av.FFmpegError, IndexError) as e:
        raise VideoError(f"{path}: cannot open the video ({_first_line(e)})") from None
    finally:
        av.logging.set_level(level)
    return decoded, announced, errors


def open_frames(path: Path) -> FrameSource:
    """The frame source at `path`: a folder of images (or its rgb/ sub-folder), else a video file."""
    path = Path(path)
    if path.is_dir():
        for sub in FRAME_SUBDIRS:
            if (path / sub).is_dir():
                return FrameFolder(path / sub)
        return FrameFolder(path)
    if not path.exists():
        raise VideoError(f"{path}: no such video")
    return VideoFile(path)


def video_path(spec: DatasetSpec, video_dir: Path, name: str) -> Path:
    """Where a sample's video (or frame folder) lives under the dataset's video folder: the
    dataset's pattern, or that name plus a video suffix (NW-UCLA's RGB comes as frame folders or as
    videos named after the sample); a custom dataset's manifest lists each sample's."""
    if spec.manifest is not None:
        from shared.custom_dataset import load_manifest

        return load_manifest(spec.manifest).video(name)
    if spec.skeleton_format == "sysu_mat":  # <Subject>/video<k>/: subject folders are named freely
        from shared.sysu_skeleton import sample_dir

        return sample_dir(video_dir, name)
    path = Path(video_dir) / spec.video_pattern.format(name=name)
    if not path.exists():
        for suffix in VIDEO_SUFFIXES:
            if path.with_name(path.name + suffix).is_file():
                return path.with_name(path.name + suffix)
    return path


def _natural_key(path: Path) -> list:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
