"""Stage-1 extraction end to end on a small generated demo dataset with the tiny demo models:
feature file contents and failures, crash-safe resume after SIGKILL, shards and merge, --limit,
feature sets side by side, locks."""

import dataclasses
import signal
import subprocess

import numpy as np
import pytest
from processes import wait_for_files
from stage1_demo import (
    ACTIONS,
    BROKEN,
    CLI_ENV,
    IMAGE,
    OPTIONS,
    SUBJECTS,
    assert_same_features,
    cli_args,
    cli_command,
    config,
    new_cache,
    specs,
)

from shared.cache_io import output_lock
from shared.cache_schema import FeatureFile, SkeletonCache, feature_files, read_feature_file, resolve_features
from shared.errors import LockedError, MMCLError
from shared.registry import DEMO, SYSU
from stage1_extract.extract import ExtractConfig, extract_features
from stage1_extract.model_specs import ModelSpecs
from stage1_extract.provenance import default_feature_set_name
from stage1_extract.shards import Shard, merge_shards
from stage1_extract.temporal_image import TemporalImageConfig, temporal_image

# --------------------------------------------------------------------------- tests


def test_feature_file_contents_failures_and_provenance(reference, demo_root, demo_models, skeleton_file):
    skeletons = SkeletonCache(skeleton_file)
    features = FeatureFile(reference.output, skeletons)  # same names, same order (hash checked)
    block, header = features.block, features.header
    n, k, q = len(skeletons), IMAGE.frames, len(header.questions)
    assert (
        n == len(SUBJECTS) * len(ACTIONS)
        and reference.output.name == default_feature_set_name(specs(demo_models), IMAGE) + ".h5"
    )
    assert block.rgb_pooled.shape[0] == n and block.rgb_pooled.dtype == np.float16
    d = block.rgb_pooled.shape[1]
    assert block.rgb_frames.shape == (n, 0, d) and block.rgb_frames.dtype == np.float16  # --frame-features off
    assert block.yes_prob.shape == (n, q) and block.yes_prob.dtype == np.float32
    assert block.text_embedding.shape == (n, 384) and header.class_embedding.shape == (len(DEMO.classes), 384)

    broken = np.array([name in BROKEN for name in block.name])
    np.testing.assert_array_equal(block.rgb_valid, ~broken)
    np.testing.assert_array_equal(block.text_valid, ~broken)
    assert not block.rgb_pooled[broken].any() and np.isnan(block.yes_prob[broken]).all()
    good = block.yes_prob[~broken]
    assert ((good >= 0) & (good <= 1) | np.isnan(good)).all() and np.isfinite(good).any()
    assert all(block.description[i] for i in np.flatnonzero(~broken))
    failures = {name: (stage, reason) for name, stage, reason in block.failures}
    assert set(failures) == set(BROKEN)
    for name, words in BROKEN.items():
        assert failures[name][0] == "video" and words in failures[name][1], failures[name]
    assert reference.exit_code == 1 and "3 samples failed" in reference.report()

    attrs = header.attrs
    assert attrs["frames"] == k and not attrs["frame_features"]
    assert list(attrs["image_size"]) == [280, 112] and attrs["crop_margin"] == 0.15
    assert attrs["mllm_id"] == str(demo_models["mllm"]) and attrs["mllm_revision"].startswith("local:")
    assert attrs["rgb_encoder_id"] == "efficientnet-lite0" and attrs["rgb_encoder_revision"]
    assert list(attrs["rgb_image_size"]) == [224, 224] and attrs["mllm_backend"] == "transformers"
    assert attrs["rgb_input"] == "shorter-side-224-aspect-kept"  # provenance of the aspect rule
    assert attrs["crop_boxes"] == "colour coordinates"
    assert "torch" in attrs["library_versions"] and header.questions[0] in attrs["prompts"]

    images = sorted(p.stem for p in (reference.output.parent / (reference.output.stem + ".images")).glob("*.jpg"))
    assert images == sorted(name for name in block.name if name not in BROKEN)


