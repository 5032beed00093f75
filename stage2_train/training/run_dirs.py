"""Where a run writes when no folder is named: a new folder per run, never an earlier run's, and a
stable `<name>-latest` link beside it for scripts (and for `mmcl train --resume` without --work-dir).

- training: `runs/<dataset>-<protocol>-<stream>-seed<S>-<YYYYmmdd-HHMMSS>`, linked from
  `runs/<dataset>-<protocol>-<stream>-latest` (`<protocol>-<backbone>-<stream>` for backbones
  other than CTR-GCN);
- `mmcl ensemble`: `runs/ensemble-<YYYYmmdd-HHMMSS>/ensemble.json`, linked from `runs/ensemble-latest`;
- `mmcl zeroshot` and `mmcl test` write beside the checkpoint, in a new folder per evaluation
  (`run_report.evaluation_dir`).

`--work-dir` (or `--out`) is always honoured exactly, and gets no link.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from shared.errors import MMCLError

RUNS = Path("runs")
LATEST = "latest"


def stamp(when: float | None = None) -> str:
    """Local time as YYYYmmdd-HHMMSS (the `evaluation_dir` folders use the same)."""
    return time.strftime("%Y%m%d-%H%M%S", time.localtime(when))


def train_run_name(dataset: str, protocol: str, stream: str, backbone: str = "ctrgcn") -> str:
    """`<dataset>-<protocol>-<stream>`; another backbone than CTR-GCN comes before the stream
    (`ntu120-xsub-hdgcn-joint`), so the paper's six streams keep six `-latest` links."""
    return "-".join((dataset, protocol, *(() if backbone == "ctrgcn" else (backbone,)), stream))


def new_run_dir(name: str, detail: str, when: float | None = None, root: Path = RUNS) -> Path:
    """`root/<name>-<detail>-<time>` (`detail` may be empty), a folder no earlier run used: two
    runs started in the same second get `-2`, `-3`, ..."""
    base = root / "-".join(part for part in (name, detail, stamp(when)) if part)
    path, n = base, 1
    while path.exists() or path.is_symlink():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def latest_link(name: str, root: Path = RUNS) -> Path:
    return root / f"{name}-{LATEST}"


def point_latest(run_dir: Path, name: str, root: Path = RUNS) -> Path | None:
    """Make `root/<name>-latest` a relative link to `run_dir` (replaced atomically); returns the
    link, or None where the file system has no links (the run itself is unaffected)."""
    link = latest_link(name, root)
    tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    try:
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(os.path.relpath(run_dir, link.parent), target_is_directory=True)
        os.replace(tmp, link)
    except OSError:
        tmp.unlink(missing_ok=True)
        return None
    return link


def latest_run(name: str, root: Path = RUNS) -> Path:
    """The folder `root/<name>-latest` points to (`--resume` without --work-dir)."""
    link = latest_link(name, root)
    if not link.exists():
        raise MMCLError(
            f"--resume: no earlier run at {link}; name the run with --work-dir "
            f"(runs are in {root}/{name}-seed<S>-<time>)"
        )
    return link.parent / os.readlink(link)
