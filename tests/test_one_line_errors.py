"""#21 item 9: bad input files are one line naming the file and the problem, never a traceback:
configs, manifests and sample tables not in UTF-8, integers too large for their field, pyskl
annotations of the wrong type, an --import-npz of random bytes, a --names list in latin-1, and a
text file given as a checkpoint to every command that reads one."""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
from stage2_run import invoke

from shared.errors import MMCLError

LATIN1 = "epochs: 2  # réglage\n".encode("latin-1")


@pytest.fixture(scope="module")
def cache(skeleton_cache) -> Path:
    """The shared tiny cache without a feature set."""
    return skeleton_cache


def manifest(folder: Path, table: bytes | None = None, yaml_bytes: bytes | None = None, subject: str = "1") -> Path:
    """A custom-dataset manifest over a sample table (written as given, else one plain UTF-8 row)."""
    folder.mkdir(parents=True, exist_ok=True)
    doc = {
        "name": "mine",
        "layout": "kinect_v1",
        "classes": ["wave", "squat"],
        "protocols": ["xsub"],
        "samples": "samples.csv",
    }
    (folder / "samples.csv").write_bytes(
        table or f"name,label,skeleton,subject,xsub\na,wave,a.npy,{subject},train\n".encode()
    )
    path = folder / "manifest.yaml"
    path.write_bytes(yaml_bytes or json.dumps(doc).encode())
    return path


def pyskl(folder: Path, **fields) -> Path:
    keypoint = np.zeros((1, 4, 25, 3), np.float32)
    ann = {**dict(frame_dir="S001C001P001R001A001", label=0, keypoint=keypoint, total_frames=4), **fields}
    path = folder / "data.pkl"
    path.write_bytes(pickle.dumps(dict(split={}, annotations=[ann])))
    return path


def text_checkpoint(folder: Path) -> Path:
    path = folder / "model.pt"
    path.write_text("this is not a checkpoint\n" * 20)
    return path


