"""Request and response models of the PaddleX 3.0-beta2 basic-serving OCR API."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# A 40x16 PNG (white, one black bar): a valid example for the docs page and the schema tests.
EXAMPLE_PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAACgAAAAQCAAAAABBvGJxAAAAOklEQVQoFY3BAREAMBCDMPAvmr2CXRNjY2yMjbExNsbGOPITxzjyE8c48hP"
    "HOPITx9gYG2NjbIyNsXmenhQB+kk0ZAAAAABJRU5ErkJggg=="
)


class InferenceParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    maxLongSide: int | None = Field(
        None, gt=0, strict=True,
        description="Before text detection, the image is scaled so that its longer side is at most this many "
        "pixels (default: the pipeline's limit_side_len, 960). Polygons are always in the original image's "
        "coordinates.",
    )
    # PaddleX 3.x's stage switches (ocrflow.stages); absent: as the server's pipeline is configured.
    useDocOrientationClassify: bool | None = Field(
        None, strict=True,
        description="Turn the page upright first (0/90/180/270). Polygons are then in the coordinates of the "
        "turned page, and the result picture shows it.",
    )
    useDocUnwarping: bool | None = Field(
        None, strict=True, description="Flatten a photographed, curved page first (UVDoc).")
    useTextlineOrientation: bool | None = Field(
        None, strict=True, description="Turn upside-down text lines before recognition (0/180).")


class InferRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"file": EXAMPLE_PNG, "fileType": 1}]},
    )

    file: str = Field(
        ..., min_length=1,
        description="The http(s) URL of an image or PDF file the server can reach, or the Base64-encoded "
        "content of such a file. For PDFs with more than 10 pages (max_pdf_pages), only the first 10 are used.",
    )
    fileType: Literal[0, 1] | None = Field(
        None,
        description="0: PDF, 1: image. When absent it is inferred from the URL's extension; Base64 content "
        "needs it.",
    )
    inferenceParams: InferenceParams | None = Field(None, description="Inference parameters.")

    @field_validator("fileType", mode="before")
    @classmethod
    def _integer_file_type(cls, value):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError("fileType must be the integer 0 (PDF) or 1 (image)")
        return value


class Text(BaseModel):
    poly: list[list[int]] = Field(..., description="Vertices [x, y] of the polygon around the text, in the "
                                  "original image's pixels.")
    text: str
    score: float = Field(..., description="Recognition score in [0, 1].")


class OCRResultItem(BaseModel):
    texts: list[Text]
    image: str = Field(..., description="The side-by-side result picture, JPEG, Base64.")


class ImageInfo(BaseModel):
    width: int
    height: int
    type: Literal["image"]


class PageInfo(BaseModel):
    width: int
    height: int


class PDFInfo(BaseModel):
    numPages: int = Field(..., description="Pages read (at most max_pdf_pages).")
    pages: list[PageInfo]
    type: Literal["pdf"]


class InferResult(BaseModel):
    ocrResults: list[OCRResultItem] = Field(..., description="One entry for an image, one per page for a PDF.")
    dataInfo: ImageInfo | PDFInfo


class InferResponse(BaseModel):
    logId: str
    errorCode: Literal[0]
    errorMsg: Literal["Success"]
    result: InferResult


class HealthResponse(BaseModel):
    logId: str
    errorCode: Literal[0]
    errorMsg: Literal["Healthy"]


class ErrorResponse(BaseModel):
    logId: str = Field(..., description="The request's id, also in the server's log line and X-Log-Id header.")
    errorCode: int = Field(..., description="The HTTP status code.")
    errorMsg: str


ERRORS = {
    400: "A body that cannot be read at all (e.g. not UTF-8).",
    403: "A URL the server refuses to fetch (loopback, private, link-local or metadata address).",
    408: "The request body did not arrive within body_timeout seconds.",
    413: "The request body, or the file at the URL, is too large.",
    422: "Invalid request: bad JSON or parameters, bad Base64, unknown or mismatched fileType, an unreadable "
    "image or PDF, an image above the pixel limit, a URL that is not http(s).",
    500: "A bug on the server.",
    502: "The URL's server failed or answered with an error.",
    503: "Too many requests in flight; retry after Retry-After seconds.",
    504: "The URL's server, or the OCR itself, took longer than the time limit.",
}


def error_responses(*codes: int) -> dict:
    return {code: {"model": ErrorResponse, "description": ERRORS[code]} for code in codes}
