"""The official stack's word boxes, to compare ocrflow's with (run with the reference venv that
../shared/anchors/SETUP.md builds, not with ocrflow's):

    $A/venv-paddle/bin/python benchmarks/official_word_boxes.py IMAGES... > official_words.jsonl
    .venv/bin/python benchmarks/word_boxes.py --official official_words.jsonl

PaddleOCR 3.7 with the PP-OCRv4 mobile pair of $A/models (ANCHOR_MODELS), 960/max, return_word_box=True:
one JSON object per image: {"path", "rec_texts", "text_word", "text_word_boxes"} (boxes as x0 y0 x1 y1).
"""

import json
import os
import sys

os.environ.setdefault("PADDLE_PDX_DISABLE_MODEL_SOURCE_CHECK", "True")
MODELS = os.environ.get("ANCHOR_MODELS") or os.path.join(os.path.dirname(sys.executable), "..", "..", "models")


def main() -> int:
    from paddleocr import PaddleOCR

    ocr = PaddleOCR(
        text_detection_model_name="PP-OCRv4_mobile_det", text_detection_model_dir=f"{MODELS}/PP-OCRv4_mobile_det",
        text_recognition_model_name="PP-OCRv4_mobile_rec", text_recognition_model_dir=f"{MODELS}/PP-OCRv4_mobile_rec",
        use_doc_orientation_classify=False, use_doc_unwarping=False, use_textline_orientation=False,
        text_det_limit_side_len=960, text_det_limit_type="max", text_det_thresh=0.3, text_det_box_thresh=0.6,
        text_det_unclip_ratio=1.5, text_rec_score_thresh=0.0, text_recognition_batch_size=6, device="cpu",
        engine="paddle_static", engine_config={"run_mode": "mkldnn", "cpu_threads": 2, "enable_new_ir": False},
        return_word_box=True)
    for path in sys.argv[1:]:
        (res,) = ocr.predict(path)
        boxes = json.loads(json.dumps(res["text_word_boxes"], default=lambda o: o.tolist()))
        print(json.dumps({"path": path, "rec_texts": res["rec_texts"], "text_word": res["text_word"],
                          "text_word_boxes": boxes}, ensure_ascii=False), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