CASES = {  # name: (the command line from a folder and the cache, the file named, what the line says)
    "config 400-digit integer": (
        lambda d, c: [
            "train",
            "--cache",
            c,
            "--no-fam",
            "--no-frm",
            "--work-dir",
            d / "w",
            "--config",
            _write(d / "c.yaml", b"epochs: " + b"9" * 400),
        ],
        "c.yaml",
        "epochs",
    ),
    "config latin-1": (
        lambda d, c: ["train", "--cache", c, "--config", _write(d / "c.yaml", LATIN1)],
        "c.yaml, line 1: not UTF-8 text",
        "save the config file as UTF-8",
    ),
    "config UTF-16": (
        lambda d, c: ["train", "--cache", c, "--config", _write(d / "c.yaml", "epochs: 2\n".encode("utf-16"))],
        "c.yaml, line 1: not UTF-8 text (it looks like UTF-16)",
        "UTF-8",
    ),
    "manifest latin-1": (
        lambda d, c: [
            "extract",
            "--dataset",
            "custom",
            "--out",
            d / "o",
            "--skeletons-only",
            "--manifest",
            manifest(d, yaml_bytes='{"name": "mîne"}'.encode("latin-1")),
        ],
        "manifest.yaml, line 1: not UTF-8 text",
        "save the manifest as UTF-8",
    ),
    "sample table UTF-16": (
        lambda d, c: [
            "extract",
            "--dataset",
            "custom",
            "--out",
            d / "o",
            "--skeletons-only",
            "--manifest",
            manifest(d, table="name,label\n".encode("utf-16")),
        ],
        "samples.csv, line 1: not UTF-8 text (it looks like UTF-16)",
        "sample table",
    ),
    "sample table latin-1": (
        lambda d, c: [
            "extract",
            "--dataset",
            "custom",
            "--out",
            d / "o",
            "--skeletons-only",
            "--manifest",
            manifest(d, table="name,label,skeleton,xsub\né,wave,a.npy,train\n".encode("latin-1")),
        ],
        "samples.csv, line 2: not UTF-8 text",
        "sample table",
    ),
    "manifest subject 3000000000": (
        lambda d, c: [
            "extract",
            "--dataset",
            "custom",
            "--out",
            d / "o",
            "--skeletons-only",
            "--manifest",
            manifest(d, subject="3000000000"),
        ],
        "samples.csv, row 2: subject 3000000000 is out of range",
        "2147483647",
    ),
    "pyskl label 'zero'": (
        lambda d, c: [
            "extract",
            "--dataset",
            "ntu60",
            "--out",
            d / "o",
            "--skeletons-only",
            "--import-pyskl",
            pyskl(d, label="zero"),
        ],
        "data.pkl: S001C001P001R001A001: 'label' is 'zero'",
        "not a whole number",
    ),
    "pyskl total_frames 'abc'": (
        lambda d, c: [
            "extract",
            "--dataset",
            "ntu60",
            "--out",
            d / "o",
            "--skeletons-only",
            "--import-pyskl",
            pyskl(d, total_frames="abc"),
        ],
        "'total_frames' is 'abc'",
        "not a whole number",
    ),
    "--import-npz random bytes": (
        lambda d, c: [
            "extract",
            "--dataset",
            "ntu60",
            "--out",
            d / "o",
            "--skeletons-only",
            "--import-npz",
            _write(d / "x.npz", np.random.default_rng(0).bytes(4096)),
            "--names",
            _write(d / "n.txt", b"S001C001P001R001A001\n"),
        ],
        "x.npz: not a readable .npz archive",
        "CTR-GCN",
    ),
    "--names latin-1": (
        lambda d, c: [
            "extract",
            "--dataset",
            "ntu60",
            "--out",
            d / "o",
            "--skeletons-only",
            "--import-npz",
            _write(d / "x.npz", b"PK"),
            "--names",
            _write(d / "n.txt", "é\n".encode("latin-1")),
        ],
        "n.txt, line 1: not UTF-8 text",
        "save the name list as UTF-8",
    ),
    "text --init-from": (
        lambda d, c: [
            "train",
            "--cache",
            c,
            "--init-from",
            text_checkpoint(d),
            "--work-dir",
            d / "w",
            "--no-fam",
            "--no-frm",
        ],
        "model.pt",
        "checkpoint",
    ),
    "text test checkpoint": (
        lambda d, c: ["test", "--checkpoint", text_checkpoint(d), "--cache", c],
        "model.pt",
        "checkpoint",
    ),
    "text predict checkpoint": (
        lambda d, c: ["predict", "--checkpoint", text_checkpoint(d), "--cache", c, "--sample", "S001C001P001R001A001"],
        "model.pt",
        "checkpoint",
    ),
    "text export checkpoint": (
        lambda d, c: ["export", "--checkpoint", text_checkpoint(d), "--out", d / "e"],
        "model.pt",
        "checkpoint",
    ),
    "text zeroshot checkpoint": (
        lambda d, c: ["zeroshot", "--checkpoint", text_checkpoint(d), "--cache", c, "--out", d / "z"],
        "model.pt",
        "checkpoint",
    ),
}


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("case", list(CASES))
def test_a_bad_input_file_is_one_line_naming_it(case, cache, tmp_path):
    command, names, says = CASES[case]
    result = invoke(*command(tmp_path, cache), ok=False)
    assert isinstance(result.exception, MMCLError), f"{case}: {result.exception!r}\n{result.output}"
    message = str(result.exception)
    assert "\n" not in message and names in message and says in message, message


# --------------------------------------------------------------------------- #21 item 10: unbounded sizes


