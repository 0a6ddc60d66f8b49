"""ONNX -> PyTorch: the shipped PP-OCR models as trainable torch modules, with the exact same maths.

`OnnxGraphModule` runs the ONNX graph node by node with torch operations. The Paddle parameters
(the Constant nodes that keep their Paddle names, e.g. `conv2d_0.w_0`, `linear_77.b_0`,
`batch_norm_0.w_0`) become `nn.Parameter`s; batch-norm running statistics become buffers; the
exporter's helper constants (`p2o.*`, `fill_constant*`) stay constants. Integer tensors in these
graphs only ever compute shapes (Shape -> Cast -> Slice -> Concat -> Reshape): they are kept as
Python lists of sizes, so tracing the module for ONNX export records them as dynamic shape
operations and the exported model keeps its dynamic batch, height and width.

Only the operators the PP-OCR mobile det/rec graphs use are implemented; an unknown operator is an
error that names it. (onnx2torch was tried first: it imports torchvision, whose only package-index
build is CUDA-linked and fails to load next to a CPU build of torch.)
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import helper, numpy_helper
from torch import nn

HELPER_PREFIXES = ("p2o.", "fill_constant")


class ShapeList(list):
    """A 1-D integer tensor of a shape computation, kept as a list of sizes (ints or traced sizes)."""


def _attrs(node) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _safe(name: str) -> str:
    return name.replace(".", "__")


def _ints(value) -> list[int]:
    if isinstance(value, ShapeList):
        return [int(v) for v in value]
    if isinstance(value, torch.Tensor):
        return [int(v) for v in value.reshape(-1).tolist()]
    return [int(v) for v in np.asarray(value).reshape(-1)]


def _size(x: torch.Tensor, dim: int):
    """x's size along dim; recorded as a dynamic Shape op while tracing for export."""
    return x.shape[dim]


