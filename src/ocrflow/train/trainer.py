"""The training loop: data, optimiser, warm-up + cosine schedule, periodic evaluation with the eval
metrics, best/last checkpoints, resume, export."""

from __future__ import annotations

import json
import logging
import math
import os
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .. import det as det_mod
from .. import rec as rec_mod
from ..engine.jobs import RunsNow
from ..errors import ConfigError, ModelError
from ..eval import datasets
from ..eval.runner import evaluate
from ..models import resolve
from ..stages import TextDetector, TextRecognizer
from . import data as D
from .convert import DetModel, RecModel, build_model, load_onnx
from .export import check_onnx, det_yaml, onnx_bytes, rec_yaml, write_model_dir
from .losses import SHRINK_LOSSES, ctc_loss, db_loss

log = logging.getLogger("ocrflow")

TASKS = ("rec", "det")
DEFAULT_MODELS = {"rec": "PP-OCRv4_mobile_rec", "det": "PP-OCRv4_mobile_det"}
METRIC = {"rec": "accuracy", "det": "hmean"}
# det: the backbone stays frozen (the first 80% of the graph's nodes; neck and head train). On 80 SROIE
# receipts training it too lost Hmean at any lr tried; frozen, it is also ~2x faster per step.
DEFAULT_FREEZE = {"rec": 0.0, "det": 0.8}


@dataclass
class TrainConfig:
    task: str
    data: str
    format: str | None = None
    root: str | None = None
    val_data: str | None = None
    val_format: str | None = None
    val_root: str | None = None
    val_split: float = 0.1  # when no val_data: the last fraction of the samples (file order)
    model: str | None = None  # base model name or local dir; default PP-OCRv4_mobile_{task}
    output: str = "./output/finetune"
    epochs: int = 10
    batch_size: int | None = None  # rec 32, det 4
    lr: float | None = None  # rec 3e-4, det 2e-4
    warmup_epochs: float = 1.0
    min_lr: float = 0.0
    weight_decay: float = 1e-4
    clip_grad: float = 10.0
    eval_every: int = 1  # epochs
    freeze: float | None = None  # freeze the first fraction of the layers (early backbone); DEFAULT_FREEZE
    train_bn: bool = False  # update batch-norm statistics (default: frozen, only their weights train)
    augment: bool = True
    crop_size: int = 640  # det: square training crops (multiple of 32)
    scale_range: tuple[float, float] = (0.7, 1.4)  # det: random scale around the pipeline's
    shrink_ratio: float = D.SHRINK_RATIO  # det: DB label shrink ratio (see data.SHRINK_RATIO)
    shrink_loss: str = "dice"  # det: the shrink-map term, dice or bce (see losses.SHRINK_LOSSES)
    seed: int = 0
    resume: str | None = None
    device: str = "cpu"
    workers: int = 0
    threads: int | None = None
    limit: int | None = None  # only the first N training samples
    export: bool = True
    initial_eval: bool = True
    progress: bool = True

    def __post_init__(self):
        if self.task not in TASKS:
            raise ConfigError(f"task must be one of {TASKS}, got {self.task!r}")
        self.model = self.model or DEFAULT_MODELS[self.task]
        self.batch_size = self.batch_size or (32 if self.task == "rec" else 4)
        self.lr = self.lr if self.lr is not None else (3e-4 if self.task == "rec" else 2e-4)
        self.freeze = self.freeze if self.freeze is not None else DEFAULT_FREEZE[self.task]
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ConfigError("epochs, batch_size and lr must be positive")
        if not 0 <= self.val_split < 1:
            raise ConfigError(f"val_split must be in [0, 1), got {self.val_split}")
        if not 0 <= self.freeze < 1:
            raise ConfigError(f"freeze must be in [0, 1), got {self.freeze}")
        if not 0 < self.shrink_ratio < 1:
            raise ConfigError(f"shrink_ratio must be in (0, 1), got {self.shrink_ratio}")
        if self.shrink_loss not in SHRINK_LOSSES:
            raise ConfigError(f"shrink_loss must be one of {SHRINK_LOSSES}, got {self.shrink_loss!r}")
        if self.crop_size % 32:
            raise ConfigError(f"crop_size must be a multiple of 32, got {self.crop_size}")


def torch_device(name: str) -> torch.device:
    name = (name or "cpu").lower()
    if name.startswith("gpu"):
        name = "cuda" + name[3:]
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r}: this build of torch has no CUDA device available")
    return dev


