"""Fine-tuning (ocrflow.train): the converted starting weights reproduce the shipped models, DB labels
and losses, a few training steps lower the loss, the export loads in the pipeline and answers as the
trained torch model, resume, the CLI.

Needs the `train` extra (torch, onnx); skipped without it. CI-sized: tiny data built from the demo
image, a few steps each, the early backbone frozen where only the mechanics are under test.
"""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest
from conftest import DATA, DEMO

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from ocrflow import create_pipeline  # noqa: E402
from ocrflow import det as det_mod  # noqa: E402
from ocrflow.crop import crop_box  # noqa: E402
from ocrflow.errors import ConfigError  # noqa: E402
from ocrflow.models import resolve  # noqa: E402
from ocrflow.train import data as D  # noqa: E402
from ocrflow.train.cli import main as train_main  # noqa: E402
from ocrflow.train.convert import build_model, load_onnx  # noqa: E402
from ocrflow.train.losses import db_loss  # noqa: E402
from ocrflow.train.trainer import TorchOCR, TrainConfig, Trainer, lr_at  # noqa: E402

GOLDEN = DATA / "golden"


def _reference() -> list[dict]:
    with open(GOLDEN / "reference.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


@pytest.fixture(scope="module")
def rec_model():
    return build_model("rec", load_onnx(resolve("PP-OCRv4_mobile_rec", "rec").onnx)).eval()


@pytest.fixture(scope="module")
def det_model():
    return build_model("det", load_onnx(resolve("PP-OCRv4_mobile_det", "det").onnx)).eval()


@pytest.fixture(scope="module")
def demo_data(pipeline, tmp_path_factory):
    """Labelled data built from the demo page and the pipeline's own boxes and texts: a paddle-rec
    label file of line crops and a paddle-det label file of two small pages."""
    root = tmp_path_factory.mktemp("train_data")
    image = cv2.imread(str(DEMO))
    res = pipeline.ocr(image)
    boxes, texts = res["dt_polys"], res["rec_text"]
    lines = []
    picked = [k for k, t in enumerate(texts) if len(t) >= 3][:8]
    for n, k in enumerate(picked):
        cv2.imwrite(str(root / f"crop_{n}.png"), crop_box(image, boxes[k]))
        lines.append(f"crop_{n}.png\t{texts[k]}")
    (root / "rec.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    # two small pages: the top-left part of the demo, and the same part at 3/4 scale
    h, w = 224, 448
    page = image[:h, :w]
    inside = [k for k, b in enumerate(boxes) if b[:, 0].max() < w and b[:, 1].max() < h]
    det_lines = []
    for name, scale in (("page_a.png", 1.0), ("page_b.png", 0.75)):
        img = cv2.resize(page, (int(w * scale), int(h * scale))) if scale != 1 else page
        cv2.imwrite(str(root / name), img)
        labels = [{"transcription": texts[k], "points": (boxes[k] * scale).round().tolist()} for k in inside]
        det_lines.append(f"{name}\t{json.dumps(labels, ensure_ascii=False)}")
    (root / "det.txt").write_text("\n".join(det_lines) + "\n", encoding="utf-8")
    crops = [cv2.imread(str(root / f"crop_{n}.png")) for n in range(len(picked))]
    return {"root": root, "crops": crops, "texts": [texts[k] for k in picked], "page": page, "n_boxes": len(inside)}


# -- the starting weights are the shipped model ----------------------------------------------
def test_converted_rec_reproduces_the_shipped_model(pipeline, rec_model):
    """Same texts as the official stack and the ONNX engine on the golden images' line crops."""
    table = pipeline.char_table
    torch_ocr = TorchOCR(rec_model, torch.device("cpu"), table)
    crops, got, engine, expected = [], [], [], []
    for ref in _reference():  # per image: the batches (hence the padding) are the pipeline's
        image = cv2.imread(str(GOLDEN / ref["path"]))
        lines = [crop_box(image, np.array(box)) for box in ref["dt_polys"]]
        got += torch_ocr.recognize(lines, 6)
        engine += pipeline.recognize(lines, 6)
        crops += lines
        expected += ref["rec_text"]
    assert len(crops) > 100
    assert [t for t, _ in got] == expected
    assert [t for t, _ in got] == [t for t, _ in engine]
    assert max(abs(a[1] - b[1]) for a, b in zip(got, engine)) < 1e-4
    # the raw probabilities too
    x = np.stack([D.rec_mod.resize_norm(c) for c in crops[:4] if c.shape[1] / c.shape[0] < 6.6])
    with torch.no_grad():
        probs = rec_model(torch.from_numpy(x)).numpy()
    assert np.abs(probs - pipeline.rec_model.run(x)).max() < 1e-4


def test_converted_det_reproduces_the_shipped_model(pipeline, det_model):
    params = det_mod.DetParams()
    torch_ocr = TorchOCR(det_model, torch.device("cpu"))
    for name in (DEMO, GOLDEN / "imgs" / "11.jpg"):
        image = cv2.imread(str(name))
        x = det_mod.preprocess(image, params)
        with torch.no_grad():
            prob = det_model(torch.from_numpy(x)).numpy()
        assert prob.shape == (1, 1, *x.shape[2:])
        assert np.abs(prob - pipeline.det_model.run(x)).max() < 1e-3
        boxes, _ = torch_ocr.detect(image, params)
        ref_boxes, _ = pipeline.detect(image, params)
        assert np.array_equal(boxes, ref_boxes)


def test_threshold_branch_starts_as_a_copy_of_the_binarisation_head(det_model):
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        logits, prob, thresh = det_model.train_maps(x)
        assert torch.allclose(prob, det_model(x))
        assert torch.allclose(torch.sigmoid(logits), prob, atol=1e-6)
        assert torch.allclose(thresh, prob, atol=1e-6)  # same weights, separate parameters
    own = {id(p) for p in det_model.graph.parameters()}
    assert all(id(p) not in own for p in det_model.thresh.parameters())
    assert len(list(det_model.thresh.parameters())) >= 6


# -- DB labels and loss -----------------------------------------------------------------------
def _rect(x1, y1, x2, y2):
    return np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], np.float32)