class OnnxGraphModule(nn.Module):
    """A PP-OCR ONNX graph as a torch module. forward(x) -> the graph's (first) output.

    forward(x, upto=name) stops at the value `name` and returns it (e.g. the logits before the last
    Sigmoid / Softmax, for a numerically stable loss).
    """

    def __init__(self, model: onnx.ModelProto, trainable: bool = True):
        super().__init__()
        graph = model.graph
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
        # Batch-norm statistics: frozen (running values used, as at inference) unless bn_train is set;
        # the affine weights train either way. Small fine-tuning batches make poor statistics.
        self.bn_train = False
        self.input_name = graph.input[0].name
        self.output_name = graph.output[0].name
        self.consts: dict[str, np.ndarray] = {}
        self.param_names: dict[str, str] = {}  # onnx value name -> attribute name
        bn_stats = set()
        for node in graph.node:
            if node.op_type == "BatchNormalization":
                bn_stats.update(node.input[3:5])
        for init in graph.initializer:  # some exporters use initializers instead of Constant nodes
            self._add_const(init.name, numpy_helper.to_array(init), bn_stats, trainable)
        self._free_cache: dict = {}
        self.nodes = []
        for node in graph.node:
            if node.op_type == "Constant":
                attrs = _attrs(node)
                if "value" not in attrs:
                    raise NotImplementedError(f"Constant node {node.output[0]} without a tensor value")
                self._add_const(node.output[0], numpy_helper.to_array(attrs["value"]), bn_stats, trainable)
                continue
            if not hasattr(self, f"_op_{node.op_type}"):
                where = node.name or node.output[0]
                raise NotImplementedError(f"ONNX operator {node.op_type} ({where}) is not supported")
            self.nodes.append((node.op_type, list(node.input), list(node.output), _attrs(node)))

    def _add_const(self, name: str, array: np.ndarray, bn_stats: set, trainable: bool) -> None:
        is_param = array.dtype.kind == "f" and not name.startswith(HELPER_PREFIXES)
        if not is_param:
            self.consts[name] = array
            return
        attr = _safe(name)
        tensor = torch.from_numpy(np.ascontiguousarray(array).astype(np.float32))
        if name in bn_stats:
            self.register_buffer(attr, tensor)
        else:
            self.register_parameter(attr, nn.Parameter(tensor, requires_grad=trainable))
        self.param_names[name] = attr

    def freeze(self, fraction: float) -> int:
        """Stop training the parameters of the first `fraction` of the layers (graph order: the early
        backbone); nothing is back-propagated through them then. Returns how many tensors were frozen."""
        cut = int(round(len(self.nodes) * fraction))
        frozen = {self.param_names[i] for _, inputs, _, _ in self.nodes[:cut] for i in inputs if i in self.param_names}
        for attr in frozen:
            value = getattr(self, attr)
            if isinstance(value, nn.Parameter):
                value.requires_grad_(False)
        return len(frozen)

    # -- running ----------------------------------------------------------------------------
    def value(self, name: str, env: dict):
        if name in env:
            return env[name]
        if name in self.param_names:
            return getattr(self, self.param_names[name])
        if name in self.consts:
            array = self.consts[name]
            if array.dtype.kind in "iu":
                return ShapeList(int(v) for v in array.reshape(-1)) if array.ndim else int(array)
            return torch.from_numpy(array.astype(np.float32))
        if name == "":
            return None
        raise KeyError(f"ONNX value {name!r} is not computed before it is used")

    def _last_uses(self, nodes) -> list[list[str]]:
        """For each node of the list, the values it is the last reader of (freed after it runs)."""
        key = id(nodes)
        cached = self._free_cache.get(key)
        if cached is not None and cached[0] is nodes:
            return cached[1]
        last: dict[str, int] = {}
        for k, (_, inputs, _, _) in enumerate(nodes):
            for name in inputs:
                last[name] = k
        free: list[list[str]] = [[] for _ in nodes]
        for name, k in last.items():
            free[k].append(name)
        self._free_cache[key] = (nodes, free)
        return free

    def run_nodes(self, nodes, env: dict, stop: str | None = None, keep=()) -> dict:
        """Run nodes over env (value name -> value). A value is dropped after its last reader in
        `nodes` (unless in keep), so memory holds only what is still needed (and what autograd saved)."""
        free = self._last_uses(nodes)
        for k, (op, inputs, outputs, attrs) in enumerate(nodes):
            args = [self.value(i, env) for i in inputs]
            result = getattr(self, f"_op_{op}")(args, attrs)
            if len(outputs) == 1:
                env[outputs[0]] = result
            else:
                env.update(zip(outputs, result))
            if stop is not None and stop in outputs:
                break
            for name in free[k]:
                if name not in keep:
                    env.pop(name, None)
        return env

    def forward(self, x: torch.Tensor, upto: str | None = None) -> torch.Tensor:
        env = self.run_nodes(self.nodes, {self.input_name: x}, stop=upto)
        return env[upto or self.output_name]

    # -- operators (ONNX semantics, opset <= 17) -------------------------------------------
    def _binary(self, args, fn):
        a, b = args
        if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
            return fn(a.to(b.device) if a.device != b.device else a, b)
        return fn(a, b)

    def _op_Add(self, a, _):
        return self._binary(a, torch.add)

    def _op_Sub(self, a, _):
        return self._binary(a, torch.sub)

    def _op_Mul(self, a, _):
        return self._binary(a, torch.mul)

    def _op_Div(self, a, _):
        return self._binary(a, torch.div)

    def _op_Pow(self, a, _):
        x, p = a
        if isinstance(p, torch.Tensor) and p.numel() == 1:
            p = float(p.reshape(-1)[0])
        return torch.pow(x, p)

    def _op_Sqrt(self, a, _):
        return torch.sqrt(a[0])

    def _op_Relu(self, a, _):
        return torch.relu(a[0])

    def _op_Sigmoid(self, a, _):
        return torch.sigmoid(a[0])

    def _op_HardSigmoid(self, a, attrs):
        return torch.clamp(a[0] * attrs.get("alpha", 0.2) + attrs.get("beta", 0.5), 0.0, 1.0)

    def _op_HardSwish(self, a, _):
        return F.hardswish(a[0])

    def _op_Clip(self, a, attrs):
        x = a[0]
        lo = a[1] if len(a) > 1 and a[1] is not None else attrs.get("min")
        hi = a[2] if len(a) > 2 and a[2] is not None else attrs.get("max")
        lo = float(lo.reshape(-1)[0]) if isinstance(lo, torch.Tensor) else lo
        hi = float(hi.reshape(-1)[0]) if isinstance(hi, torch.Tensor) else hi
        return torch.clamp(x, lo, hi)

    def _op_Conv(self, a, attrs):
        x, w = a[0], a[1]
        b = a[2] if len(a) > 2 else None
        pads = attrs.get("pads", [0] * (2 * (w.dim() - 2)))
        if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            raise NotImplementedError("Conv auto_pad is not supported")
        n = len(pads) // 2
        if pads[:n] == pads[n:]:
            padding = pads[:n]
        else:  # asymmetric: pad explicitly (F.pad takes the last dimension first)
            x = F.pad(x, [p for i in reversed(range(n)) for p in (pads[i], pads[i + n])])
            padding = [0] * n
        conv = F.conv2d if w.dim() == 4 else F.conv1d
        return conv(x, w, b, stride=attrs.get("strides", 1), padding=padding,
                    dilation=attrs.get("dilations", 1), groups=attrs.get("group", 1))

    def _op_ConvTranspose(self, a, attrs):
        x, w = a[0], a[1]
        b = a[2] if len(a) > 2 else None
        pads = attrs.get("pads", [0, 0, 0, 0])
        if pads[:2] != pads[2:] or "output_shape" in attrs:
            raise NotImplementedError("ConvTranspose with asymmetric pads / output_shape is not supported")
        return F.conv_transpose2d(x, w, b, stride=attrs.get("strides", 1), padding=pads[:2],
                                  output_padding=attrs.get("output_padding", 0), groups=attrs.get("group", 1),
                                  dilation=attrs.get("dilations", 1))

    def _op_BatchNormalization(self, a, attrs):
        x, scale, bias, mean, var = a
        # ONNX/Paddle momentum m: running = m * running + (1 - m) * batch; torch's is 1 - m.
        return F.batch_norm(x, mean, var, scale, bias, training=self.training and self.bn_train,
                            momentum=1.0 - attrs.get("momentum", 0.9), eps=attrs.get("epsilon", 1e-5))

    def _op_GlobalAveragePool(self, a, _):
        return a[0].mean(dim=(2, 3), keepdim=True)

    def _op_AveragePool(self, a, attrs):
        pads = attrs.get("pads", [0, 0, 0, 0])
        if pads[:2] != pads[2:]:
            raise NotImplementedError("AveragePool with asymmetric pads is not supported")
        return F.avg_pool2d(a[0], attrs["kernel_shape"], attrs.get("strides", attrs["kernel_shape"]), pads[:2],
                            ceil_mode=bool(attrs.get("ceil_mode", 0)),
                            count_include_pad=bool(attrs.get("count_include_pad", 0)))

    def _op_Resize(self, a, attrs):
        x = a[0]
        mode = attrs.get("mode", b"nearest")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        ctm = attrs.get("coordinate_transformation_mode", b"half_pixel")
        ctm = ctm.decode() if isinstance(ctm, bytes) else ctm
        scales = a[2] if len(a) > 2 else None
        if mode != "nearest" or ctm != "asymmetric" or scales is None or not isinstance(scales, torch.Tensor):
            raise NotImplementedError(f"Resize mode={mode} coordinate_transformation_mode={ctm} is not supported")
        s = [float(v) for v in scales.tolist()]
        if s[:2] != [1.0, 1.0]:
            raise NotImplementedError("Resize over batch or channels is not supported")
        return F.interpolate(x, scale_factor=s[2:], mode="nearest")

    def _op_Concat(self, a, attrs):
        if all(isinstance(v, (ShapeList, int)) for v in a):
            out = ShapeList()
            for v in a:
                out.extend(v if isinstance(v, ShapeList) else [v])
            return out
        return torch.cat(a, dim=attrs["axis"])

    def _op_Shape(self, a, _):
        x = a[0]
        return ShapeList(_size(x, i) for i in range(x.dim()))

    def _op_Cast(self, a, attrs):
        x = a[0]
        if isinstance(x, (ShapeList, int)):
            return x
        to = attrs["to"]
        dtype = {1: torch.float32, 6: torch.int32, 7: torch.int64, 10: torch.float16, 11: torch.float64}.get(to)
        if dtype is None:
            raise NotImplementedError(f"Cast to ONNX type {to} is not supported")
        return x.to(dtype)

    def _op_Slice(self, a, attrs):
        x = a[0]
        if len(a) > 1:
            starts, ends = _ints(a[1]), _ints(a[2])
            axes = _ints(a[3]) if len(a) > 3 and a[3] is not None else list(range(len(starts)))
            steps = _ints(a[4]) if len(a) > 4 and a[4] is not None else [1] * len(starts)
        else:  # opset < 10: attributes
            starts, ends = attrs["starts"], attrs["ends"]
            axes = attrs.get("axes", list(range(len(starts))))
            steps = [1] * len(starts)
        if isinstance(x, ShapeList):
            if axes != [0]:
                raise NotImplementedError("Slice of a shape along an axis other than 0")
            return ShapeList(x[slice(starts[0], ends[0], steps[0])])
        index = [slice(None)] * x.dim()
        for start, end, axis, step in zip(starts, ends, axes, steps):
            if step <= 0:
                raise NotImplementedError("Slice with a non-positive step is not supported")
            index[axis] = slice(start, None if end >= 2**31 - 1 else end, step)
        return x[tuple(index)]

    def _op_Squeeze(self, a, attrs):
        x = a[0]
        axes = _ints(a[1]) if len(a) > 1 and a[1] is not None else attrs.get("axes")
        if axes is None:
            return torch.squeeze(x)
        for axis in sorted((ax % x.dim() for ax in axes), reverse=True):
            x = x.squeeze(axis)
        return x

    def _op_Unsqueeze(self, a, attrs):
        x = a[0]
        axes = _ints(a[1]) if len(a) > 1 and a[1] is not None else attrs["axes"]
        rank = x.dim() + len(axes)
        for axis in sorted(ax % rank for ax in axes):
            x = x.unsqueeze(axis)
        return x

    def _op_Reshape(self, a, attrs):
        x, shape = a
        target = list(shape) if isinstance(shape, ShapeList) else _ints(shape)
        if not attrs.get("allowzero", 0):  # 0 copies the input's size there
            target = [_size(x, i) if isinstance(v, int) and v == 0 else v for i, v in enumerate(target)]
        return x.reshape(target)

    def _op_Flatten(self, a, attrs):
        x = a[0]
        axis = attrs.get("axis", 1) % max(x.dim(), 1)
        return x.reshape(math.prod(x.shape[:axis]) if axis else 1, -1)

    def _op_Transpose(self, a, attrs):
        x = a[0]
        perm = attrs.get("perm", list(reversed(range(x.dim()))))
        return x.permute(*perm)

    def _op_MatMul(self, a, _):
        return self._binary(a, torch.matmul)

    def _op_Gemm(self, a, attrs):
        x, w = a[0], a[1]
        if attrs.get("transA", 0):
            x = x.t()
        if attrs.get("transB", 0):
            w = w.t()
        y = attrs.get("alpha", 1.0) * (x @ w)
        if len(a) > 2 and a[2] is not None:
            y = y + attrs.get("beta", 1.0) * a[2]
        return y

    def _op_ReduceMean(self, a, attrs):
        x = a[0]
        axes = _ints(a[1]) if len(a) > 1 and a[1] is not None else attrs.get("axes")
        keep = bool(attrs.get("keepdims", 1))
        return x.mean(dim=tuple(axes) if axes is not None else None, keepdim=keep)

    def _op_Softmax(self, a, attrs):
        x = a[0]
        axis = attrs.get("axis", -1 if self.opset >= 13 else 1) % x.dim()
        if self.opset >= 13 or axis == x.dim() - 1:
            return torch.softmax(x, dim=axis)
        flat = x.reshape(math.prod(x.shape[:axis]), -1)  # opset < 13: softmax over the flattened tail
        return torch.softmax(flat, dim=1).reshape(x.shape)