@pytest.mark.parametrize(
    "text, message",
    [
        ("window: 1000000000000", "window = 1000000000000: expected in [2, 10000]"),
        ("base_channel: 1000000000", "base_channel = 1000000000: expected a positive multiple of 4, at most 1024"),
        ("epochs: " + "9" * 400, "epochs = 999"),
        ("persons: 100000", "persons = 100000: expected in [1, 16]"),
    ],
)
def test_a_size_that_cannot_fit_in_a_config_is_refused(tmp_path, text, message):
    from stage2_train.training.config import load_config_file

    f = tmp_path / "big.yaml"
    f.write_text(text + "\n")
    with pytest.raises(MMCLError) as e:
        load_config_file(f)
    assert str(e.value).startswith(f"{f}: {message}")


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--persons", "100000"], "--persons = 100000: expected in [1, 16]"),
        (["--window", "100000000"], "--window = 100000000: expected in [2, 10000]"),
    ],
)
def test_a_size_that_cannot_fit_on_the_command_line_is_refused(cache, tmp_path, flags, message):
    result = invoke("train", "--cache", cache, "--no-fam", "--no-frm", "--work-dir", tmp_path / "w", *flags, ok=False)
    assert isinstance(result.exception, MMCLError) and message in str(result.exception), repr(result.exception)
    assert not (tmp_path / "w").exists()


def test_an_image_size_that_cannot_fit_is_refused(tmp_path):
    result = invoke("extract", "--dataset", "demo", "--image-size", "99999999x99999999", "--out", tmp_path, ok=False)
    assert result.exit_code == 2 and "at most 16384 pixels a side" in result.output


# --------------------------------------------------------------------------- #21 item 11: smaller ones


def test_a_duplicated_pyskl_frame_dir_is_refused(tmp_path):
    path = pyskl(tmp_path)
    data = pickle.loads(path.read_bytes())
    data["annotations"].append(dict(data["annotations"][0]))
    path.write_bytes(pickle.dumps(data))
    result = invoke(
        "extract", "--dataset", "ntu60", "--out", tmp_path / "o", "--skeletons-only", "--import-pyskl", path, ok=False
    )
    assert isinstance(result.exception, MMCLError)
    assert "frame_dir 'S001C001P001R001A001' appears twice (annotations 0 and 1)" in str(result.exception)


def test_an_import_with_failed_samples_exits_1(tmp_path):
    path = pyskl(tmp_path)
    data = pickle.loads(path.read_bytes())
    broken = {
        **data["annotations"][0],
        "frame_dir": "S001C001P001R001A002",
        "label": 1,
        "keypoint": np.zeros((1, 4, 17, 3), np.float32),
    }  # 17 joints: recorded failed
    data["annotations"].append(broken)
    path.write_bytes(pickle.dumps(data))
    from stage1_extract.cli import extract

    status = extract.main(
        [
            "--dataset",
            "ntu60",
            "--out",
            str(tmp_path / "o"),
            "--skeletons-only",
            "--quiet",
            "--import-pyskl",
            str(path),
        ],
        standalone_mode=False,
    )  # as shared.command.run calls it
    assert status == 1 and (tmp_path / "o" / "ntu60" / "skeletons.h5").exists()


@pytest.mark.parametrize(
    "cell, written",
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+cmd", "'+cmd"),
        ("-x", "'-x"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("-0.25", "-0.25"),
        ("wave", "wave"),
        (3, 3),
    ],
)
def test_csv_cells_that_look_like_formulas_are_written_as_text(cell, written):
    from shared.csv_cells import formula_safe

    assert formula_safe(cell) == written


def test_a_class_name_formula_reaches_the_report_as_text(tmp_path):
    from stage2_train.evaluation.evaluate import _write_confusion_csv, _write_per_class

    confusion = np.array([[2, 0], [1, 1]])
    _write_per_class(tmp_path / "p.csv", confusion, np.array([1.0, 0.5]), ["=cmd|' /C calc'!A0", "wave"])
    _write_confusion_csv(tmp_path / "c.csv", confusion, ["=cmd|' /C calc'!A0", "wave"])
    for name in ("p.csv", "c.csv"):
        text = (tmp_path / name).read_text()
        assert "'=cmd" in text and ",=cmd" not in text and not text.startswith("=")


@pytest.mark.parametrize(
    "table, says",
    [
        (b"name,label,skeleton,xsub\na,wave,a.npy,train,extra\n", "samples.csv, row 2: 5 fields, the header names 4"),
        (
            b"name,label,label,skeleton,xsub\na,wave,squat,a.npy,train\n",
            "samples.csv, row 1: column(s) label appear more than once",
        ),
    ],
)
def test_a_sample_table_that_would_lose_values_is_refused(tmp_path, table, says):
    from shared.custom_dataset import load_manifest

    with pytest.raises(MMCLError, match=says.replace("(", r"\(").replace(")", r"\)")):
        load_manifest(manifest(tmp_path, table=table))