def lr_at(step: int, total: int, warmup: int, lr: float, min_lr: float) -> float:
    """Linear warm-up from 0 over `warmup` steps, then cosine decay to min_lr at `total`."""
    if warmup > 0 and step < warmup:
        return lr * (step + 1) / warmup
    span = max(total - warmup, 1)
    progress = min(max(step - warmup, 0) / span, 1.0)
    return min_lr + (lr - min_lr) * 0.5 * (1 + math.cos(math.pi * progress))


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _onnx_chars(onnx_model) -> tuple[str, ...] | None:
    for prop in onnx_model.metadata_props:
        if prop.key == "character":
            return tuple(prop.value.splitlines())
    return None


class TorchEngine(RunsNow):
    """A torch model behind the pipeline's engine interface (ocrflow.engine.Engine)."""

    takes_pixels = False
    returns_logits = False
    bf16_probs = False
    input_dtype = np.dtype(np.float32)
    input_shape = ["batch", 3, "height", "width"]
    output_shape: list = []
    metadata: dict = {}

    def __init__(self, model, device):
        self.model, self.device = model, device

    @torch.no_grad()
    def run(self, x: np.ndarray, copy: bool = True) -> np.ndarray:
        return self.model(torch.from_numpy(x).to(self.device)).float().cpu().numpy()


class TorchOCR:
    """The pipeline's detection and recognition stages on a torch model, for
    `ocrflow.eval.runner.evaluate`: the same TextDetector / TextRecognizer objects as OCRPipeline."""

    def __init__(self, model, device, table: list[str] | None = None, params: det_mod.DetParams | None = None,
                 rec_batch_size: int = 6):
        self.engine = TorchEngine(model, device)
        self.params = params or det_mod.DetParams()
        self.rec_batch_size = rec_batch_size
        self.detector = TextDetector(self.engine, self.params)
        self.recognizer = TextRecognizer(self.engine, None, table=table) if table is not None else None

    def call_settings(self, overrides):
        return self.params, self.rec_batch_size

    def run(self, x: np.ndarray) -> np.ndarray:
        return self.engine.run(x)

    def detect(self, image, params=None, timer=None):
        return self.detector(image, params, timer)

    def recognize(self, crops, batch_size=6, timer=None):
        return self.recognizer(crops, batch_size, timer)


def _save(obj: dict, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".part")
    torch.save(obj, tmp)
    os.replace(tmp, path)


