"""Stage 2's batched augmentation: padded raw batches -> augmented windows -> the network's input.

The Dataset (`dataset`) only slices raw variable-length sequences (T, M, V, 3) out of the cache;
`collate` pads them to the batch's longest; `BatchAugment` then normalises, crops, resizes and rotates the
whole batch at once on the training device. This is CTR-GCN's feeder done in batch:

- crop-rotate (NTU and the default, `feeders/feeder_ntu.py` + `tools.py`): train takes a random
  crop of ratio p ~ U[crop] of the valid frames (at least `window` frames, as the reference's
  bound of 64), test a centre crop of ratio `test_crop`; either is resized to `window` frames by
  linear interpolation (`F.interpolate(bilinear, align_corners=False)`); train then rotates each
  sample by one random rotation, every axis uniform in [-rotate, rotate] rad.
- ucla-view (`feeders/feeder_ucla.py`): a random view change (integer degrees in [-60, 60] about
  x and y, scale U[0.5, 1.5]) at train time, min-max scaling of each axis to [-1, 1] (over the
  present persons; an absent one stays zero), and `window` frames sampled at random (sorted) for
  training or evenly spaced for testing.

A cache in another skeleton layout than the network's (fine-tuning an NTU-25 model on Kinect v1
data) is first mapped joint by joint and padded with absent persons (`input_layout`), as
zero-shot and predict map theirs. Both augmentations then start from the one normalisation
every dataset gets (`shared.normalization`): the layout's centre joint of actor 1's first frame
becomes the origin; an absent second person stays zero. crop-rotate applies it to the frames it
gathers (equal, and much cheaper than rewriting the padded batch); ucla-view to the whole batch.
"""

from __future__ import annotations

import torch

from shared.layouts import Layout
from shared.normalization import origin_torch, translate_to_origin_torch

from .augment_config import AugmentConfig
from .streams import canonical_stream, make_stream, to_model_input

# --------------------------------------------------------------------------- batched augmentation