# -- the two PP-OCR models --------------------------------------------------------------------
def _producers(nodes) -> dict[str, int]:
    return {out: k for k, (_, _, outputs, _) in enumerate(nodes) for out in outputs}


class RecModel(nn.Module):
    """PP-OCR recognition: forward(x N x 3 x 48 x W) -> probabilities N x T x C (as the ONNX model).

    log_probs(x) gives log-softmax over the logits before the model's final Softmax (for CTC).
    """

    def __init__(self, graph: OnnxGraphModule):
        super().__init__()
        self.graph = graph
        op, inputs, outputs, attrs = graph.nodes[-1]
        if op != "Softmax" or outputs[0] != graph.output_name:
            raise ValueError("the recognition model does not end in Softmax")
        self.logits_name = inputs[0]
        self.softmax_axis = attrs.get("axis", -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.graph(x)

    def log_probs(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.graph(x, upto=self.logits_name)
        return F.log_softmax(logits, dim=self.softmax_axis)


class DetModel(nn.Module):
    """PP-OCR DB detection with a threshold branch for training.

    forward(x) -> the probability (shrink) map N x 1 x H x W, exactly the ONNX model's output.
    train_maps(x) -> (shrink logits, shrink probabilities, threshold map), the threshold branch being
    a copy of the binarisation head (same architecture, as in DB), initialised with its weights.
    """

    def __init__(self, graph: OnnxGraphModule):
        super().__init__()
        self.graph = graph
        nodes = graph.nodes
        producers = _producers(nodes)
        known = set(graph.param_names) | set(graph.consts)

        def dynamic_inputs(inputs):
            return [i for i in inputs if i and i not in known]

        # Walk back from the output while each node has one computed input: that is the DB head.
        k = len(nodes) - 1
        if nodes[k][0] != "Sigmoid" or nodes[k][2][0] != graph.output_name:
            raise ValueError("the detection model does not end in Sigmoid")
        head = [k]
        while True:
            dyn = dynamic_inputs(nodes[head[-1]][1])
            if len(dyn) != 1 or dyn[0] not in producers:
                break
            prev = producers[dyn[0]]
            if len(dynamic_inputs(nodes[prev][1])) != 1:  # a merge (the neck's Concat): the head starts after it
                break
            head.append(prev)
        head.reverse()
        self.head_input = dynamic_inputs(nodes[head[0]][1])[0]
        convs = [nodes[i][0] for i in head if nodes[i][0] in ("Conv", "ConvTranspose")]
        if convs != ["Conv", "ConvTranspose", "ConvTranspose"]:
            raise ValueError(f"unexpected DB head layers {convs}")
        self.body_nodes = [n for i, n in enumerate(nodes) if i not in set(head)]
        self.head_nodes = [nodes[i] for i in head]
        self.logits_name = nodes[head[-1]][1][0]
        # the threshold branch: the same layers with copied parameters, renamed "thresh/..."
        self.thresh = nn.Module()
        self.thresh_names: dict[str, str] = {}
        rename = {}
        for _, inputs, outputs, _ in self.head_nodes:
            for name in inputs:
                if name in graph.param_names and name not in self.thresh_names:
                    attr = graph.param_names[name]
                    src = getattr(graph, attr)
                    if isinstance(src, nn.Parameter):
                        self.thresh.register_parameter(attr, nn.Parameter(src.detach().clone()))
                    else:
                        self.thresh.register_buffer(attr, src.detach().clone())
                    self.thresh_names[name] = attr
            for name in outputs:
                rename[name] = f"thresh/{name}"
        self.thresh_nodes = [
            (op, [rename.get(i, i) for i in inputs], [rename[o] for o in outputs], copy.deepcopy(attrs))
            for op, inputs, outputs, attrs in self.head_nodes
        ]
        self.thresh_output = rename[graph.output_name]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.graph(x)

    def _value(self, name, env):
        if name in self.thresh_names:
            return getattr(self.thresh, self.thresh_names[name])
        return self.graph.value(name, env)

    def train_maps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        g = self.graph
        env = g.run_nodes(self.body_nodes, {g.input_name: x})
        env = g.run_nodes(self.head_nodes, env, keep={self.logits_name, self.head_input})
        logits, prob = env[self.logits_name], env[g.output_name]
        for op, inputs, outputs, attrs in self.thresh_nodes:
            args = [self._value(i, env) for i in inputs]
            env[outputs[0]] = getattr(g, f"_op_{op}")(args, attrs)
        return logits, prob, env[self.thresh_output]


def load_onnx(path_or_bytes) -> onnx.ModelProto:
    if isinstance(path_or_bytes, (bytes, bytearray)):
        return onnx.load_from_string(bytes(path_or_bytes))
    return onnx.load(str(Path(path_or_bytes)))


def build_model(task: str, onnx_model: onnx.ModelProto) -> RecModel | DetModel:
    graph = OnnxGraphModule(onnx_model)
    return RecModel(graph) if task == "rec" else DetModel(graph)