def test_stored_embeddings_are_those_of_the_temporal_image(reference, demo_root, demo_models, skeleton_file):
    from stage1_extract.rgb_encoders import build_rgb_encoder
    from stage1_extract.text_encoder import TextEncoder

    skeletons = SkeletonCache(skeleton_file)
    _, block = read_feature_file(reference.output)
    row = block.name.index("S001C001P001R001A058")  # two people: the union box
    video = demo_root / "nturgb+d_rgb" / f"{block.name[row]}_rgb.avi"
    image = temporal_image(video, skeletons.sample(row), skeletons.color_resolution, IMAGE)
    encoder = build_rgb_encoder("efficientnet-lite0", "cpu")
    pooled = encoder.encode([image.image])[0]
    np.testing.assert_allclose(block.rgb_pooled[row].astype(np.float32), pooled, rtol=2e-2, atol=2e-3)
    text = TextEncoder("sentence-transformers/all-MiniLM-L6-v2", "cpu").encode([block.description[row]])[0]
    np.testing.assert_allclose(block.text_embedding[row].astype(np.float32), text, rtol=2e-2, atol=2e-3)


def test_frame_features_are_opt_in_and_leave_the_rest_unchanged(
    reference, demo_root, demo_models, models, skeleton_file, tmp_path
):
    """--frame-features adds each crop's embedding; pooled RGB and text equal the default run's."""
    from stage1_extract.rgb_encoders import build_rgb_encoder

    skeletons = SkeletonCache(skeleton_file)
    limit = 2 * OPTIONS["batch_size"]  # the reference's first batches: the same model inputs
    out = new_cache(tmp_path, skeleton_file)
    summary = extract_features(
        config(out, demo_root, demo_models, limit=limit, frame_features=True, feature_set="with-frames"), models
    )
    header, block = read_feature_file(summary.output)
    _, default = read_feature_file(reference.output)
    assert header.attrs["frame_features"] and block.rgb_frames.shape[1:] == (IMAGE.frames, default.rgb_pooled.shape[1])
    np.testing.assert_array_equal(block.rgb_valid[:limit], default.rgb_valid[:limit])
    rows = np.flatnonzero(default.rgb_valid[:limit])
    assert len(rows) >= 2
    np.testing.assert_array_equal(block.rgb_pooled[rows], default.rgb_pooled[rows])
    np.testing.assert_array_equal(block.yes_prob[rows], default.yes_prob[rows])
    encoder = build_rgb_encoder("efficientnet-lite0", "cpu")
    for row in rows:
        video = demo_root / "nturgb+d_rgb" / f"{block.name[row]}_rgb.avi"
        image = temporal_image(video, skeletons.sample(row), skeletons.color_resolution, IMAGE)
        np.testing.assert_allclose(
            block.rgb_frames[row].astype(np.float32), encoder.encode(image.crops), rtol=2e-2, atol=2e-3
        )
    again = extract_features(config(out, demo_root, demo_models, limit=limit, feature_set="with-frames"), models)
    assert (again.skipped, again.processed) == (limit, 0)  # a file with frames serves a run without them
    plain = config(out, demo_root, demo_models, limit=1, feature_set="plain")
    extract_features(plain, models)
    with pytest.raises(MMCLError, match="frame_features"):  # but not the other way round
        extract_features(dataclasses.replace(plain, frame_features=True), models)


@pytest.mark.integration
def test_killed_run_resumes_to_the_same_cache(reference, demo_root, demo_models, skeleton_file, tmp_path, capsys):
    from stage1_extract.cli import extract

    out = new_cache(tmp_path, skeleton_file)
    parts = out / "demo" / "features" / (reference.output.stem + ".parts")
    run = subprocess.Popen(
        cli_command(out, demo_root, demo_models), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=CLI_ENV
    )
    wait_for_files(run, parts, "part-*.h5", "its first chunk was committed")
    run.send_signal(signal.SIGKILL)
    run.wait()
    committed = len(list(parts.glob("part-*.h5")))
    final = out / "demo" / "features" / reference.output.name
    assert not final.exists() and 1 <= committed < 3, "killed mid-run: some chunks committed, not all"

    # the same command again (in this process, to save a start-up; one torch thread, as conftest sets)
    status = extract.main(cli_args(out, demo_root, demo_models), standalone_mode=False)
    report = capsys.readouterr().out
    assert status == 1  # three samples failed, recorded
    assert f"({2 * committed} done before" in report and "3 samples failed" in report
    assert not parts.exists()
    assert_same_features(final, reference.output)


