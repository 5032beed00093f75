"""The figures people read: confusion cells carry their percentages and the title names the run
and its top-1; the training curves show loss and top-1 per split."""

import numpy as np

from stage2_train.evaluation.plots import confusion_figure, confusion_title, curves_figure


def texts(fig) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def test_confusion_shows_percentages_and_the_run():
    confusion = np.array([[3, 1, 0], [0, 2, 0], [0, 0, 0]])
    meta = {"dataset": "demo", "protocol": "xsub", "stream": "bone", "split": "test"}
    title = confusion_title(meta, top1=5 / 6, num_samples=6)
    assert title == "demo xsub bone, test split: top-1 83.33 % (6 samples)"
    fig = confusion_figure(confusion, ["a", "b", "c"], title)
    assert sorted(texts(fig)) == ["100", "25", "75"]  # non-empty cells only, % of the true class
    assert fig.axes[0].get_title() == title


def test_confusion_stays_legible_at_120_classes():
    rng = np.random.default_rng(0)
    confusion = np.diag(rng.integers(1, 5, 120))
    fig = confusion_figure(confusion, [f"class {i}" for i in range(120)], "t")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()][:3] == ["0", "1", "2"]  # indices, not names
    assert len(ax.texts) == 120 and min(t.get_fontsize() for t in ax.texts) >= 3.5
    assert fig.get_size_inches()[0] <= 40


def test_curves_show_loss_and_each_split():
    rows = [
        {"epoch": e, "loss": 2 / e, "loss_ce": 1.5 / e, "train_top1": 0.2 * e, "val_top1": 0.1 * e} for e in (1, 2, 3)
    ]
    fig = curves_figure(rows, "run")
    loss, top1 = fig.axes
    assert {line.get_label() for line in loss.lines} == {"loss", "loss_ce"}
    assert {line.get_label() for line in top1.lines} == {"train_top1", "val_top1"}
    np.testing.assert_allclose(top1.lines[0].get_ydata(), [20, 40, 60])


def test_zero_shot_title_names_the_run_the_target_and_refinement():
    """It once read "joint, xsub test split split" (no run, no dataset, no sign of refinement)."""
    meta = {
        "checkpoint": "runs/demo-xsub-joint-seed1-20261205-080000/last.pt",
        "trained_on": "demo",
        "stream": "joint",
        "target": "sysu",
        "split": "xsub test split",
        "scores": "refined",
    }
    assert confusion_title(meta, top1=0.5, num_samples=8) == (
        "demo-xsub-joint-seed1-20261205-080000: demo joint model on sysu, xsub test split, scores refined by FRM: "
        "top-1 50.00 % (8 samples)"
    )


def test_confusion_colour_bar_is_in_percent():
    fig = confusion_figure(np.array([[3, 1], [0, 2]]), ["a", "b"], "t")
    colour_bar = fig.axes[1]
    assert colour_bar.get_ylim() == (0.0, 100.0) and "%" in colour_bar.get_ylabel()
