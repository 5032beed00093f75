"""Throughput of the NTU `.skeleton` reader and cleaning, in files per second.

Generates N realistic files (about 100 frames, one or two actors, sometimes a short-lived or
lying noise body and a few frames without bodies) into a temporary folder, then times:
a naive line-by-line parser (float() per value, as the reference scripts read), our parser,
parser + cleaning, and `shared.readers.read_many` with a process pool.

    python bench/bench_parse_clean.py [--files 200] [--workers 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shared.ntu_cleaning import clean_ntu
from shared.readers import read_many
from shared.ntu_skeleton import read_ntu_skeleton, write_ntu_skeleton


@dataclass(frozen=True)
class BenchConfig:
    files: int = 200
    workers: int = 2
    seed: int = 0


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------


def _person(rng: np.random.Generator, t: int, x0: float, lying: bool = False) -> np.ndarray:
    """(t, 25, 3) a person about 1.6 m tall at 3 m, arms swinging."""
    base = np.stack([rng.uniform(-0.3, 0.3, 25), rng.uniform(-0.9, 0.7, 25), rng.uniform(-0.1, 0.1, 25)], axis=-1)
    if lying:
        base = base[:, [1, 0, 2]]
    phase = np.linspace(0, rng.uniform(2, 8) * np.pi, t)[:, None, None]
    swing = 0.15 * np.sin(phase + rng.uniform(0, np.pi, (1, 25, 1)))
    return base + swing + np.array([x0, 0.0, 3.0]) + rng.normal(0, 0.004, (t, 25, 3))


def generate(folder: Path, config: BenchConfig) -> list[Path]:
    rng = np.random.default_rng(config.seed)
    paths = []
    for n in range(config.files):
        t = int(rng.integers(80, 121))
        people = [(np.arange(t), _person(rng, t, -0.4))]
        if rng.random() < 0.4:  # a second actor
            people.append((np.arange(t), _person(rng, t, 0.5)))
        if rng.random() < 0.3:  # a noise body: short-lived, or mostly lying
            start = int(rng.integers(0, t - 12))
            length = int(rng.integers(3, 12)) if rng.random() < 0.5 else t - start
            people.append((np.arange(start, start + length), _person(rng, length, 1.2, lying=True)))
        joints = np.zeros((t, len(people), 25, 3))
        present = np.zeros((t, len(people)), bool)
        for k, (frames, data) in enumerate(people):
            joints[frames, k], present[frames, k] = data, True
        present[rng.integers(0, t, size=int(rng.integers(0, 3)))] = False  # lost frames
        depth = np.maximum(joints[..., 2], 0.5)  # absent bodies are zeros
        color = np.stack([960 + 1060 * joints[..., 0] / depth, 540 - 1060 * joints[..., 1] / depth], axis=-1)
        path = folder / f"S001C001P{n % 40 + 1:03d}R001A{n % 60 + 1:03d}_{n}.skeleton"
        write_ntu_skeleton(path, joints, color, body_ids=np.arange(len(people)) + 3165, present=present)
        paths.append(path)
    return paths


# ---------------------------------------------------------------------------------------------
# Baseline: read line by line, one float() per value
# ---------------------------------------------------------------------------------------------


def naive_read(path: Path) -> dict[str, list[list[float]]]:
    lines = path.read_text().splitlines()
    bodies: dict[str, list[list[float]]] = {}
    i = 1
    for _ in range(int(lines[0])):
        num_bodies = int(lines[i])
        i += 1
        for _ in range(num_bodies):
            body_id = lines[i].split()[0]
            num_joints = int(lines[i + 1])
            i += 2
            for _ in range(num_joints):
                bodies.setdefault(body_id, []).append([float(v) for v in lines[i].split()])
                i += 1
    return bodies


# ---------------------------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rate:
    wall: float  # files per second of wall time
    cpu: float  # files per CPU second of this process (contention on a shared machine aside)


def files_per_second(paths: list[Path], work: Callable[[list[Path]], object]) -> Rate:
    wall, cpu = time.perf_counter(), time.process_time()
    work(paths)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return Rate(len(paths) / wall, len(paths) / cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=BenchConfig.files)
    parser.add_argument("--workers", type=int, default=BenchConfig.workers)
    parser.add_argument("--seed", type=int, default=BenchConfig.seed)
    config = BenchConfig(**vars(parser.parse_args()))

    with tempfile.TemporaryDirectory() as tmp:
        paths = generate(Path(tmp), config)
        size = sum(p.stat().st_size for p in paths) / len(paths) / 1e3
        frames = np.mean([read_ntu_skeleton(p).num_frames for p in paths])
        print(f"{len(paths)} files, {frames:.0f} frames and {size:.0f} kB on average")

        results = {
            "naive line-by-line parse": files_per_second(paths, lambda ps: [naive_read(p) for p in ps]),
            "parse": files_per_second(paths, lambda ps: [read_ntu_skeleton(p) for p in ps]),
            "parse + clean": files_per_second(paths, lambda ps: [clean_ntu(read_ntu_skeleton(p)) for p in ps]),
            f"read_many, {config.workers} workers": files_per_second(
                paths, lambda ps: list(read_many("ntu60", ps, workers=config.workers, progress=False))
            ),
        }
    baseline = results["naive line-by-line parse"]
    print(f"{'':<36} {'files/s':>8} {'vs naive':>9} {'files/CPU-s':>12} {'vs naive':>9}")
    for name, rate in results.items():
        pool = name.startswith("read_many")  # its work runs in child processes
        cpu = "-" if pool else f"{rate.cpu:.1f}"
        cpu_ratio = "-" if pool else f"{rate.cpu / baseline.cpu:.1f}x"
        print(f"{name:<36} {rate.wall:8.1f} {rate.wall / baseline.wall:8.1f}x {cpu:>12} {cpu_ratio:>9}")
    per_file = 1.0 / results["parse + clean"].cpu
    print(f"NTU120 (114,480 files) parse + clean: {114_480 * per_file / 60:.0f} CPU-minutes at this file size")


if __name__ == "__main__":
    main()
