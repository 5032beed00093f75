"""MMCL losses: GRACE InfoNCE against hand-computed values, masking, FRM, loss composition,
and the cross-process gather."""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F

from stage2_train.models.fam import gather_with_grad, grace_infonce
from stage2_train.models.frm import FRM
from stage2_train.models.model_config import FRMConfig
from stage2_train.models.losses import MMCLLoss, MMCLLossConfig, mmcl_loss


def grace_by_hand(G: list[list[float]], C: list[list[float]], tau: float) -> float:
    """Plain-Python GRACE loss, written out term by term (no torch)."""

    def cos(a, b):
        dot = sum(x * y for x, y in zip(a, b))
        return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))

    def ell(U, V, i):  # -log e^{s(u_i,v_i)/t} / (sum_k e^{s(u_i,v_k)/t} + sum_{k!=i} e^{s(u_i,u_k)/t})
        num = math.exp(cos(U[i], V[i]) / tau)
        den = sum(math.exp(cos(U[i], V[k]) / tau) for k in range(len(U)))
        den += sum(math.exp(cos(U[i], U[k]) / tau) for k in range(len(U)) if k != i)
        return -math.log(num / den)

    n = len(G)
    return sum((ell(G, C, i) + ell(C, G, i)) / 2 for i in range(n)) / n


def test_grace_two_pairs_closed_form():
    # g1=(1,0), g2=(0,1); c1=(1,0), c2=(1,1)/sqrt2. Cosines: s(g1,c1)=1, s(g1,c2)=r, s(g2,c1)=0,
    # s(g2,c2)=r, s(g1,g2)=0, s(c1,c2)=r with r = 1/sqrt2.
    tau, r = 0.4, 1 / math.sqrt(2)
    e = lambda s: math.exp(s / tau)  # noqa: E731
    l_g1 = -math.log(e(1) / (e(1) + e(r) + e(0)))  # cross (c1, c2) + intra g2
    l_g2 = -math.log(e(r) / (e(0) + e(r) + e(0)))
    l_c1 = -math.log(e(1) / (e(1) + e(0) + e(r)))  # cross (g1, g2) + intra c2
    l_c2 = -math.log(e(r) / (e(r) + e(r) + e(r)))  # = log 3
    expected = ((l_g1 + l_c1) / 2 + (l_g2 + l_c2) / 2) / 2

    g = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    c = torch.tensor([[1.0, 0.0], [1.0, 1.0]], dtype=torch.float64)
    assert l_c2 == pytest.approx(math.log(3))
    assert grace_infonce(g, c, tau=tau).item() == pytest.approx(expected, rel=1e-12)


def test_grace_three_pairs_matches_hand_loop():
    G = [[1.0, 0.0], [0.6, 0.8], [-1.0, 1.0]]
    C = [[2.0, 1.0], [0.0, -1.0], [1.0, 3.0]]
    for tau in (0.4, 1.0):
        got = grace_infonce(torch.tensor(G, dtype=torch.float64), torch.tensor(C, dtype=torch.float64), tau)
        assert got.item() == pytest.approx(grace_by_hand(G, C, tau), rel=1e-12)


def test_grace_is_scale_invariant_and_symmetric():
    torch.manual_seed(0)
    g, c = torch.randn(5, 8), torch.randn(5, 8)
    torch.testing.assert_close(grace_infonce(g, c), grace_infonce(3 * g, 0.5 * c))
    torch.testing.assert_close(grace_infonce(g, c), grace_infonce(c, g))


def test_mask_removes_rows_as_anchors_and_negatives():
    torch.manual_seed(0)
    g = torch.randn(4, 6, requires_grad=True)
    c = torch.randn(4, 6, requires_grad=True)
    mask = torch.tensor([True, False, True, True])
    masked = grace_infonce(g, c, mask=mask)
    torch.testing.assert_close(masked, grace_infonce(g[mask], c[mask]))
    masked.backward()
    assert torch.all(g.grad[1] == 0) and torch.all(c.grad[1] == 0)
    assert torch.all(g.grad[mask].abs().sum(dim=1) > 0)
    # Whatever sits in an invalid row does not matter.
    g2 = g.detach().clone()
    g2[1] = 1e3
    torch.testing.assert_close(grace_infonce(g2, c.detach(), mask=mask), masked.detach())


@pytest.mark.parametrize("n_valid", [0, 1])
def test_grace_with_too_few_rows_is_zero_not_nan(n_valid):
    g = torch.randn(3, 4, requires_grad=True)
    c = torch.randn(3, 4, requires_grad=True)
    mask = torch.arange(3) < n_valid
    loss = grace_infonce(g, c, mask=mask)
    assert loss.item() == 0.0  # one pair has no negatives: -log(1) = 0
    loss.backward()
    assert torch.isfinite(g.grad).all() and torch.isfinite(c.grad).all()


