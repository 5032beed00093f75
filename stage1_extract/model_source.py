"""Where a model comes from: a local directory or a Hugging Face hub id.

Every model loader in stage 1 resolves its spec here first, so a mistyped path fails at once with a
clear message instead of turning into a hub request (which, offline, retries for half a minute), and
every loading failure names what was tried.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from shared.errors import MMCLError

_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


@dataclass(frozen=True)
class ModelSource:
    """A resolved model spec: `local_dir` is set for a directory, else `spec` is a hub id."""

    spec: str
    local_dir: Path | None

    @property
    def path_or_id(self) -> str:
        """What to hand to `from_pretrained`."""
        return str(self.local_dir) if self.local_dir is not None else self.spec

    def describe(self) -> str:
        if self.local_dir is not None:
            return f"local directory {self.local_dir}"
        return f"Hugging Face hub id '{self.spec}' (no local directory of that name exists)"


def _looks_like_path(spec: str) -> bool:
    """Hub ids are 'name' or 'owner/name'; anything else that does not exist is a missing directory."""
    return spec.startswith(("/", ".", "~")) or "\\" in spec or spec.count("/") > 1 or spec.endswith("/")


def resolve_model_source(spec: str, what: str) -> ModelSource:
    """Resolve `spec` for the model described by `what` (e.g. "RGB encoder"); raise MMCLError when
    it names a path that is not a directory."""
    if not spec or not spec.strip():
        raise MMCLError(f"{what}: empty model name; pass a local model directory or a Hugging Face hub id")
    path = Path(spec).expanduser()
    if path.is_dir():
        return ModelSource(spec, path.resolve())
    if path.exists():
        raise MMCLError(f"{what} '{spec}': is a file; expected a model directory or a Hugging Face hub id")
    if _looks_like_path(spec):
        raise MMCLError(f"{what} '{spec}': no such directory")
    return ModelSource(spec, None)


def loading_error(what: str, source: ModelSource, exc: BaseException) -> MMCLError:
    """The MMCLError for a model that failed to load, naming what was tried and why it failed."""
    reason = str(exc).strip().splitlines()[0].rstrip(".") if str(exc).strip() else type(exc).__name__
    hint = ""
    if source.local_dir is None:
        hint = " Without access to the hub, download the model elsewhere and pass its local directory."
    return MMCLError(f"{what}: could not load {source.describe()}: {reason}.{hint}")


def directory_fingerprint(directory: Path) -> str:
    """A cheap, copy-stable revision for a local model directory: a hash of its config.json and of
    the names and sizes of its weight files (hashing multi-GB weights would be slow)."""
    digest = hashlib.sha256()
    config = directory / "config.json"
    if config.is_file():
        digest.update(config.read_bytes())
    weights = sorted(p for p in directory.rglob("*") if p.is_file() and p.suffix in _WEIGHT_SUFFIXES)
    digest.update(json.dumps([(str(p.relative_to(directory)), p.stat().st_size) for p in weights]).encode())
    return f"local:{digest.hexdigest()[:16]}"


def revision_of(source: ModelSource, commit_hash: str | None) -> str | None:
    """The revision to record: the hub commit when known, else a fingerprint of the local directory."""
    if commit_hash:
        return commit_hash
    return directory_fingerprint(source.local_dir) if source.local_dir is not None else None