def test_shards_merge_into_the_feature_set(reference, demo_root, demo_models, models, skeleton_file, tmp_path):
    out = new_cache(tmp_path, skeleton_file)
    features = out / "demo" / "features"
    first = extract_features(config(out, demo_root, demo_models, shard=Shard(0, 2)), models)
    assert first.output == features / f"{reference.output.stem}.shard-0-of-2.h5"
    with pytest.raises(MMCLError, match=r"shard\(s\) 1/2 .* missing"):
        merge_shards(out / "demo", reference.output.stem)
    extract_features(config(out, demo_root, demo_models, shard=Shard(1, 2)), models)
    assert feature_files(out / "demo") == []  # shard files are not feature sets
    merged = merge_shards(out / "demo", reference.output.stem)
    assert merged.output == features / reference.output.name and merged.exit_code == 1
    assert not list(features.glob("*.shard-*.h5"))
    rerun = extract_features(config(out, demo_root, demo_models, shard=Shard(1, 2)))  # merged: nothing to do
    assert rerun.processed == 0 and rerun.output == merged.output
    assert_same_features(merged.output, reference.output)  # shards hold whole batches of the unsharded run


def test_sharded_run_needs_the_skeleton_file_first(demo_root, demo_models, tmp_path):
    with pytest.raises(MMCLError, match="written once before a sharded run"):
        extract_features(config(tmp_path / "cache", demo_root, demo_models, shard=Shard(0, 3)))
    with pytest.raises(MMCLError, match="expected I/N"):
        Shard.parse("3/3")


def test_limit_feature_sets_side_by_side_other_settings_and_locks(
    demo_root, demo_models, models, skeleton_file, tmp_path
):
    out = new_cache(tmp_path, skeleton_file)
    five = extract_features(config(out, demo_root, demo_models, limit=2), models)
    three = extract_features(
        config(out, demo_root, demo_models, limit=2, image=TemporalImageConfig(3, (168, 112))), models
    )
    assert five.output != three.output and "__k3" in three.output.name
    assert sorted(feature_files(out / "demo")) == sorted([five.output, three.output])
    with pytest.raises(MMCLError, match="several feature sets"):
        resolve_features(out / "demo", None)
    features = FeatureFile(three.output, SkeletonCache(out / "demo"))
    extracted = np.array([bool(name) for name in features.block.name])
    assert extracted.tolist() == [True, True] + [False] * (len(extracted) - 2)  # the rest stays invalid
    assert features.header.attrs["frames"] == 3 and not features.block.rgb_valid[2:].any()

    again = extract_features(config(out, demo_root, demo_models, limit=2))  # complete: nothing to do
    assert again.processed == 0 and again.skipped == 2
    other = config(
        out,
        demo_root,
        demo_models,
        limit=2,
        feature_set=five.output.stem,
        image=TemporalImageConfig(5, (280, 112), margin=0.3),
    )
    with pytest.raises(MMCLError, match="other settings.*crop_margin"):
        extract_features(other)
    with output_lock(five.output), pytest.raises(LockedError, match="another process"):
        extract_features(config(out, demo_root, demo_models, limit=2))


def test_default_root_error_names_where_it_looked(tmp_path, monkeypatch):
    from stage1_extract.cli import extract

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MMCL_DATA", raising=False)
    with pytest.raises(MMCLError, match=r"no ntu60 data at data/ntu60 .*--root"):
        extract.main(["--dataset", "ntu60"], standalone_mode=False)


def test_frame_folder_dataset_with_its_own_colour_resolution(demo_models, models, tmp_path):
    """SYSU-3D-HOI keeps RGB as JPEG frames in <subject>/video<k>/rgb/, colour pixels at 640x480."""
    from stage1_extract.demo.dataset import generate_sysu
    from stage1_extract.video import video_path

    root = tmp_path / "data" / "sysu"
    generate_sysu(root, subjects=(1, 2), activities=(3,), frames=(20, 25), workers=1, progress=False)
    cfg = ExtractConfig(
        dataset="sysu",
        root=root,
        out=tmp_path / "cache",
        models=specs(demo_models),
        image=IMAGE,
        batch_size=2,
        chunk_size=2,
        workers=0,
        progress=False,
    )
    summary = extract_features(cfg, models)
    skeletons = SkeletonCache(tmp_path / "cache" / "sysu")
    features = FeatureFile(summary.output, skeletons)
    assert summary.exit_code == 0 and features.block.name == ["s01_a03", "s02_a03"]
    assert features.block.rgb_valid.all() and features.block.text_valid.all()
    assert features.header.class_names == SYSU.class_names
    folder = video_path(SYSU, root / "3DvideoNorm", "s02_a03")
    image = temporal_image(folder, skeletons.sample(1), skeletons.color_resolution, IMAGE)
    widths = image.boxes[:, 2] - image.boxes[:, 0]
    assert (widths < 640 / 2).all()  # cropped to the person, not the whole 640-wide frame