# --- FRM --------------------------------------------------------------------------------------


def test_frm_starts_as_identity():
    torch.manual_seed(0)
    frm = FRM(FRMConfig(text_dim=5, num_class=4, num_vectors=2, hidden_dim=64))
    logits = torch.randn(3, 4)
    torch.testing.assert_close(frm(logits, torch.randn(3, 5)), logits)


def test_frm_with_hand_set_weights():
    frm = FRM(FRMConfig(text_dim=2, num_class=4, num_vectors=2, hidden_dim=2))
    with torch.no_grad():
        # MLP = identity, so w = softmax(relu(text)).
        for layer in (frm.mlp[0], frm.mlp[2]):
            layer.weight.copy_(torch.eye(2))
            layer.bias.zero_()
        frm.vectors.copy_(torch.tensor([[1.0, 2.0, 3.0, 4.0], [4.0, 4.0, 1.0, 1.0]]))
    text = torch.tensor([[math.log(2), 0.0], [-5.0, -1.0]])  # w = (2/3, 1/3) and (1/2, 1/2)
    logits = torch.tensor([[1.0, -1.0, 2.0, 0.5], [3.0, 1.0, -2.0, 1.0]])
    expected_scale = torch.tensor(
        [
            [2 / 3 * 1 + 1 / 3 * 4, 2 / 3 * 2 + 1 / 3 * 4, 2 / 3 * 3 + 1 / 3 * 1, 2 / 3 * 4 + 1 / 3 * 1],
            [(1 + 4) / 2, (2 + 4) / 2, (3 + 1) / 2, (4 + 1) / 2],
        ]
    )
    torch.testing.assert_close(frm.weights(text), torch.tensor([[2 / 3, 1 / 3], [0.5, 0.5]]))
    torch.testing.assert_close(frm(logits, text), expected_scale * logits)


# --- total loss -------------------------------------------------------------------------------


