"""Import of CTR-GCN's preprocessed NTU files (`NTU60_CS.npz`-style), so nobody must redo
preprocessing: x_train / x_test (N, 300, 150) = two actors x 25 joints x xyz, translated and
zero-padded; y_train / y_test one-hot (N, C).

The npz carries no sample names. CTR-GCN's `seq_transformation.py` splits the list in
`statistics/skes_available_name.txt` by the protocol's rule, keeping file order; we do the same,
so row i of x_train is the i-th training name of that list.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from .errors import MMCLError
from .dataset_spec import DatasetSpec, Protocol
from .sample_names import check_sample_name
from .text_files import read_text


def read_name_list(path) -> list[str]:
    path = Path(path)
    if not path.is_file():
        raise MMCLError(f"{path}: no such sample-name list (CTR-GCN's statistics/skes_available_name.txt)")
    return [line.strip() for line in read_text(path, "name list").splitlines() if line.strip()]


def iter_ctrgcn_npz(npz_path, names_path, spec: DatasetSpec, protocol: Protocol):
    """Yield (SampleMeta, joints (T, 2, 25, 3) float32 without the zero padding)."""
    npz_path = Path(npz_path)
    if not npz_path.is_file():
        raise MMCLError(f"{npz_path}: no such file")
    names = read_name_list(names_path)
    metas = []
    for name in names:
        meta = spec.parse_name(check_sample_name(name, str(names_path)))
        if meta is None:
            raise MMCLError(f"{names_path}: {name!r} is not a {spec.name} sample name")
        metas.append(meta)
    try:
        data = np.load(npz_path, allow_pickle=False)
        files = data.files
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise MMCLError(
            f"{npz_path}: not a readable .npz archive ({reason}); expected CTR-GCN's NTU60_CS.npz-style file"
        ) from None
    missing_keys = {"x_train", "y_train", "x_test", "y_test"} - set(files)
    if missing_keys:
        raise MMCLError(f"{npz_path}: missing arrays {sorted(missing_keys)} (expected CTR-GCN's layout)")
    for part, train in (("train", True), ("test", False)):
        chosen = [m for m in metas if protocol.is_train(m) == train]
        x, y = data[f"x_{part}"], data[f"y_{part}"]
        if len(chosen) != len(x):
            raise MMCLError(
                f"{npz_path}: x_{part} has {len(x)} samples but {names_path} has {len(chosen)} "
                f"{part} samples under {spec.name} {protocol.name}; is this the {protocol.name} file?"
            )
        if x.ndim != 3 or x.shape[2] != spec.num_person * spec.layout.num_joints * 3:
            raise MMCLError(
                f"{npz_path}: x_{part} has shape {x.shape}, expected (N, T, "
                f"{spec.num_person * spec.layout.num_joints * 3})"
            )
        for meta, seq, onehot in zip(chosen, x, y):
            if int(np.argmax(onehot)) != spec.label_of_action(meta.action):
                raise MMCLError(
                    f"{npz_path}: the label of {meta.name} disagrees with its name; "
                    f"the name list or the protocol ({protocol.name}) does not match this file"
                )
            yield meta, unpad(seq).reshape(-1, spec.num_person, spec.layout.num_joints, 3)


def unpad(seq: np.ndarray) -> np.ndarray:
    """Drop the trailing all-zero frames that CTR-GCN pads to 300."""
    nonzero = np.flatnonzero(np.abs(seq).sum(axis=1) > 0)
    end = nonzero[-1] + 1 if len(nonzero) else 0
    return seq[:end].astype(np.float32)