class FailsOnBlack:
    """A real model that raises on an all-black image (fault injection for error isolation)."""

    def __init__(self, model, method: str):
        self.model, self.method = model, method

    def __getattr__(self, name):
        return getattr(self.model, name)

    def __call(self, images, *args):
        if any(not np.asarray(im).any() for im in images):
            raise RuntimeError("CUDA out of memory (injected)")
        return getattr(self.model, self.method)(images, *args)

    def encode(self, images):
        return self.__call(images)

    def answer(self, images, prompts):
        return self.__call(images, prompts)


def test_a_model_error_fails_only_its_sample_and_a_broken_model_stops_the_run(models, skeleton_file):
    from PIL import Image

    from stage1_extract.decode import Decoded
    from stage1_extract.extract import FailureStreak
    from stage1_extract.featurize import StageTimes, run_models
    from stage1_extract.provenance import feature_header, request_attrs

    skeletons = SkeletonCache(skeleton_file)
    request = request_attrs(DEMO, ModelSpecs(), IMAGE, models.prompts)
    header = feature_header(skeletons, DEMO, request, models)
    faulty = dataclasses.replace(
        models, rgb=FailsOnBlack(models.rgb, "encode"), mllm=FailsOnBlack(models.mllm, "answer")
    )
    grey, black = Image.new("RGB", IMAGE.image_size, (128, 128, 128)), Image.new("RGB", IMAGE.image_size)
    crops = [Image.new("RGB", (56, 112), (128, 128, 128))] * IMAGE.frames
    batch = [
        Decoded(0, skeletons.names[0], grey, crops),
        Decoded(1, skeletons.names[1], black, crops),
        Decoded(2, skeletons.names[2], error="no such video"),
    ]
    block = run_models(batch, faulty, header, StageTimes())
    assert block.rgb_valid.tolist() == [True, False, False] and block.text_valid.tolist() == [True, False, False]
    assert sorted((name, stage) for name, stage, _ in block.failures) == sorted(
        [(skeletons.names[1], "rgb"), (skeletons.names[1], "mllm"), (skeletons.names[2], "video")]
    )
    assert all("injected" in reason for _, stage, reason in block.failures if stage != "video")
    FailureStreak(2).update(block)  # one sample failed, one did not: no streak

    all_black = [Decoded(i, skeletons.names[i], black, crops) for i in range(2)]
    with pytest.raises(MMCLError, match="failed on 2 samples in a row"):
        FailureStreak(2).update(run_models(all_black, faulty, header, StageTimes()))


def test_skeletons_imported_from_ctrgcn_npz_are_kept(tmp_path):
    from stage1_extract.cli import extract
    from stage1_extract.extract import ensure_skeletons

    names = ["S001C001P001R001A001", "S001C001P003R001A008", "S002C001P002R001A023"]  # xsub: train, test, train
    (tmp_path / "names.txt").write_text("\n".join(names) + "\n")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 300, 150)).astype(np.float32)
    x[:, 40:] = 0  # CTR-GCN pads to 300 frames
    onehot = np.eye(len(DEMO.classes))[[DEMO.label_of_action(a) for a in (1, 8, 23)]]
    np.savez(tmp_path / "demo_cs.npz", x_train=x[[0, 2]], y_train=onehot[[0, 2]], x_test=x[[1]], y_test=onehot[[1]])
    out = tmp_path / "cache"
    status = extract.main(
        [
            "--dataset",
            "demo",
            "--import-npz",
            str(tmp_path / "demo_cs.npz"),
            "--names",
            str(tmp_path / "names.txt"),
            "--out",
            str(out),
            "--skeletons-only",
            "--quiet",
        ],
        standalone_mode=False,
    )
    cache = SkeletonCache(out / "demo")
    assert status == 0 and sorted(cache.names) == sorted(names) and cache.meta["frame_count"].tolist() == [40] * 3
    # a later feature run keeps it: there are no raw skeleton files under --root to rebuild it from
    (tmp_path / "data").mkdir()
    kept = ensure_skeletons(DEMO, ExtractConfig(dataset="demo", root=tmp_path / "data", out=out))
    assert kept.names_hash == cache.names_hash