def batch(n=6, k=5, d=8, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return dict(
        logits=torch.randn(n, k, generator=gen, requires_grad=True),
        labels=torch.randint(0, k, (n,), generator=gen),
        refined=torch.randn(n, k, generator=gen, requires_grad=True),
        feature=torch.randn(n, d, generator=gen, requires_grad=True),
        rgb_proj=torch.randn(n, d, generator=gen, requires_grad=True),
    )


def test_loss_is_typed_and_names_its_metrics_once():
    """A dataclass of scalars, and the names metrics.jsonl gives its parts, in the file's order."""
    b = batch()
    parts = mmcl_loss(b["logits"], b["labels"], refined=b["refined"], feature=b["feature"], rgb_proj=b["rgb_proj"])
    assert isinstance(parts, MMCLLoss)
    assert all(getattr(parts, f.name).shape == () for f in dataclasses.fields(MMCLLoss))
    assert list(parts.metrics()) == ["loss", "loss_ce", "loss_refine", "loss_align", "loss_backbone"]
    assert parts.backbone == 0  # no backbone loss given (CTR-GCN, HD-GCN, ST-GCN++)
    with_own = mmcl_loss(b["logits"], b["labels"], backbone_loss=torch.tensor(0.25, requires_grad=True))
    assert with_own.total.item() == pytest.approx(with_own.ce.item() + 0.25) and with_own.backbone == 0.25
    assert parts.metrics()["loss"] is parts.total and parts.metrics()["loss_align"] is parts.align
    assert parts.total.requires_grad and not parts.ce.requires_grad


@pytest.mark.parametrize("config", [MMCLLossConfig(), MMCLLossConfig(1.0, 0.5, tau=0.1)])
def test_total_is_weighted_sum_over_valid_rows(config):
    b = batch()
    text_valid = torch.tensor([True, True, False, True, False, True])
    rgb_valid = torch.tensor([False, True, True, True, True, False])
    parts = mmcl_loss(
        b["logits"],
        b["labels"],
        config,
        refined=b["refined"],
        text_valid=text_valid,
        feature=b["feature"],
        rgb_proj=b["rgb_proj"],
        rgb_valid=rgb_valid,
    )

    ce = F.cross_entropy(b["logits"], b["labels"])
    refine = F.cross_entropy(b["refined"][text_valid], b["labels"][text_valid])
    align = grace_infonce(b["feature"][rgb_valid], b["rgb_proj"][rgb_valid], tau=config.tau)
    torch.testing.assert_close(parts.ce, ce.detach())
    torch.testing.assert_close(parts.refine, refine.detach())
    torch.testing.assert_close(parts.align, align.detach())
    torch.testing.assert_close(parts.total, ce + config.lambda_refine * refine + config.lambda_align * align)
    assert parts.n_valid_text.item() == 4 and parts.n_valid_rgb.item() == 4


def test_default_lambdas_are_the_papers():
    assert MMCLLossConfig() == MMCLLossConfig(lambda_refine=0.2, lambda_align=0.1, tau=0.4)


def test_no_valid_rows_and_absent_heads_leave_plain_ce():
    b = batch()
    none = torch.zeros(6, dtype=torch.bool)
    parts = mmcl_loss(
        b["logits"],
        b["labels"],
        refined=b["refined"],
        text_valid=none,
        feature=b["feature"],
        rgb_proj=b["rgb_proj"],
        rgb_valid=none,
    )
    ce = F.cross_entropy(b["logits"], b["labels"])
    torch.testing.assert_close(parts.total, ce)
    assert parts.refine.item() == 0 and parts.align.item() == 0
    assert parts.n_valid_text.item() == 0 and parts.n_valid_rgb.item() == 0
    parts.total.backward()
    for name in ("refined", "feature", "rgb_proj"):
        assert torch.all(b[name].grad == 0), name

    plain = mmcl_loss(b["logits"], b["labels"])
    torch.testing.assert_close(plain.total, ce)


def test_gradients_reach_every_input():
    b = batch()
    mmcl_loss(
        b["logits"], b["labels"], refined=b["refined"], feature=b["feature"], rgb_proj=b["rgb_proj"]
    ).total.backward()
    for name in ("logits", "refined", "feature", "rgb_proj"):
        grad = b[name].grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0, name


# --- gather across processes ------------------------------------------------------------------


def test_gather_is_identity_without_process_group():
    assert not dist.is_initialized()
    x = torch.randn(3, 2)
    assert gather_with_grad(x) is x


def test_gather_is_identity_in_a_single_process_group(tmp_path):
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        x = torch.randn(3, 2, requires_grad=True)
        assert gather_with_grad(x) is x
    finally:
        dist.destroy_process_group()


WORKER = textwrap.dedent("""
    import os, sys, torch, torch.distributed as dist
    from stage2_train.models.losses import mmcl_loss

    rank, out = int(sys.argv[1]), sys.argv[2]
    dist.init_process_group("gloo", init_method=f"file://{out}/store", rank=rank, world_size=2)
    torch.manual_seed(0)
    g, c = torch.randn(5, 4), torch.randn(5, 4)
    valid = torch.tensor([True, False, True, True, True])
    rows = slice(0, 3) if rank == 0 else slice(3, 5)  # unequal batches: 3 and 2
    g, c = g[rows].clone().requires_grad_(), c[rows].clone().requires_grad_()
    logits, labels = torch.zeros(g.shape[0], 2), torch.zeros(g.shape[0], dtype=torch.long)
    parts = mmcl_loss(logits, labels, feature=g, rgb_proj=c, rgb_valid=valid[rows])
    parts.total.backward()
    torch.save(dict(align=parts.align, n=parts.n_valid_rgb, g=g.grad, c=c.grad), f"{out}/rank{rank}.pt")
    dist.barrier()
    dist.destroy_process_group()
    # gloo's threads may abort the interpreter's own teardown ("terminate called without an active
    # exception", exit -6) after the results are written: leave without it
    os._exit(0)
""")


@pytest.mark.integration
def test_two_processes_use_the_global_batch(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    procs = [subprocess.Popen([sys.executable, str(script), str(rank), str(tmp_path)]) for rank in (0, 1)]
    try:
        assert [p.wait(timeout=180) for p in procs] == [0, 0]
    finally:
        for p in procs:
            p.kill()

    torch.manual_seed(0)
    g = torch.randn(5, 4, requires_grad=True)
    c = torch.randn(5, 4, requires_grad=True)
    valid = torch.tensor([True, False, True, True, True])
    align = grace_infonce(g, c, tau=0.4, mask=valid)
    (0.1 * align).backward()

    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)]
    for rank in ranks:
        torch.testing.assert_close(rank["align"], align.detach())
        assert rank["n"].item() == 4
    # Each rank's local gradient is the sum over both ranks' (identical) global losses, so it is
    # twice the single-process one; DDP's averaging over 2 ranks then gives the exact gradient.
    torch.testing.assert_close(torch.cat([r["g"] for r in ranks]) / 2, g.grad)
    torch.testing.assert_close(torch.cat([r["c"] for r in ranks]) / 2, c.grad)
