"""OpenVINO backend (CPU): the fastest exact path on x86 CPUs, and bf16 for use_hpip."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

from ..errors import DeviceError, ModelError
from .device import Device
from .jobs import RunsNow

METADATA_KEYS = ("character",)  # the ONNX metadata the pipeline reads

# OpenVINO's Python binding builds its numpy type tables on the first inference of the process
# (C++ function-local statics that call into Python): two threads making their first inference at
# once can deadlock on that, one holding the GIL and waiting for the table, the other the reverse
# (seen with OCRmyPDF's page threads: 3 hangs in 20 runs of 8 threads). So the first one runs alone.
_first_inference = threading.Lock()
_warm = False


def _alone_if_first(call):
    global _warm
    if _warm:
        return call()
    with _first_inference:
        out = call()
        _warm = True
        return out


class OvModel(RunsNow):
    """One ONNX model compiled by OpenVINO for the CPU. `run` and `submit` are thread-safe (requests
    per thread)."""

    def __init__(self, path: str | Path, device: Device, threads: int | None = None, precision: str = "f32",
                 shape_cache: int | None = None, pixels: tuple | None = None, streams: int = 1,
                 logits: bool = False, bf16_probs: bool = False, deconv_as_conv: bool = False):
        """pixels = (alpha, beta), per channel: the model takes uint8 N x H x W x C pixels p and
        computes its input p * alpha + beta (planar float32) in the graph (`takes_pixels`).
        streams > 1: that many requests run side by side (`submit`), sharing the threads.
        logits: a final Sigmoid is left out of the graph (`returns_logits`): on a 1-channel map
        OpenVINO computes it in a 16-channel blocked layout, 16 times the work.
        bf16_probs: where the model ends in a Softmax, its output is handed over in bfloat16, as the
        bit patterns in uint16 (`bf16_probs` says so): half the bytes to write and to search, and
        for non-negative numbers the patterns order as the values do, so argmax runs on them.
        deconv_as_conv: 2 x 2 transposed convolutions of stride 2 (DB's head) become 1 x 1
        convolutions to 4 times the channels + depth-to-space, the same sums: OpenVINO runs the
        transposed ones in f32 under a bf16 hint, the 1 x 1 ones in bf16."""
        import openvino as ov

        if device.kind != "cpu":
            raise DeviceError(f"the OpenVINO backend runs on the CPU only, not on {device}")
        self.path = Path(path)
        self.device = device
        self.precision = precision
        core = ov.Core()
        # Every new input shape adds compiled kernels to a cache (5000 entries by default): with
        # OCR's ever-changing shapes that is memory growing without end, so keep it small.
        if shape_cache is None:
            shape_cache = int(os.environ.get("OCRFLOW_OV_CACHE", "16"))
        config = {"INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY",
                  "CPU_RUNTIME_CACHE_CAPACITY": shape_cache}
        if precision == "bf16":
            # OpenVINO's generated subgraph kernels ("snippets") are compiled per shape; without
            # them bf16 prepares a new shape ~1.5x faster and runs as fast (f32: no difference).
            config["SNIPPETS_MODE"] = "DISABLE"
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
            # A thread count is how processes share a machine (Ray workers, OCRmyPDF's jobs). OpenVINO
            # pins each process's threads to the first cores, knowing nothing of the others: two
            # 1-thread workers would share core 0 (measured: 2 processes ran 1.05x one, not 2x).
            config["ENABLE_CPU_PINNING"] = False
        if streams > 1:
            config["NUM_STREAMS"] = streams
            config["INFERENCE_NUM_THREADS"] = threads or os.cpu_count() or streams  # in all, not per stream
        self.streams = streams
        self.settings = dict(config)  # what OpenVINO was asked for (tests, logs)
        try:
            self._model = core.read_model(str(self.path))
            if pixels is not None:
                self._model = _pixel_input(self._model, *pixels)
            self.returns_logits = logits and _drop_final_sigmoid(self._model)
            self.deconvs_rewritten = _deconv_as_conv(self._model) if deconv_as_conv else 0
            self.bf16_probs = bf16_probs and _ends_in(self._model, "Softmax")
            if self.bf16_probs:
                self._model = _bf16_output(self._model)
            self._compiled = core.compile_model(self._model, "CPU", config)
        except Exception as exc:  # OpenVINO raises RuntimeError subclasses of its own
            raise ModelError(f"OpenVINO could not load {self.path}: {exc}") from exc
        self.takes_pixels = pixels is not None
        self._local = threading.local()
        self.output_shape = [d.get_length() if d.is_static else "dynamic"
                             for d in self._model.outputs[0].get_partial_shape()]
        first = self._model.inputs[0]
        self.input_shape = [d.get_length() if d.is_static else "dynamic" for d in first.get_partial_shape()]
        self.input_dtype = np.dtype(np.uint8 if self.takes_pixels else
                                    np.float16 if first.get_element_type() == ov.Type.f16 else np.float32)

    @property
    def metadata(self) -> dict[str, str]:
        out = {}
        for key in METADATA_KEYS:
            try:
                out[key] = self._model.get_rt_info(["framework", key]).astype(str)
            except Exception:  # key absent
                continue
        return out

    def run(self, x: np.ndarray, copy: bool = True) -> np.ndarray:
        """The first output. copy=False returns a view of the request's own output buffer (no copy
        of the score map or the probabilities): this thread's next `run` overwrites it, so use it
        before then. The input is read in place, not copied, and must stay unchanged until then."""
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self._compiled.create_infer_request()
        return _handed(_alone_if_first(lambda: request.infer({0: x}, share_inputs=True, share_outputs=not copy)[0]),
                       self.bf16_probs)

    def submit(self, x: np.ndarray):
        """x started on a free request: up to `streams` run side by side. As for run(copy=False), x
        must stay unchanged until the job's result has been read, and the result is the request's own
        buffer, valid until the job is released."""
        if self.streams == 1:
            return super().submit(x)
        idle = getattr(self._local, "idle", None)
        if idle is None:
            idle = self._local.idle = []
        request = idle.pop() if idle else self._compiled.create_infer_request()
        _alone_if_first(lambda: request.start_async({0: x}, share_inputs=True))
        return _Job(request, idle, self.bf16_probs)


class _Job:
    """One started request of OvModel.submit."""

    def __init__(self, request, idle: list, bf16: bool = False):
        self._request, self._idle, self._bf16 = request, idle, bf16

    def result(self) -> np.ndarray:
        self._request.wait()
        return _handed(self._request.get_output_tensor(0).data, self._bf16)

    def release(self) -> None:
        self._idle.append(self._request)  # reused by the next submit: its output buffer is overwritten


def _handed(out: np.ndarray, bf16: bool) -> np.ndarray:
    """An output as the caller takes it: a bf16 output as its uint16 bit patterns (OpenVINO shows
    bf16 data as float16)."""
    return out.view(np.uint16) if bf16 else out


def _ends_in(model, op: str) -> bool:
    return model.get_results()[0].input_value(0).get_node().get_type_name() == op


def _drop_final_sigmoid(model) -> bool:
    """Connect the first output to the input of the Sigmoid that feeds it, if one does."""
    if not _ends_in(model, "Sigmoid"):
        return False
    result = model.get_results()[0]
    result.input(0).replace_source_output(result.input_value(0).get_node().input_value(0))
    model.validate_nodes_and_infer_types()
    return True


def _deconv_as_conv(model) -> int:
    """Replace each 2 x 2, stride 2, unpadded transposed convolution with constant weights by a
    1 x 1 convolution to 4 x Cout channels and a depth-to-space: output (co, 2i + a, 2j + b) is
    sum over ci of x(ci, i, j) * W(ci, co, a, b) either way. Returns how many were replaced."""
    import openvino.opset13 as ops

    done = 0
    for node in model.get_ordered_ops():
        if node.get_type_name() != "ConvolutionBackpropData" or node.get_input_size() != 2:
            continue
        attrs, weights = node.get_attributes(), node.input_value(1).get_node()
        if (weights.get_type_name() != "Constant" or attrs["strides"] != [2, 2] or attrs["dilations"] != [1, 1]
                or any(attrs["pads_begin"] + attrs["pads_end"] + attrs["output_padding"])):
            continue
        w = weights.get_data()  # Cin x Cout x kh x kw
        if w.shape[2:] != (2, 2):
            continue
        # channel co * 4 + a * 2 + b holds the tap (a, b) of output channel co: depth_first's order
        w = np.ascontiguousarray(w.transpose(1, 2, 3, 0).reshape(w.shape[1] * 4, w.shape[0], 1, 1))
        conv = ops.convolution(node.input_value(0), ops.constant(w), [1, 1], [0, 0], [0, 0], [1, 1])
        spread = ops.depth_to_space(conv, "depth_first", 2)
        for target in node.output(0).get_target_inputs():
            target.replace_source_output(spread.output(0))
        done += 1
    if done:
        model.validate_nodes_and_infer_types()
    return done


def _bf16_output(model):
    """model with its first output in bfloat16."""
    import openvino as ov
    from openvino.preprocess import PrePostProcessor

    ppp = PrePostProcessor(model)
    ppp.output(0).tensor().set_element_type(ov.Type.bf16)
    return ppp.build()


def _pixel_input(model, alpha, beta):
    """model with a uint8 NHWC input normalised in the graph: (p - mean) / scale per channel.

    OpenVINO compiles the conversion into its first layers, so no float copy of the input is
    made outside the model (use_hpip)."""
    import openvino as ov
    from openvino.preprocess import PrePostProcessor

    alpha, beta = np.asarray(alpha, np.float64), np.asarray(beta, np.float64)
    ppp = PrePostProcessor(model)
    inp = ppp.input(0)
    inp.tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC"))
    inp.model().set_layout(ov.Layout("NCHW"))
    inp.preprocess().convert_element_type(ov.Type.f32).mean(list(-beta / alpha)).scale(list(1 / alpha))
    return ppp.build()