def test_db_shrink_and_threshold_maps():
    poly = _rect(50, 40, 150, 60)  # 100 x 20: D = A (1 - 0.4^2) / L = 2000 * 0.84 / 240 = 7
    gt, mask = D.shrink_map(128, 256, [poly, _rect(200, 10, 205, 30), _rect(10, 100, 60, 120)], [False, False, True],
                            ratio=0.4)
    ys, xs = np.nonzero(gt)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (57, 143, 47, 53)  # shrunk by 7 px
    assert mask[20, 202] == 0 and gt[20, 202] == 0  # narrower than 8 px: masked out
    assert mask[110, 30] == 0 and gt[110, 30] == 0  # '###': masked out
    assert mask[0, 0] == 1 and mask[50, 100] == 1
    th, th_mask = D.threshold_map(128, 256, [poly], [False], ratio=0.4)
    assert th.min() == pytest.approx(0.3) and th.max() == pytest.approx(0.7, abs=1e-3)
    assert th[40, 100] == pytest.approx(0.7, abs=1e-3)  # on the border
    assert th[50, 100] == pytest.approx(0.3, abs=1e-3)  # 10 px inside: farther than D
    assert th[36, 100] == pytest.approx(0.3 + 0.4 * (1 - 4 / 7), abs=1e-3)  # 4 px outside
    assert th_mask[34, 100] == 1 and th_mask[30, 100] == 0  # dilated by 7 px
    assert th_mask[110, 30] == 0


@pytest.mark.parametrize("dy", [0.0, 0.3, 0.5, 0.7, 0.9])
def test_db_labels_are_rasterised_at_sub_pixel_precision(dy):
    """Fractional polygons are not truncated (that put labels ~0.5 px up/left): the shrink map and
    the threshold mask of a 100 x 20 box at y = 40 + dy are centred on it within half a pixel."""
    poly = _rect(50.6, 40 + dy, 150.6, 60 + dy)  # centre (100.6, 50 + dy)
    gt, _ = D.shrink_map(128, 256, [poly], [False], ratio=0.4)
    ys, xs = np.nonzero(gt)
    assert abs(ys.mean() - (50 + dy)) <= 0.5 and abs(xs.mean() - 100.6) <= 0.5
    assert ys.max() - ys.min() + 1 in (6, 7)  # the 6 px band (20 - 2 x 7) +- one row
    _, th_mask = D.threshold_map(128, 256, [poly], [False], ratio=0.4)
    ys, xs = np.nonzero(th_mask)
    assert abs(ys.mean() - (50 + dy)) <= 0.5 and abs(xs.mean() - 100.6) <= 0.5
    fine = np.zeros((8, 8), np.float32)
    D.fill_poly(fine, [_rect(1.6, 1.6, 5.4, 5.4)], 1)  # pixel centres 2..5
    assert np.nonzero(fine.any(axis=1))[0].tolist() == [2, 3, 4, 5]