def test_an_ntu_id_of_true_is_refused(tmp_path):
    from shared.custom_dataset import load_manifest

    doc = {
        "name": "mine",
        "layout": "kinect_v1",
        "classes": [{"name": "wave", "ntu_id": True}],
        "protocols": ["xsub"],
        "samples": "samples.csv",
    }
    with pytest.raises(MMCLError, match="ntu_id True is not an NTU RGB"):
        load_manifest(manifest(tmp_path, yaml_bytes=json.dumps(doc).encode()))


@pytest.mark.parametrize(
    "device, says",
    [
        ("garbage", "'garbage': expected auto, cpu, cuda or cuda:N"),
        ("cuda:7", "'cuda:7': this machine has"),
    ],
)
def test_an_extract_device_that_does_not_exist_is_one_line(tmp_path, device, says):
    import torch

    if device.startswith("cuda") and torch.cuda.device_count() > 7:
        pytest.skip("this machine has a cuda:7")
    result = invoke("extract", "--dataset", "demo", "--device", device, "--out", tmp_path, ok=False)
    assert result.exit_code == 2 and says in result.output and "Traceback" not in result.output, result.output


class _RunsCode:
    def __reduce__(self):
        return (print, ("this ran",))


@pytest.mark.parametrize(
    "content, says",
    [
        (b"not a state dict\n" * 10, "not a plain PyTorch state dict"),
        (pickle.dumps({"x": _RunsCode()}), "not a plain PyTorch state dict"),
        ("torch.save([1, 2, 3])", "not an EfficientNet-Lite0 state dict"),
    ],
)
def test_a_bad_rgb_encoder_file_is_one_line(tmp_path, capsys, content, says):
    from stage1_extract.efficientnet_lite import load_efficientnet_lite0

    path = tmp_path / "enc.pth"
    if isinstance(content, str):  # a plain PyTorch file of the wrong content
        import torch

        torch.save([1, 2, 3], path)
    else:
        _write(path, content)
    with pytest.raises(MMCLError) as e:
        load_efficientnet_lite0(path)
    assert str(e.value).startswith(f"{path}: {says}") and "\n" not in str(e.value)
    assert "this ran" not in capsys.readouterr().out


# --------------------------------------------------------------------------- #21 item 9: read-only or full outputs


@pytest.fixture
def read_only(tmp_path):
    """A folder no file can be written in: a read-only tmpfs as root (root writes through permission bits)."""
    import os
    import subprocess

    folder = tmp_path / "read-only"
    folder.mkdir()
    if os.geteuid() == 0:
        mount = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "ro,size=1M", "tmpfs", str(folder)], capture_output=True, text=True
        )
        if mount.returncode != 0:
            pytest.skip(f"running as root and cannot mount a read-only tmpfs: {mount.stderr.strip()}")
        yield folder
        subprocess.run(["umount", str(folder)], check=True)
    else:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)


def test_a_writer_that_fails_for_want_of_space_is_one_line(tmp_path):
    import errno

    from shared.cache_io import atomic_path
    from shared.errors import OutputError

    target = tmp_path / "out.json"
    with pytest.raises(OutputError, match=f"cannot write {target}: No space left on device"):
        with atomic_path(target) as tmp:
            tmp.write_text("{")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert list(tmp_path.iterdir()) == []  # nothing half-written


@pytest.fixture(scope="module")
def tiny_run(joint_run) -> Path:
    """The shared skeleton-only run."""
    return joint_run


