"""How many single-byte corruptions of a video pass the integrity check (#21 item 3), ours against
the reference's (stage1_extract/video.py at REV, default the commit before #23), on the same damage.

Each trial copies one demo clip (`mmcl demo-data`'s generator, 320x180 h264 in AVI, 40-80 frames),
sets one byte at a random offset to a random other value, and asks each check for the K=5 sampled
frames. A trial is
- caught: the check raises VideoError (the sample is recorded as failed, nothing is computed);
- harmless: it passes and the sampled frames equal the intact clip's (the byte was not used, e.g.
  padding or an unread index entry);
- escaped: it passes with frames that differ from the intact clip's: silently wrong data.
Each check runs in a process of its own (they would share PyAV's logging state). Prints the
counts per check and `RESULT fuzz-video escaped ours/reference <a>/<n> vs <b>/<n>`.

    python bench/fuzz_video.py [--trials 150] [--clips 10] [--seed 0] [--reference REV]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

from stage1_extract.video import VideoError, open_frames

REPO = Path(__file__).resolve().parents[1]
REFERENCE_REVISION = "0635e2a"  # main before #23's decode-once change
K = 5
CHECKS = ("ours", "reference")


def reference_video_module(revision: str, folder: Path):
    """stage1_extract/video.py as of `revision`, loaded beside ours under another name (it imports
    only `shared`, which both share)."""
    source = subprocess.run(
        ["git", "-C", str(REPO), "show", f"{revision}:stage1_extract/video.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = folder / "reference_video.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("reference_video", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["reference_video"] = module
    spec.loader.exec_module(module)
    return module


def sample_ours(path: Path) -> np.ndarray:
    return open_frames(path).sample(K)[0]  # one decode: the K frames and the check


def sample_with(module):
    """The reference's decode stage: the integrity check, then the K frames."""

    def sample(path: Path) -> np.ndarray:
        source = module.open_frames(path)
        source.check_integrity()
        return source.sample(K)[0]

    return sample


def outcome(sample, path: Path, intact: np.ndarray, errors: tuple[type, ...]) -> str:
    try:
        frames = sample(path)
    except errors:
        return "caught"
    return "harmless" if frames.shape == intact.shape and np.array_equal(frames, intact) else "escaped"


def demo_clips(folder: Path, clips: int) -> list[Path]:
    from stage1_extract.demo.dataset import generate_demo

    root = folder / "demo"
    generate_demo(root, subjects=(1, 2), cameras=(1,), replications=(1,), workers=1, progress=False)
    return sorted((root / "nturgb+d_rgb").glob("*.avi"))[:clips]


def run_check(name: str, plan: list[dict], revision: str, folder: Path) -> dict:
    """In this process: each planned corruption through one check; counts and escaped examples."""
    if name == "ours":
        sample, errors = sample_ours, (VideoError,)
    else:
        reference = reference_video_module(revision, folder)
        sample, errors = sample_with(reference), (reference.VideoError,)
    counts, escaped = Counter(), []
    intact: dict[str, np.ndarray] = {}
    damaged = folder / f"damaged-{name}_rgb.avi"
    for trial in plan:
        clip = Path(trial["clip"])
        if trial["clip"] not in intact:
            intact[trial["clip"]] = sample(clip)
        data = bytearray(clip.read_bytes())
        data[trial["offset"]] ^= trial["xor"]
        damaged.write_bytes(bytes(data))
        result = outcome(sample, damaged, intact[trial["clip"]], errors)
        counts[result] += 1
        if result == "escaped":
            escaped.append(f"{clip.name} byte {trial['offset']}/{len(data)}")
    return {"counts": dict(counts), "escaped": escaped}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=150)
    parser.add_argument("--clips", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reference", default=REFERENCE_REVISION, metavar="REV")
    parser.add_argument("--check", choices=CHECKS, help=argparse.SUPPRESS)  # one check, in this process
    parser.add_argument("--plan", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.check:
        plan = json.loads(args.plan.read_text())
        print(json.dumps(run_check(args.check, plan, args.reference, args.plan.parent)))
        return
    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        clips = demo_clips(folder, args.clips)
        plan = []
        for trial in range(args.trials):
            clip = clips[trial % len(clips)]
            size = clip.stat().st_size
            plan.append({"clip": str(clip), "offset": int(rng.integers(size)), "xor": int(rng.integers(1, 256))})
        (folder / "plan.json").write_text(json.dumps(plan))
        results = {}
        for name in CHECKS:  # each in a process of its own: the checks share PyAV's logging state
            done = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--check",
                    name,
                    "--plan",
                    str(folder / "plan.json"),
                    "--reference",
                    args.reference,
                ],
                capture_output=True,
                text=True,
            )
            if done.returncode != 0:
                raise SystemExit(f"{name}: the check's run failed:\n{done.stderr[-2000:]}")
            results[name] = json.loads(done.stdout.strip().splitlines()[-1])
    n = args.trials
    print(f"{n} single-byte corruptions of {len(clips)} demo clips (seed {args.seed}), K={K} frames sampled")
    for name, result in results.items():
        count = Counter(result["counts"])
        print(
            f"{name:9s} caught {count['caught']:4d}, harmless {count['harmless']:4d}, escaped {count['escaped']:4d}"
            + (f"  (e.g. {'; '.join(result['escaped'][:3])})" if result["escaped"] else "")
        )
    print(
        f"RESULT fuzz-video escaped ours/reference {results['ours']['counts'].get('escaped', 0)}/{n} vs "
        f"{results['reference']['counts'].get('escaped', 0)}/{n}"
    )


if __name__ == "__main__":
    main()