@pytest.mark.parametrize("shrink_loss", ["dice", "bce"])
def test_db_loss_is_low_for_the_right_maps(shrink_loss):
    gt, mask = D.shrink_map(64, 64, [_rect(8, 8, 56, 30)], [False])
    th, th_mask = D.threshold_map(64, 64, [_rect(8, 8, 56, 30)], [False])
    batch = {k: torch.from_numpy(v)[None] for k, v in
             {"shrink": gt, "shrink_mask": mask, "thresh": th, "thresh_mask": th_mask}.items()}
    good_logits = torch.from_numpy((gt * 2 - 1) * 8)[None, None]
    good = db_loss(good_logits, torch.sigmoid(good_logits), torch.from_numpy(th)[None, None], batch, shrink_loss)
    bad_logits = -good_logits
    bad = db_loss(bad_logits, torch.sigmoid(bad_logits), torch.full((1, 1, 64, 64), 0.5), batch, shrink_loss)
    assert good["loss"] < 0.1 < 1 < bad["loss"]
    assert set(good) == {"loss", "shrink", "thresh", "binary"}


def test_det_defaults_keep_the_shipped_maps():
    """Detection fine-tunes with Dice on the shrink map and a frozen backbone unless told otherwise."""
    det = TrainConfig(task="det", data="unused")
    assert det.shrink_loss == "dice" and det.freeze == 0.8
    assert TrainConfig(task="rec", data="unused").freeze == 0.0
    assert TrainConfig(task="det", data="unused", freeze=0.0, shrink_loss="bce").freeze == 0.0
    with pytest.raises(ConfigError):
        TrainConfig(task="det", data="unused", shrink_loss="focal")


def test_lr_warmup_then_cosine():
    lrs = [lr_at(s, 100, 10, 1e-3, 1e-5) for s in range(101)]
    assert lrs[0] == pytest.approx(1e-4) and lrs[9] == pytest.approx(1e-3)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:]))
    assert lrs[55] == pytest.approx(1e-5 + (1e-3 - 1e-5) * 0.5)
    assert lrs[100] == pytest.approx(1e-5)


# -- training, export, pipeline ---------------------------------------------------------------
def _fixed_loss(trainer: Trainer, batch) -> float:
    trainer.model.eval()
    with torch.no_grad():
        return float(trainer.loss(batch)["loss"])


def test_train_rec_lowers_the_loss_and_exports_what_it_learned(demo_data, tmp_path):
    root = demo_data["root"]
    cfg = TrainConfig(task="rec", data=str(root / "rec.txt"), val_split=0, output=str(tmp_path / "rec"),
                      epochs=4, batch_size=4, lr=3e-4, warmup_epochs=0, augment=False, freeze=0.5,
                      progress=False)
    trainer = Trainer(cfg)
    assert len(trainer.train_set) == 8
    batch = D.rec_collate([trainer.train_set[i] for i in range(8)])
    before = _fixed_loss(trainer, batch)
    result = trainer.fit()
    after = _fixed_loss(trainer, batch)
    assert after < 0.7 * before, (before, after)
    # no validation: the last weights are exported
    assert result["steps"] == 4 * trainer.steps_per_epoch and result["best"] is None
    model_dir = tmp_path / "rec" / "best_model"
    assert result["model_dir"] == str(model_dir) and result["export_max_abs_diff"] < 1e-4
    # the directory is a pipeline model: the dictionary round-trips through inference.yml
    files = resolve(model_dir, "rec")
    assert files.chars == tuple(trainer.chars)
    pipe = create_pipeline(rec_model=str(model_dir), device="cpu")
    words = sorted((GOLDEN / "imgs_words").rglob("*.jpg"))
    crops = demo_data["crops"] + [cv2.imread(str(p)) for p in words]
    got = pipe.recognize(crops, 6)
    want = TorchOCR(trainer.model.eval(), trainer.device, trainer.table).recognize(crops, 6)
    assert [t for t, _ in got] == [t for t, _ in want]
    assert max(abs(a[1] - b[1]) for a, b in zip(got, want)) < 1e-4