def random_crops(lengths: torch.Tensor, low: float, high: float, min_frames: int,
                 generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(start, size) per sample: size = floor(L * p), p ~ U[low, high], at least `min_frames`
    and at most L; start uniform over the admissible positions."""
    lengths = lengths.long()
    u = torch.rand((2, len(lengths)), generator=generator, device=lengths.device, dtype=torch.float64)
    p = low + (high - low) * u[0]
    size = torch.minimum((lengths * p).floor().long().clamp(min=min_frames), lengths)
    start = (u[1] * (lengths - size + 1)).floor().long()
    return start, size


def center_crops(lengths: torch.Tensor, p: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference's test crop: bias = int((1 - p) * L / 2) frames off each end."""
    lengths = lengths.long()
    bias = ((1 - p) * lengths.double() / 2).floor().long()
    return bias, lengths - 2 * bias


def _resize_rows(x: torch.Tensor, start: torch.Tensor, size: torch.Tensor, window: int):
    """The two source frames and the weight of the second for each output frame, as rows of the
    flattened batch: (N*W, ...) a, (N*W, ...) b, (N*W, 1, ...) w. Half-pixel centres, as
    `F.interpolate(..., align_corners=False)`; one index_select each, no per-sample loop."""
    n, t = x.shape[:2]
    dst = torch.arange(window, device=x.device, dtype=torch.float64)
    src = ((dst + 0.5) * (size.double()[:, None] / window) - 0.5).clamp(min=0)  # (N, W)
    i0 = src.floor().long()
    i1 = torch.minimum(i0 + 1, size[:, None] - 1)
    w = (src - i0).to(x.dtype).view(n * window, *([1] * (x.dim() - 2)))
    base = (torch.arange(n, device=x.device) * t + start)[:, None]
    flat = x.reshape(n * t, *x.shape[2:])
    return flat.index_select(0, (base + i0).view(-1)), flat.index_select(0, (base + i1).view(-1)), w


def crop_resize(x: torch.Tensor, start: torch.Tensor, size: torch.Tensor, window: int) -> torch.Tensor:
    """Frames [start, start + size) of each (N, T, ...) sample resized to `window` frames by
    linear interpolation."""
    a, b, w = _resize_rows(x, start, size, window)
    return b.sub_(a).mul_(w).add_(a).view(x.shape[0], window, *x.shape[2:])


def translated_crop_resize(x: torch.Tensor, center: int, start: torch.Tensor, size: torch.Tensor,
                           window: int) -> torch.Tensor:
    """crop_resize(translate_to_origin_torch(x, center), ...) without rewriting the padded batch.

    Translation subtracts the origin from present frames and leaves absent (all-zero) ones at 0,
    i.e. translate(x) = x - origin * present; resizing is linear in time, so the result is
    resize(x) - origin * resize(present), with presence read off the gathered frames only.
    """
    n, m = x.shape[0], x.shape[2]
    a, b, w = _resize_rows(x, start, size, window)  # (N*W, M, V, 3) each
    pa, pb = (rows.reshape(n * window, m, -1).sum(-1).ne(0).to(x.dtype) for rows in (a, b))
    present = (pa + (pb - pa) * w.view(-1, 1))[..., None, None]  # (N*W, M, 1, 1)
    origin = origin_torch(x, center).repeat_interleave(window, 0)[:, None, None, :]
    out = b.sub_(a).mul_(w).add_(a).sub_(origin * present)
    return out.view(n, window, *x.shape[2:])


def rotation_matrices(angles: torch.Tensor) -> torch.Tensor:
    """(N, 3) angles about x, y, z -> (N, 3, 3) R = Rz Ry Rx, as the reference's `_rot`
    (for column vectors: x' = R x)."""
    c, s = angles.cos(), angles.sin()
    one, zero = torch.ones_like(c[:, 0]), torch.zeros_like(c[:, 0])

    def mat(*rows):  # 9 (N,) tensors, row-major
        return torch.stack(rows, dim=-1).view(-1, 3, 3)

    rx = mat(one, zero, zero, zero, c[:, 0], s[:, 0], zero, -s[:, 0], c[:, 0])
    ry = mat(c[:, 1], zero, -s[:, 1], zero, one, zero, s[:, 1], zero, c[:, 1])
    rz = mat(c[:, 2], s[:, 2], zero, -s[:, 2], c[:, 2], zero, zero, zero, one)
    return rz @ ry @ rx


def rotate(x: torch.Tensor, matrices: torch.Tensor) -> torch.Tensor:
    """Apply one (3, 3) matrix per sample to every point of (N, ..., 3): x' = R x."""
    r = matrices.to(x.dtype).view(x.shape[0], *([1] * (x.dim() - 2)), 3, 3)
    # Three broadcast multiply-adds into one buffer: faster than a matmul with an inner size of 3.
    out = x[..., 0:1] * r[..., 0]
    return out.addcmul_(x[..., 1:2], r[..., 1]).addcmul_(x[..., 2:3], r[..., 2])


def ucla_view_matrices(agx: torch.Tensor, agy: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """NW-UCLA feeder's `rand_view_transform` as (N, 3, 3) M = Ry Rx S for row vectors: x' = x M."""
    ax, ay = torch.deg2rad(agx.double()), torch.deg2rad(agy.double())
    cx, sx, cy, sy = ax.cos(), ax.sin(), ay.cos(), ay.sin()
    one, zero = torch.ones_like(cx), torch.zeros_like(cx)
    rx = torch.stack([one, zero, zero, zero, cx, sx, zero, -sx, cx], -1).view(-1, 3, 3)
    ry = torch.stack([cy, zero, -sy, zero, one, zero, sy, zero, cy], -1).view(-1, 3, 3)
    return ry @ rx * scale.double()[:, None, None]


def minmax_scale(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Scale each axis of each (N, T, M, V, 3) sample to [-1, 1] over its real joints: valid
    frames (padding excluded) of present persons. An absent person (all zero in a frame, e.g. one
    padded in for a two-person model) stays zero, as everywhere else, and does not stretch the range."""
    n, t = x.shape[:2]
    valid = torch.arange(t, device=x.device)[None] < lengths[:, None]  # (N, T)
    present = x.flatten(3).ne(0).any(-1)  # (N, T, M)
    real = (valid[:, :, None] & present)[..., None, None]
    lo = x.masked_fill(~real, float("inf")).flatten(1, -2).amin(1)  # (N, 3)
    hi = x.masked_fill(~real, float("-inf")).flatten(1, -2).amax(1)
    empty = ~real.flatten(1).any(1, keepdim=True)  # no real joint at all: leave the sample as it is
    lo, hi = lo.masked_fill(empty, 0), hi.masked_fill(empty, 0)
    shape = (n, 1, 1, 1, 3)
    lo, span = lo.view(shape), (hi - lo).clamp(min=1e-6).view(shape)
    return ((x - lo) / span * 2 - 1) * present[..., None, None]


def ucla_frame_indices(lengths: torch.Tensor, window: int, train: bool,
                       generator: torch.Generator | None = None) -> torch.Tensor:
    """(N, window) frame indices: sorted random draws (train; the reference samples from 100
    copies of every index, close to drawing with replacement) or evenly spaced (test)."""
    lengths = lengths.long()
    if train:
        u = torch.rand((len(lengths), window), generator=generator, device=lengths.device,
                       dtype=torch.float64)
        return (u * lengths[:, None]).floor().long().sort(dim=1).values
    steps = torch.linspace(0, 1, window, device=lengths.device, dtype=torch.float64)
    return (steps[None] * (lengths[:, None] - 1)).floor().long()


class BatchAugment:
    """Padded raw batch (N, T_max, M, V, 3) + lengths -> (N, window, M, V, 3) on its device."""

    def __init__(self, cfg: AugmentConfig, train: bool, center: int) -> None:
        self.cfg, self.train, self.center = cfg, train, center  # center: the layout's centre joint, the origin

    def __call__(self, joints: torch.Tensor, lengths: torch.Tensor,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        x, lengths = joints.float(), lengths.to(joints.device)
        if self.cfg.kind == "ucla-view":
            return self._ucla(translate_to_origin_torch(x, self.center), lengths, generator)
        return self._crop_rotate(x, lengths, generator)

    def _crop_rotate(self, x, lengths, generator):
        cfg = self.cfg
        if self.train:
            start, size = random_crops(lengths, *cfg.crop, min_frames=cfg.window, generator=generator)
        else:
            start, size = center_crops(lengths, cfg.test_crop)
        x = translated_crop_resize(x, self.center, start, size, cfg.window)
        if self.train and cfg.rotate > 0:
            u = torch.rand((len(x), 3), generator=generator, device=x.device)
            angles = (2 * u - 1) * cfg.rotate
            x = rotate(x, rotation_matrices(angles))
        return x

    def _ucla(self, x, lengths, generator):
        cfg, n = self.cfg, len(x)
        if self.train:
            deg = torch.randint(-cfg.view_degrees, cfg.view_degrees + 1, (2, n), generator=generator,
                                device=x.device)
            lo, hi = cfg.scale
            s = lo + (hi - lo) * torch.rand(n, generator=generator, device=x.device, dtype=torch.float64)
            m = ucla_view_matrices(deg[0], deg[1], s).to(x.dtype)
            x = torch.einsum("npj,nji->npi", x.reshape(n, -1, 3), m).reshape(x.shape)
        x = minmax_scale(x, lengths)
        idx = ucla_frame_indices(lengths, cfg.window, self.train, generator)
        return x[torch.arange(n, device=x.device)[:, None], idx]


# --------------------------------------------------------------------------- model input


class InputPipeline:
    """A collated batch -> the network's (N, C, window, V, M) input in the chosen stream."""

    def __init__(self, cfg: AugmentConfig, train: bool, stream: str, layout: Layout) -> None:
        self.augment = BatchAugment(cfg, train, layout.center)
        self.stream, self.layout = canonical_stream(stream), layout

    def __call__(self, batch: dict[str, torch.Tensor],
                 generator: torch.Generator | None = None) -> torch.Tensor:
        x = self.augment(batch["joints"], batch["length"], generator)
        return to_model_input(make_stream(x, self.stream, self.layout))

    def scores(self, logits: torch.Tensor) -> torch.Tensor:
        """The network's output for this input -> the class scores reported: its logits, as they are
        (`clip_sampling.ClipsInput` averages several windows' probabilities instead)."""
        return logits
