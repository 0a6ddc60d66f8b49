"""Losses: CTC for recognition, DB's loss for detection (as PaddleOCR's DBLoss)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

DB_K = 50.0  # steepness of DB's approximate binarisation
DB_ALPHA, DB_BETA, OHEM_RATIO = 5.0, 10.0, 3.0
EPS = 1e-6
# The shrink-map term. PaddleOCR trains PP-OCR det with main_loss_type DiceLoss, and the shipped
# model shows it: its logits are saturated (median |logit| 25-50 on text). BCE (the DB paper's) re-calibrates
# them on the first steps: the maps thin out, short words drop under box_thresh and lines split, so
# fine-tuning with BCE loses Hmean from the first epoch; Dice changes the maps far more slowly.
SHRINK_LOSSES = ("dice", "bce")


def ctc_loss(log_probs: torch.Tensor, targets: torch.Tensor, target_lengths: torch.Tensor) -> torch.Tensor:
    """CTC (blank 0) over N x T x C log-probabilities; the mean of the per-sample losses."""
    n, t, _ = log_probs.shape
    device = log_probs.device
    input_lengths = torch.full((n,), t, dtype=torch.long, device=device)
    targets, target_lengths = targets.to(device), target_lengths.to(device)
    losses = F.ctc_loss(log_probs.transpose(0, 1).float(), targets, input_lengths, target_lengths,
                        blank=0, reduction="none", zero_infinity=True)
    return losses.mean()


def balanced_bce(logits: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor, ratio: float = OHEM_RATIO) -> torch.Tensor:
    """BCE on the shrink map with online hard negative mining: all positives, the hardest
    `ratio` x as many negatives."""
    positive = gt * mask
    negative = (1 - gt) * mask
    n_pos = int(positive.sum().item())
    n_neg = int(min(negative.sum().item(), n_pos * ratio))
    loss = F.binary_cross_entropy_with_logits(logits, gt, reduction="none")
    pos_loss = (loss * positive).sum()
    neg_loss = (loss * negative).reshape(-1)
    if n_neg > 0:
        neg_loss = torch.topk(neg_loss, n_neg).values.sum()
    else:
        neg_loss = neg_loss.sum() * 0.0
    return (pos_loss + neg_loss) / (n_pos + n_neg + EPS)


def masked_l1(pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (torch.abs(pred - gt) * mask).sum() / (mask.sum() + EPS)


def dice(pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    inter = (pred * gt * mask).sum()
    union = (pred * mask).sum() + (gt * mask).sum() + EPS
    return 1 - 2.0 * inter / union


def db_loss(logits: torch.Tensor, prob: torch.Tensor, thresh: torch.Tensor, batch: dict,
            shrink_loss: str = "dice") -> dict[str, torch.Tensor]:
    """DB loss: alpha * Dice (or BCE with OHEM) on the shrink map + beta * L1 on the threshold map
    inside the dilated border + Dice on the approximate binary map 1 / (1 + exp(-k (P - T)))."""
    if shrink_loss not in SHRINK_LOSSES:
        raise ValueError(f"shrink_loss must be one of {SHRINK_LOSSES}, got {shrink_loss!r}")
    shrink, shrink_mask = batch["shrink"], batch["shrink_mask"]
    logits, prob, thresh = logits[:, 0], prob[:, 0], thresh[:, 0]
    binary = torch.sigmoid(DB_K * (prob - thresh))
    if shrink_loss == "dice":
        l_shrink = dice(prob, shrink, shrink_mask)
    else:
        l_shrink = balanced_bce(logits, shrink, shrink_mask)
    l_thresh = masked_l1(thresh, batch["thresh"], batch["thresh_mask"])
    l_binary = dice(binary, shrink, shrink_mask)
    total = DB_ALPHA * l_shrink + DB_BETA * l_thresh + l_binary
    return {"loss": total, "shrink": l_shrink, "thresh": l_thresh, "binary": l_binary}