def test_train_det_lowers_the_loss_and_exports_what_it_learned(demo_data, tmp_path):
    root = demo_data["root"]
    cfg = TrainConfig(task="det", data=str(root / "det.txt"), val_split=0, output=str(tmp_path / "det"),
                      epochs=4, batch_size=2, lr=1e-3, warmup_epochs=0, augment=False, crop_size=256,
                      freeze=0.6, progress=False)
    trainer = Trainer(cfg)
    batch = D.det_collate([trainer.train_set[i] for i in range(2)])
    assert batch["image"].shape == (2, 3, 256, 256) and batch["shrink"].sum() > 0
    before = _fixed_loss(trainer, batch)
    result = trainer.fit()
    after = _fixed_loss(trainer, batch)
    assert after < 0.95 * before, (before, after)  # Dice moves the shipped model's saturated map slowly
    model_dir = tmp_path / "det" / "best_model"
    assert result["export_max_abs_diff"] < 1e-4
    pipe = create_pipeline(det_model=str(model_dir), device="cpu")
    page = demo_data["page"]
    params = det_mod.DetParams()
    torch_ocr = TorchOCR(trainer.model.eval(), trainer.device)
    x = det_mod.preprocess(page, params)
    assert np.abs(pipe.det_model.run(x) - torch_ocr.run(x)).max() < 1e-4
    got, _ = pipe.detect(page, params)
    want, _ = torch_ocr.detect(page, params)
    assert len(want) > 0 and np.array_equal(got, want)


def test_augmented_det_example_keeps_polygons_on_the_text(demo_data):
    from ocrflow.eval import datasets

    samples = datasets.load(demo_data["root"] / "det.txt")
    ds = D.DetDataset(samples, augment=True, crop_size=192, seed=3)
    for epoch in range(3):
        ds.set_epoch(epoch)
        image, polys, ignores = ds.example(0)
        assert image.shape == (192, 192, 3) and len(polys) == len(ignores)
        for p, ign in zip(polys, ignores):
            if not ign:  # fully inside the crop
                assert p.min() >= 0 and p.max() <= 191
        item = ds[0]
        assert item["image"].shape == (3, 192, 192) and item["image"].dtype == np.float32


def test_resume_continues_the_run(demo_data, tmp_path):
    root = demo_data["root"]
    common = dict(task="rec", data=str(root / "rec.txt"), val_data=str(root / "rec.txt"), limit=2,
                  output=str(tmp_path / "run"), batch_size=2, augment=False, freeze=0.8, progress=False,
                  export=False, initial_eval=False)
    first = Trainer(TrainConfig(epochs=1, **common)).fit()
    assert first["epochs"] == 1 and first["steps"] == 1 and len(first["history"]) == 1
    second = Trainer(TrainConfig(epochs=2, resume=str(tmp_path / "run" / "last.pt"), **common)).fit()
    assert second["epochs"] == 2 and second["steps"] == 2
    assert [h["epoch"] for h in second["history"]] == [1, 2]
    log = [json.loads(line) for line in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log if r["event"] == "epoch"] == [1, 2]
    assert (tmp_path / "run" / "best.pt").is_file()


def test_cli_trains_and_exports(demo_data, tmp_path, capsys):
    root = demo_data["root"]
    out = tmp_path / "cli"
    rc = train_main(["rec", "--data", str(root / "rec.txt"), "--limit", "2", "--val_split", "0", "--epochs", "1",
                     "--batch_size", "2", "--freeze", "0.8", "--quiet", "--output", str(out),
                     "--json", str(tmp_path / "run.json")])
    assert rc == 0
    assert "rec_model:" in capsys.readouterr().out
    summary = json.loads((tmp_path / "run.json").read_text())
    assert summary["steps"] == 1 and (out / "best_model" / "inference.onnx").is_file()
    rc = train_main(["export", "--checkpoint", str(out / "last.pt"), "--output", str(tmp_path / "exported")])
    assert rc == 0 and (tmp_path / "exported" / "inference.yml").is_file()
    assert train_main(["det", "--data", str(tmp_path / "missing.txt"), "--quiet"]) == 1
    assert "no such file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        train_main(["rec"])  # --data is required


def test_rec_items_from_detection_labels(demo_data, pipeline):
    from ocrflow.eval import datasets

    samples = datasets.load(demo_data["root"] / "det.txt")
    items = D.rec_items(samples[:1], pipeline.char_table)
    assert len(items) == demo_data["n_boxes"]
    ds = D.RecDataset(items, augment=False)
    x, label = ds[0]
    assert x.shape[:2] == (3, 48) and x.shape[2] >= 320 and label == items[0].label
    # the unaugmented crop is the evaluation's crop of the labelled quad
    image = demo_data["page"]
    quad = D._order_quad(samples[0].lines[0].points)
    assert np.array_equal(ds.crop(0), D.crop_quad(image, quad))
    assert math.isclose(ds.ratio(0), ds.crop(0).shape[1] / ds.crop(0).shape[0], rel_tol=0.1)