class Trainer:
    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        _seed_everything(cfg.seed)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.device = torch_device(cfg.device)
        self.out = Path(cfg.output)
        self.state = {"epoch": 0, "step": 0, "best": None, "best_epoch": None, "history": []}
        ckpt = None
        if cfg.resume:
            ckpt = torch.load(cfg.resume, map_location="cpu", weights_only=False)
            if ckpt.get("task") != cfg.task:
                raise ConfigError(f"checkpoint {cfg.resume} is a {ckpt.get('task')} checkpoint, not {cfg.task}")
            self.onnx_data, self.model_name = ckpt["onnx"], ckpt["model_name"]
            self.chars = ckpt.get("chars")
        else:
            files = resolve(cfg.model, cfg.task)
            self.onnx_data = Path(files.onnx).read_bytes()
            self.model_name = files.name
            self.chars = files.chars
        onnx_model = load_onnx(self.onnx_data)
        self.model = build_model(cfg.task, onnx_model).to(self.device)
        self.model.graph.bn_train = cfg.train_bn
        if cfg.freeze:
            self.model.graph.freeze(cfg.freeze)
        self.table = None
        if cfg.task == "rec":
            self.chars = tuple(self.chars or _onnx_chars(onnx_model) or ())
            if not self.chars:
                raise ModelError(f"recognition model {cfg.model!r} carries no dictionary")
            with torch.no_grad():
                probe = torch.zeros(1, 3, rec_mod.REC_HEIGHT, rec_mod.REC_WIDTH, device=self.device)
                num_classes = int(self.model(probe).shape[-1])
            self.table = rec_mod.char_table(list(self.chars), num_classes)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self._load_data()
        self.steps_per_epoch = self._steps_per_epoch()
        self.total_steps = self.steps_per_epoch * cfg.epochs
        self.warmup_steps = min(int(round(cfg.warmup_epochs * self.steps_per_epoch)), int(0.3 * self.total_steps))
        if ckpt is not None:
            self.model.load_state_dict(ckpt["model"])
            if "optimizer" in ckpt:
                self.optimizer.load_state_dict(ckpt["optimizer"])
            for k in self.state:
                if k in ckpt:
                    self.state[k] = ckpt[k]

    # -- data -------------------------------------------------------------------------------
    def _load_data(self) -> None:
        cfg = self.cfg
        samples = datasets.load(cfg.data, cfg.format, cfg.root)
        if cfg.val_data:
            val = datasets.load(cfg.val_data, cfg.val_format, cfg.val_root)
        elif cfg.val_split > 0 and len(samples) > 1:
            n_val = max(1, int(round(len(samples) * cfg.val_split)))
            samples, val = samples[:-n_val], samples[-n_val:]
        else:
            val = []
        if cfg.limit:
            samples = samples[: cfg.limit]
        if not samples:
            raise ConfigError(f"no training samples in {cfg.data}")
        self.train_samples, self.val_samples = samples, val
        if cfg.task == "rec":
            items = D.rec_items(samples, self.table, progress=cfg.progress)
            if not items:
                raise ConfigError(f"no usable text lines in {cfg.data}")
            self.train_set = D.RecDataset(items, cfg.augment, cfg.seed)
            self.ratios = [self.train_set.ratio(i) for i in range(len(items))]
        else:
            self.train_set = D.DetDataset(samples, cfg.augment, cfg.crop_size, cfg.seed, cfg.scale_range,
                                          shrink_ratio=cfg.shrink_ratio)

    def _steps_per_epoch(self) -> int:
        if self.cfg.task == "rec":  # batches of long lines are smaller: count them (about the same each epoch)
            return len(D.ratio_batches(self.ratios, self.cfg.batch_size, np.random.default_rng((self.cfg.seed, 1, 7))))
        return max(1, math.ceil(len(self.train_set) / self.cfg.batch_size))

    def _loader(self, epoch: int):
        cfg = self.cfg
        self.train_set.set_epoch(epoch)
        rng = np.random.default_rng((cfg.seed, epoch, 7))
        common = dict(num_workers=cfg.workers, pin_memory=self.device.type == "cuda")
        if cfg.task == "rec":
            batches = D.ratio_batches(self.ratios, cfg.batch_size, rng)
            return torch.utils.data.DataLoader(self.train_set, batch_sampler=batches, collate_fn=D.rec_collate,
                                               **common)
        order = rng.permutation(len(self.train_set)).tolist()
        batches = [order[k : k + cfg.batch_size] for k in range(0, len(order), cfg.batch_size)]
        return torch.utils.data.DataLoader(self.train_set, batch_sampler=batches, collate_fn=D.det_collate, **common)

    # -- steps ------------------------------------------------------------------------------
    def loss(self, batch) -> dict[str, torch.Tensor]:
        if self.cfg.task == "rec":
            x, targets, lengths = batch
            log_probs = self.model.log_probs(x.to(self.device, non_blocking=True))
            return {"loss": ctc_loss(log_probs, targets, lengths)}
        batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        logits, prob, thresh = self.model.train_maps(batch["image"])
        return db_loss(logits, prob, thresh, batch, self.cfg.shrink_loss)

    def train_step(self, batch) -> float:
        self.model.train()
        lr = lr_at(self.state["step"], self.total_steps, self.warmup_steps, self.cfg.lr, self.cfg.min_lr)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        losses = self.loss(batch)
        self.optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        if self.cfg.clip_grad:
            torch.nn.utils.clip_grad_norm_(self.params, self.cfg.clip_grad)
        self.optimizer.step()
        self.state["step"] += 1
        return float(losses["loss"].detach())

    # -- evaluation -------------------------------------------------------------------------
    def evaluate(self, samples=None) -> dict:
        samples = self.val_samples if samples is None else samples
        self.model.eval()
        adapter = TorchOCR(self.model, self.device, self.table)
        return evaluate(adapter, samples, self.cfg.task, progress=False)

    # -- checkpoints ------------------------------------------------------------------------
    def checkpoint(self, with_optimizer: bool = True) -> dict:
        ckpt = {"task": self.cfg.task, "model_name": self.model_name, "onnx": self.onnx_data,
                "chars": self.chars if self.cfg.task == "rec" else None,
                "model": self.model.state_dict(), "config": asdict(self.cfg), **self.state}
        if with_optimizer:
            ckpt["optimizer"] = self.optimizer.state_dict()
        return ckpt

    def _log(self, record: dict) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        with open(self.out / "train_log.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    def _after_eval(self, epoch: int, summary: dict) -> bool:
        metric = float(summary[METRIC[self.cfg.task]])
        record = {"epoch": epoch, "step": self.state["step"], METRIC[self.cfg.task]: metric,
                  **{k: v for k, v in summary.items() if isinstance(v, (int, float)) and k != "images"}}
        self.state["history"].append(record)
        self._log({"event": "eval", **record})
        improved = self.state["best"] is None or metric > self.state["best"]
        if improved:
            self.state["best"], self.state["best_epoch"] = metric, epoch
            self.out.mkdir(parents=True, exist_ok=True)
            _save(self.checkpoint(with_optimizer=False), self.out / "best.pt")
        return improved

    # -- the loop ---------------------------------------------------------------------------
    def fit(self) -> dict:
        cfg = self.cfg
        self.out.mkdir(parents=True, exist_ok=True)
        name = METRIC[cfg.task]
        start = time.time()
        has_val = bool(self.val_samples)
        if has_val and cfg.initial_eval and self.state["epoch"] == 0 and self.state["best"] is None:
            summary = self.evaluate()
            self._after_eval(0, summary)
            log.info("before training: %s %.4f", name, summary[name])
            if cfg.progress:
                tqdm.write(f"{cfg.task} before training: {name} {summary[name]:.4f} on {len(self.val_samples)} images")
        for epoch in range(self.state["epoch"] + 1, cfg.epochs + 1):
            bar = tqdm(total=self.steps_per_epoch, desc=f"{cfg.task} epoch {epoch}/{cfg.epochs}", unit="step",
                       disable=not cfg.progress, dynamic_ncols=True)
            running = []
            for batch in self._loader(epoch):
                running.append(self.train_step(batch))
                post = {"loss": f"{np.mean(running[-20:]):.4f}",
                        "lr": f"{self.optimizer.param_groups[0]['lr']:.2e}"}
                if self.state["history"]:
                    post[name] = f"{self.state['history'][-1][name]:.4f}"
                    post["best"] = f"{self.state['best']:.4f}"
                bar.set_postfix(post)
                bar.update(1)
            bar.close()
            self.state["epoch"] = epoch
            self._log({"event": "epoch", "epoch": epoch, "step": self.state["step"], "loss": float(np.mean(running)),
                       "lr": self.optimizer.param_groups[0]["lr"], "seconds": round(time.time() - start, 1)})
            if has_val and (epoch % cfg.eval_every == 0 or epoch == cfg.epochs):
                summary = self.evaluate()
                improved = self._after_eval(epoch, summary)
                if cfg.progress:
                    tqdm.write(f"{cfg.task} epoch {epoch}: loss {np.mean(running):.4f}  {name} {summary[name]:.4f}"
                               + ("  (best)" if improved else f"  (best {self.state['best']:.4f})"))
            _save(self.checkpoint(), self.out / "last.pt")
        result = {"task": cfg.task, "epochs": self.state["epoch"], "steps": self.state["step"],
                  "seconds": round(time.time() - start, 1), "metric": name, "best": self.state["best"],
                  "best_epoch": self.state["best_epoch"], "history": self.state["history"],
                  "last_checkpoint": str(self.out / "last.pt")}
        best_path = self.out / "best.pt"
        # best.pt of this run only: a reused --output may hold an earlier run's
        source = best_path if self.state["best"] is not None and best_path.is_file() else self.out / "last.pt"
        result["checkpoint"] = str(source)
        if cfg.export:
            model_dir, diff = export_checkpoint(source, self.out / "best_model")
            result.update(model_dir=str(model_dir), export_max_abs_diff=diff)
        return result


def load_checkpoint_model(path: str | Path, device: str = "cpu"):
    """(model in eval mode, checkpoint dict) from a checkpoint written by the trainer."""
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    model = build_model(ckpt["task"], load_onnx(ckpt["onnx"]))
    model.load_state_dict(ckpt["model"])
    return model.to(torch_device(device)).eval(), ckpt


def export_checkpoint(path: str | Path, out_dir: str | Path) -> tuple[Path, float]:
    """Write the checkpoint's model as an ONNX model directory; returns it and the max abs difference
    between ONNX Runtime on the export and the torch model (on random input)."""
    model, ckpt = load_checkpoint_model(path)
    task = ckpt["task"]
    data = onnx_bytes(model, task)
    diff = check_onnx(data, model, task)
    if diff > 1e-3:
        raise RuntimeError(f"the exported model differs from the trained one by {diff:.2e}")
    if task == "rec":
        if isinstance(model, RecModel) and not ckpt.get("chars"):
            raise ModelError("the checkpoint carries no dictionary")
        yml = rec_yaml(ckpt["model_name"], list(ckpt["chars"]))
    else:
        assert isinstance(model, DetModel)
        yml = det_yaml(ckpt["model_name"])
    return write_model_dir(out_dir, data, yml), diff
