import json

import numpy as np
import pytest

from shared.cache_schema import SkeletonCache
from shared.errors import MMCLError, SkeletonFormatError
from shared.readers import list_samples, read_sample
from shared.registry import DATASETS, DEMO, NTU60, NTU120, get_dataset
from stage1_extract.skeleton_cache import build_skeleton_cache, import_ctrgcn_npz


def test_ntu_classes_and_protocol_rules():
    assert NTU120.num_classes == 120 and NTU60.num_classes == 60
    assert NTU120.classes[0].name == "drink water" and NTU120.classes[119].ntu_id == 120
    assert NTU60.class_names == NTU120.class_names[:60]
    meta = NTU120.parse_name("S018C002P045R001A120")
    assert (meta.setup, meta.camera, meta.subject, meta.replication, meta.action) == (18, 2, 45, 1, 120)
    assert NTU120.protocol("xsub").is_train(meta) and NTU120.protocol("xset").is_train(meta)
    assert not NTU120.protocol("xset").is_train(NTU120.parse_name("S017C002P045R001A120"))
    assert NTU60.parse_name("S018C002P045R001A120") is None  # NTU60 is setups 1-17
    assert NTU60.parse_name("S001C001P001R001A061") is None  # and actions 1-60
    assert len(NTU60.missing_samples()) == 302 and len(NTU120.missing_samples()) == 535
    assert NTU60.missing_samples() <= NTU120.missing_samples()
    assert len(NTU60.protocol("xsub").train_values) == 20 and len(NTU120.protocol("xsub").train_values) == 53


def test_every_class_with_an_ntu_counterpart_names_a_real_ntu_id():
    for spec in DATASETS.values():
        for c in spec.classes:
            assert c.ntu_id is None or 1 <= c.ntu_id <= 120, (spec.name, c)
    by_id = get_dataset("utd-mhad").class_index_by_ntu_id()
    assert sorted(by_id) == [8, 9, 23, 63, 80, 96]
    assert set(by_id) <= {c.ntu_id for c in DEMO.classes}  # zero-shot on the demo is meaningful


def test_demo_protocols_have_train_and_test_samples():
    names = [
        f"S{1 + s % 2:03d}C{c:03d}P{s:03d}R{r:03d}A{a:03d}"
        for s in (1, 2, 3, 4, 5)
        for c in (1, 2, 3)
        for r in (1, 2)
        for a in (1, 8, 58)
    ]
    metas = [DEMO.parse_name(n) for n in names]
    for p in DEMO.protocols:
        train = sum(p.is_train(m) for m in metas)
        assert 0 < train < len(metas), p.name


def test_unknown_dataset_and_protocol():
    with pytest.raises(MMCLError, match="unknown dataset 'ntu61'.*ntu60"):
        get_dataset("ntu61")
    with pytest.raises(MMCLError, match="no protocol 'xset'.*xsub, xview"):
        NTU60.protocol("xset")


def test_root_without_the_expected_folders(tmp_path):
    with pytest.raises(MMCLError, match="does not exist"):
        list_samples(NTU60, tmp_path / "nope")
    (tmp_path / "nturgb+d_skeletons").mkdir()
    (tmp_path / "nturgb+d_skeletons" / "readme.txt").write_text("x")
    with pytest.raises(MMCLError, match=r"no NTU RGB\+D 60 skeleton files under"):
        list_samples(NTU60, tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(MMCLError, match="no skeleton folder under .*expected one of .*nturgb"):
        list_samples(NTU60, empty)


def write_ucla(folder, name, frames):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps({"file_name": name, "skeletons": frames}))


def test_nw_ucla_json_reader_and_cache(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "ucla"
    for name in ("a01_s01_e00_v01", "a05_s02_e01_v03", "a12_s03_e02_v02"):
        write_ucla(root / "all_sqe", name, rng.normal(size=(7, 20, 3)).tolist())
    write_ucla(root / "all_sqe", "a02_s01_e00_v01", rng.normal(size=(7, 19, 3)).tolist())
    (root / "all_sqe" / "a03_s01_e00_v01.json").write_text("{not json")
    sample = read_sample("nw-ucla", root / "all_sqe" / "a01_s01_e00_v01.json")
    assert sample.joints.shape == (7, 1, 20, 3) and sample.frame_index.tolist() == list(range(7))
    with pytest.raises(SkeletonFormatError, match=r"a02_s01_e00_v01.json.*\(7, 19, 3\)"):
        read_sample("nw-ucla", root / "all_sqe" / "a02_s01_e00_v01.json")
    path = build_skeleton_cache(get_dataset("nw-ucla"), root, tmp_path / "cache", workers=1, progress=False)
    cache = SkeletonCache(path)
    assert cache.names == ["a01_s01_e00_v01", "a05_s02_e01_v03", "a12_s03_e02_v02"]
    assert cache.labels.tolist() == [0, 4, 9] and cache.splits["view3"].tolist() == [True, False, True]
    assert sorted(f[0] for f in cache.failures) == ["a02_s01_e00_v01", "a03_s01_e00_v01"]
    assert "not a readable JSON" in dict((f[0], f[2]) for f in cache.failures)["a03_s01_e00_v01"]
    mtime = path.stat().st_mtime_ns
    build_skeleton_cache(get_dataset("nw-ucla"), root, tmp_path / "cache", workers=1, progress=False)
    assert path.stat().st_mtime_ns == mtime  # reused, not rebuilt


def test_import_of_ctrgcn_npz(tmp_path):
    names = ["S001C001P001R001A001", "S001C002P003R001A002", "S001C001P003R002A003", "S001C003P002R001A002"]
    rng = np.random.default_rng(0)
    seqs = np.zeros((4, 300, 150), np.float32)
    lengths = [10, 20, 30, 40]
    for i, t in enumerate(lengths):
        seqs[i, :t] = rng.normal(size=(t, 150))
    onehot = np.eye(60, dtype=np.float32)
    train = [0, 3]  # subjects 1 and 2 train under xsub, subject 3 tests
    test = [1, 2]
    np.savez(
        tmp_path / "NTU60_CS.npz", x_train=seqs[train], y_train=onehot[[0, 1]], x_test=seqs[test], y_test=onehot[[1, 2]]
    )
    (tmp_path / "names.txt").write_text("\n".join(names) + "\n")
    path = import_ctrgcn_npz(
        NTU60, tmp_path / "NTU60_CS.npz", tmp_path / "names.txt", "xsub", tmp_path / "cache", progress=False
    )
    cache = SkeletonCache(path)
    assert sorted(cache.names) == sorted(names)
    i = cache.names.index(names[2])
    np.testing.assert_array_equal(cache.sample(i)["joints"].reshape(30, 150), seqs[2, :30])
    assert cache.splits["xsub"][i] == False  # noqa: E712
    with pytest.raises(MMCLError, match=r"protocol \(xview\) does not match this file"):
        import_ctrgcn_npz(
            NTU60, tmp_path / "NTU60_CS.npz", tmp_path / "names.txt", "xview", tmp_path / "cache2", progress=False
        )
