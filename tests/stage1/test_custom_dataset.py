"""A dataset of one's own: the manifest is checked whole with messages that name the row, and the
README's worked example runs end to end: `mmcl extract --dataset custom --manifest FILE`, then
training, prediction from an array file, and zero-shot into it, all from the cache alone."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from shared.cache_schema import SkeletonCache
from shared.custom_dataset import ManifestError, load_manifest
from shared.readers import read_sample
from stage1_extract.demo.custom import CLASSES, NAME, generate_custom
from stage1_demo import demo_model_args
from stage2_cache import write_tiny_cache
from stage2_run import COMMON, ONE_EPOCH, SKELETON_ONLY, invoke

TINY_YAML = "base_channel: 8\n"


def _manifest(folder: Path, rows: list[dict], **keys) -> Path:
    """A kinect_v1 manifest over `rows` (written as samples.csv) with `keys` replaced."""
    folder.mkdir(parents=True, exist_ok=True)
    doc = {
        "name": "mine",
        "layout": "kinect_v1",
        "classes": ["wave", {"name": "squat", "ntu_id": 80}],
        "protocols": ["xsub"],
        "samples": "samples.csv",
        **keys,
    }
    with open(folder / "samples.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    path = folder / f"manifest-{len(list(folder.glob('manifest*')))}.yaml"
    path.write_text(json.dumps(doc))  # JSON is YAML
    return path


ROW = {"name": "a", "label": "wave", "skeleton": "a.npy", "xsub": "train"}


def test_manifest_builds_the_dataset_spec(tmp_path):
    rows = [ROW, {**ROW, "name": "b", "label": "1", "xsub": "TEST"}]
    m = load_manifest(_manifest(tmp_path, rows, persons=2, color_resolution=[640, 480]))
    spec = m.spec
    assert (spec.name, spec.layout_name, spec.num_person, spec.color_resolution) == ("mine", "kinect_v1", 2, (640, 480))
    assert spec.class_names == ["wave", "squat"] and [c.ntu_id for c in spec.classes] == [None, 80]
    assert [spec.label_of_action(s.meta.action) for s in m.samples] == [0, 1]  # by name, and by index
    assert spec.protocol("xsub").train_names == {"a"}
    assert m.samples[0].skeleton == tmp_path / "a.npy" and m.samples[0].video is None


@pytest.mark.parametrize(
    "keys, rows, message",
    [
        ({"layout": "coco17"}, [ROW], "layout 'coco17' is not one of"),
        ({"name": "ntu60"}, [ROW], "is a built-in dataset"),
        ({"name": "a/b"}, [ROW], "names the cache folder"),
        ({"classes": ["wave", "wave"]}, [ROW], "class name 'wave' appears more than once"),
        ({"classes": [{"name": "x", "ntu_id": 121}]}, [ROW], r"not an NTU RGB\+D 120 action id"),
        ({"protocls": ["xsub"]}, [ROW], "unknown key"),
        ({}, [{**ROW, "label": "jump"}], r"samples.csv, row 2: label 'jump' is not one of the classes"),
        ({}, [ROW, {**ROW, "xsub": "val"}], r"row 3: xsub is 'val'; expected train or test"),
        ({}, [ROW, ROW], "sample name 'a' appears more than once"),
        ({}, [{**ROW, "skeleton": "a.csv"}], "unknown skeleton file ending"),
        ({}, [{**ROW, "spilt": "x"}], "unknown column"),
        ({}, [{**ROW, "subject": "one"}], "subject 'one' is not a whole number"),
        (
            {},
            [{**ROW, "name": "../../outside"}],
            r"row 2: name '../../outside' is refused: it contains a path separator",
        ),
        ({}, [{**ROW, "name": ".."}], r"row 2: name '..' is refused: it contains '..'"),
        ({}, [{**ROW, "name": "a\x1bb"}], "is refused: it contains a control character"),
    ],
)
def test_a_bad_manifest_names_the_file_row_and_problem(tmp_path, keys, rows, message):
    with pytest.raises(ManifestError, match=message):
        load_manifest(_manifest(tmp_path, rows, **keys))


def test_every_problem_of_the_sample_table_is_reported_in_one_pass(tmp_path):
    """A split `trian` in one row and a label `wavy` in another: both at once (the second used to
    appear only after fixing the first), one line each, plus a repeated name."""
    rows = [ROW, {**ROW, "name": "b", "xsub": "trian"}, {**ROW, "name": "c", "label": "wavy"}, {**ROW, "name": "b"}]
    with pytest.raises(ManifestError) as caught:
        load_manifest(_manifest(tmp_path, rows))
    lines = str(caught.value).splitlines()
    assert lines[0].endswith("samples.csv: 3 problems (each row checked):")
    assert "row 3: xsub is 'trian'; expected train or test" in lines[1]
    assert "row 4: label 'wavy' is not one of the classes" in lines[2]
    assert "sample name 'b' appears more than once" in lines[3]


def test_every_problem_of_one_row_is_reported_in_one_pass(tmp_path):
    """One row with a split `trian`, a label `wavy`, a subject `one` and a skeleton `b.csv`: four lines,
    not the first problem alone."""
    rows = [{**ROW, "name": "b", "xsub": "trian", "label": "wavy", "subject": "one", "skeleton": "b.csv"}, ROW]
    with pytest.raises(ManifestError) as caught:
        load_manifest(_manifest(tmp_path, rows))
    lines = str(caught.value).splitlines()
    assert lines[0].endswith("samples.csv: 4 problems (each row checked):")
    assert all("row 2:" in line for line in lines[1:]) and len(lines) == 5
    for part in (
        "unknown skeleton file ending",
        "xsub is 'trian'",
        "subject 'one' is not a whole number",
        "label 'wavy' is not one of the classes",
    ):
        assert any(part in line for line in lines[1:]), part


def test_array_files_are_fitted_to_the_layout_and_checked(tmp_path):
    spec = load_manifest(_manifest(tmp_path, [ROW], persons=2)).spec
    np.save(tmp_path / "one.npy", np.ones((4, 20, 3), np.float32))
    assert read_sample(spec, tmp_path / "one.npy").joints.shape == (4, 2, 20, 3)  # the absent person: zeros
    np.save(tmp_path / "ntu.npy", np.ones((4, 25, 3), np.float32))
    with pytest.raises(Exception, match="25 joints per person; mine's layout kinect_v1 has 20"):
        read_sample(spec, tmp_path / "ntu.npy")
    np.savez(tmp_path / "nan.npz", joints=np.full((4, 20, 3), np.nan, np.float32))
    with pytest.raises(Exception, match="nan.npz"):
        read_sample(spec, tmp_path / "nan.npz")


@pytest.fixture(scope="module")
def example(tmp_path_factory, demo_models) -> Path:
    """The README's worked example (a small cast), extracted with the demo models."""
    work = tmp_path_factory.mktemp("custom")
    generate_custom(work / "data", subjects=(1, 2), trials=(1,), frames=(20, 26), workers=1, progress=False)
    np.save(work / "data" / "skeletons" / "broken.npy", np.zeros((0, 20, 3), np.float32))
    with open(work / "data" / "samples.csv", "a", newline="") as f:  # one broken sample: recorded, skipped
        f.write("broken,wave,skeletons/broken.npy,,1,train\n")
    (work / "tiny.yaml").write_text(TINY_YAML)
    invoke(
        "extract",
        "--dataset",
        "custom",
        "--manifest",
        work / "data" / "manifest.yaml",
        "--out",
        work / "cache",
        *demo_model_args(demo_models),
        "--workers",
        0,
        "--quiet",
        ok=False,
    )
    return work


