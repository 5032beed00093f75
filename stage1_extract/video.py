"""Frame sources: a video file decoded with PyAV, or a folder of frame images (the NW-UCLA and
SYSU releases keep RGB as one image per frame).

Both give access by frame index. A video is decoded once per read, in one sequential pass: every
frame goes through the decoder (which the integrity check needs anyway: a damaged stream shows
only when all of it is decoded), and only the requested frames are converted to RGB. Frames of a
video that fails the check are never returned. (Before, decord read the K frames and PyAV decoded
the whole stream again to check it: two decodes per sample. PyAV's RGB frames equal decord's bit
for bit: both convert with FFmpeg's swscale.)
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from shared.errors import MMCLError
from shared.dataset_spec import DatasetSpec

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


@dataclass
class DecodePass:
    """One sequential decode of a video: the requested frames and what the decoder reported."""

    frames: dict[int, np.ndarray] = field(default_factory=dict)  # index -> (H, W, 3) uint8 RGB
    decoded: int = 0  # frames the decoder yielded
    packets: int = 0  # the stream's packets the demuxer delivered (the final empty flush packet aside)
    errors: list[str] = field(default_factory=list)  # the decoder's error messages
    corrupt_frames: int = 0  # frames the decoder flagged corrupt (concealed errors: AV_FRAME_FLAG_CORRUPT)
    corrupt_packets: int = 0  # packets the demuxer flagged corrupt


class VideoFile(FrameSource):
    """A video file decoded with PyAV; each read is one pass over the stream, checked (check_damage)."""

    def __init__(self, path: Path, threads: int = 1):
        super().__init__(path)
        self.threads = threads  # decoding threads; 1: see decode()
        self._announced = _announced_frames(self.path)
        self._counted: int | None = None

    @property
    def num_frames(self) -> int:
        """The frame count the container announces; where it announces none, the frames decoded."""
        if self._announced:
            return self._announced
        if self._counted is None:
            self._counted = self.decode(()).decoded
        return self._counted

    def check_integrity(self) -> None:
        """Decode the whole stream (converting nothing) and raise VideoError when it is damaged."""
        self.check_damage(self.decode(()))

    def check_damage(self, result: DecodePass) -> None:
        """VideoError when the decoder reported an error, flagged a frame (or the demuxer a packet)
        corrupt, yielded fewer frames than the container announces (beyond FRAME_TOLERANCE), or the
        demuxer delivered fewer packets than the container announces frames (a packet lost: no
        slack; the decoder's count has some, for decoders that merge or drop a frame)."""
        expected = max(self._announced, self._counted or 0)
        problems = []
        if result.decoded < expected - max(1, int(FRAME_TOLERANCE * expected)):
            problems.append(f"decodes {result.decoded} of the {expected} frames its container announces")
        if self._announced and result.packets < self._announced:
            problems.append(f"holds {result.packets} of the {self._announced} packets its container announces")
        if result.errors:
            problems.append(f"{len(result.errors)} decode error(s), first: {result.errors[0]}")
        if result.corrupt_frames or result.corrupt_packets:
            problems.append(
                f"{result.corrupt_frames} frame(s) and {result.corrupt_packets} packet(s) flagged corrupt "
                f"by the decoder"
            )
        if problems:
            raise VideoError(f"{self.path}: damaged or cut video: {'; '.join(problems)}")

    def decode(self, wanted) -> DecodePass:
        """Decode every frame once, converting those at the indices in `wanted` to RGB."""
        import av  # PyAV reports decode errors (decord conceals them)

        wanted, result = set(int(i) for i in wanted), DecodePass()
        level, skip_repeated = av.logging.get_level(), av.logging.get_skip_repeated()
        av.logging.set_level(av.logging.ERROR)  # without a level PyAV captures nothing
        av.logging.set_skip_repeated(False)  # else a video whose first error repeats the last video's is not told
        try:
            with av.logging.Capture() as logs, av.open(str(self.path)) as container:
                stream = container.streams.video[0]
                # One decoding thread: PyAV captures the log of the calling thread only, so errors that a
                # frame-threaded decoder reports from its own threads would go unseen (most of the
                # corruptions that passed the check before: bench/fuzz_video.py).
                stream.thread_count = self.threads
                try:
                    for packet in container.demux(stream):
                        result.corrupt_packets += bool(packet.is_corrupt)
                        result.packets += packet.dts is not None  # the flush packet at the end has none
                        for frame in packet.decode():
                            result.corrupt_frames += bool(frame.is_corrupt)
                            if result.decoded in wanted:
                                result.frames[result.decoded] = frame.to_ndarray(format="rgb24")  # (H, W, 3)
                            result.decoded += 1
                except av.FFmpegError as e:
                    result.errors.append(_first_line(e))
            result.errors = [message.strip() for lvl, _, message in logs if lvl <= av.logging.ERROR] + result.errors
        except (av.FFmpegError, IndexError) as e:
            raise VideoError(f"{self.path}: cannot open the video ({_first_line(e)})") from None
        finally:
            av.logging.set_level(level)
            av.logging.set_skip_repeated(skip_repeated)
        return result

    def _read_sorted(self, indices: list[int]) -> np.ndarray:
        result = self.decode(indices)
        self.check_damage(result)
        missing = [i for i in indices if i not in result.frames]
        if missing:
            raise VideoError(f"{self.path}: cannot decode frames {missing} (the stream ends at frame {result.decoded})")
        return np.stack([result.frames[i] for i in indices])


class FrameFolder(FrameSource):
    """A folder of frame images, ordered by the numbers in their names (frame_2 before frame_10)."""

    def __init__(self, path: Path):
        super().__init__(path)
        self.files = sorted((p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=_natural_key)
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
        raise VideoError(
            f"{source.path}: {source.num_frames} frames, but its skeleton spans {skeleton_frames} "
            f"(cut or damaged video)"
        )


def _announced_frames(path: Path) -> int:
    """The frame count the container announces (0: it announces none); VideoError when it cannot be opened."""
    import av

    try:
        with av.open(str(path)) as container:
            return int(container.streams.video[0].frames or 0)
    except (av.FFmpegError, IndexError) as e:
        raise VideoError(f"{path}: cannot open the video ({_first_line(e)})") from None


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
    if not path.is_file():  # a FIFO or a device: the decoder would wait on it forever
        raise VideoError(f"{path}: not a regular file (a FIFO, socket or device); give a video file")
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