@pytest.mark.parametrize("command", ["export-pyskl", "export", "ensemble --out"])
def test_an_output_on_a_read_only_file_system_is_one_line(command, cache, tiny_run, read_only):
    args = {
        "export-pyskl": ["export-pyskl", "--cache", cache, "--out", read_only / "x.pkl", "--quiet"],
        "export": ["export", "--checkpoint", tiny_run / "last.pt", "--out", read_only / "e", "--format", "torchscript"],
        "ensemble --out": [
            "ensemble",
            tiny_run / "eval" / "scores.npz",
            tiny_run / "eval" / "scores.npz",
            "--out",
            read_only / "ens.json",
        ],
    }[command]
    result = invoke(*args, ok=False)
    assert isinstance(result.exception, MMCLError), repr(result.exception)
    assert f"cannot write {read_only}" in str(result.exception) and "\n" not in str(result.exception)


@pytest.mark.parametrize(
    "frame_index, says",
    [
        (np.array([0, np.nan, 2, 3]), "frame_index[1] is nan"),
        (np.array([0, 1, 2**33, 3]), "frame_index[2] is 8589934592"),
        (np.array([0, 1.5, 2, 3]), "frame_index[1] is 1.5"),
    ],
)
def test_frame_indices_that_would_wrap_are_refused(tmp_path, frame_index, says):
    from shared.array_skeleton import read_array_skeleton

    path = tmp_path / "s.npz"
    np.savez(path, joints=np.zeros((4, 25, 3), np.float32), frame_index=frame_index)
    with pytest.raises(MMCLError, match=re.escape(f"s.npz: {says}")):
        read_array_skeleton(path)


def test_a_fifo_as_video_or_skeleton_is_refused_without_waiting(tmp_path):
    import os

    from shared.readers import read_sample
    from shared.registry import NTU60
    from stage1_extract.video import open_frames

    fifo = tmp_path / "S001C001P001R001A001_rgb.avi"
    os.mkfifo(fifo)
    with pytest.raises(MMCLError, match="not a regular file"):
        open_frames(fifo)  # before: the decoder opened it and waited forever
    skeleton = tmp_path / "S001C001P001R001A001.skeleton"
    os.mkfifo(skeleton)
    with pytest.raises(MMCLError, match="S001C001P001R001A001.skeleton: not a regular file"):
        read_sample(NTU60, skeleton)


def test_bit_flips_in_a_checkpoints_pickle_are_refused_in_one_line(tiny_run, tmp_path):
    """#21 item 9: 11 of 400 single-bit flips in last.pt's pickle part were KeyError/TypeError/IndexError
    tracebacks. Each flip now loads (the checksum then refuses any change that matters) or is one CheckpointError."""
    import zipfile

    from stage2_train.training.checkpoint import CheckpointError, load_checkpoint

    original = (tiny_run / "last.pt").read_bytes()
    with zipfile.ZipFile(tiny_run / "last.pt") as z:
        info = next(i for i in z.infolist() if i.filename.endswith("data.pkl"))
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)  # the stored pickle bytes
    rng = np.random.default_rng(0)
    outcomes = {"loaded": 0, "refused": 0}
    for bit in rng.choice(info.compress_size * 8, size=60, replace=False):
        damaged = bytearray(original)
        damaged[start + bit // 8] ^= 1 << (bit % 8)
        path = tmp_path / "flipped.pt"
        path.write_bytes(bytes(damaged))
        try:
            load_checkpoint(path)
            outcomes["loaded"] += 1
        except CheckpointError as e:
            assert str(e).startswith(str(path)) and "\n" not in str(e)
            outcomes["refused"] += 1
    assert outcomes["refused"] > 0 and sum(outcomes.values()) == 60, outcomes  # a loaded one matched its checksum


def test_a_garbage_onnx_model_is_one_line(tiny_run, tmp_path):
    pytest.importorskip("onnxruntime")
    export = tmp_path / "e"
    invoke("export", "--checkpoint", tiny_run / "last.pt", "--out", export, "--format", "torchscript")
    (export / "model.onnx").write_bytes(np.random.default_rng(0).bytes(2000))
    sample = tmp_path / "s.npy"
    np.save(sample, np.zeros((10, 25, 3), np.float32) + [0, 0, 3])
    result = invoke("predict", sample, "--model", export / "model.onnx", ok=False)
    assert isinstance(result.exception, MMCLError), repr(result.exception)
    assert str(result.exception).startswith(f"{export / 'model.onnx'}: not a loadable ONNX model")