@pytest.mark.integration
def test_extract_writes_a_cache_that_describes_its_dataset(example):
    skeletons = SkeletonCache(example / "cache" / NAME)
    assert len(skeletons) == 12 and [f[0] for f in skeletons.failures] == ["broken"]
    spec = skeletons.spec  # from the file's card: the registry does not know this dataset
    assert spec.class_names == [n for n, _ in CLASSES.values()]
    assert [c.ntu_id for c in spec.classes] == [i for _, i in CLASSES.values()]
    assert skeletons.layout == "kinect_v1" and skeletons.has_color
    train = {skeletons.names[i] for i in skeletons.split_indices("xsub", train=True)}
    assert train == {n for n in skeletons.names if n.startswith("p01")}
    assert spec.protocol("xsub").train_names == train
    features = list((example / "cache" / NAME / "features").glob("*.h5"))
    assert len(features) == 1  # every sample has its video: RGB and text features for all


@pytest.mark.integration
def test_train_predict_and_zeroshot_on_a_custom_cache(example):
    run = example / "run"
    invoke(
        "train",
        "--cache",
        example / "cache",
        "--work-dir",
        run,
        "--config",
        example / "tiny.yaml",
        "--recipe",
        "demo",
        "--batch-size",
        "3",
        "--test-batch-size",
        "3",
        "--device",
        "cpu",
        *ONE_EPOCH,
    )
    summary = json.loads((run / "eval" / "summary.json").read_text())
    assert summary["num_samples"] == 6
    result = invoke("predict", "--checkpoint", run / "last.pt", example / "data" / "skeletons" / "p02_squat_1.npz")
    assert "kinect_v1 joint order" in result.output and "squat" in result.output
    # an NTU-layout model scores the custom classes through the NTU ids of its manifest
    ntu_run = example / "ntu-run"
    cache = write_tiny_cache(example / "ntu", frames=(12, 20), features=False)
    invoke(
        "train",
        "--cache",
        cache,
        "--work-dir",
        ntu_run,
        "--config",
        example / "tiny.yaml",
        *COMMON,
        *ONE_EPOCH,
        *SKELETON_ONLY,
    )
    invoke(
        "zeroshot", "--checkpoint", ntu_run / "last.pt", "--cache", example / "cache" / NAME, "--out", example / "zs"
    )
    zs = json.loads((example / "zs" / "zeroshot.json").read_text())
    assert zs["target"] == NAME and zs["num_samples"] == 12
