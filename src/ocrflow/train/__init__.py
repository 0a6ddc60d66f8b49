"""Fine-tuning of the PP-OCR detection and recognition models in PyTorch (`pip install 'ocrflow[train]'`).

`ocrflow train rec|det|export` (cli.py). The shipped ONNX models are turned into torch modules with
exactly the same maths (convert.py), trained with CTC (rec) or the DB loss (det), and exported back
to an ONNX model directory the pipeline YAML accepts as rec_model: / det_model: (export.py).
"""
