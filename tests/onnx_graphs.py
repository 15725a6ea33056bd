"""Tiny ONNX models in each output layout, whose outputs are known constants.

The graph ignores the picture's content (its output is the constant plus 0 × the input's mean, so the
input stays wired in), which lets a test say exactly which boxes must come out, in which frame pixels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def constant_model(
    path: Path,
    outputs: dict[str, np.ndarray],
    input_shape: list[int | str] = (1, 3, 640, 640),
    metadata: dict[str, str] | None = None,
) -> Path:
    """Write a model whose outputs are `outputs` (name → array), for any input of `input_shape`.

    With a named (dynamic) batch axis, each output is repeated once per image of the batch."""
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["mean"], keepdims=0),
        helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
    ]
    initializers = [numpy_helper.from_array(np.array(0, np.float32), "zero")]
    dynamic = isinstance(input_shape[0], str)
    if dynamic:
        initializers += [
            numpy_helper.from_array(np.array([0], np.int64), "first"),
            numpy_helper.from_array(np.array([1], np.int64), "second"),
        ]
        nodes += [
            helper.make_node("Shape", ["images"], ["input_shape"]),
            helper.make_node("Slice", ["input_shape", "first", "second"], ["batch"]),
        ]
    graph_outputs = []
    for name, value in outputs.items():
        value = np.asarray(value, np.float32)
        initializers.append(numpy_helper.from_array(value, f"{name}_value"))
        shape: list[int | str] = list(value.shape)
        if dynamic:
            initializers.append(numpy_helper.from_array(np.array(shape[1:], np.int64), f"{name}_rest"))
            nodes += [
                helper.make_node("Concat", ["batch", f"{name}_rest"], [f"{name}_shape"], axis=0),
                helper.make_node("Expand", [f"{name}_value", f"{name}_shape"], [f"{name}_batch"]),
                helper.make_node("Add", [f"{name}_batch", "nothing"], [name]),
            ]
            shape[0] = input_shape[0]
        else:
            nodes.append(helper.make_node("Add", [f"{name}_value", "nothing"], [name]))
        graph_outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape))
    graph = helper.make_graph(
        nodes,
        "constant",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, list(input_shape))],
        graph_outputs,
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for key, value in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


# Three candidates in 640×640 input pixels (cx, cy, w, h): A, B overlapping A (same class, lower
# score: NMS must drop it) and C of the second class.
YOLO_BOXES = np.array([[320, 320, 100, 50], [330, 322, 100, 50], [320, 200, 40, 80]], np.float32)
YOLO_CLASS_SCORES = np.array([[0.9, 0.1], [0.8, 0.05], [0.02, 0.6]], np.float32)


def _with_empty_anchors(table: np.ndarray, anchors: int = 100) -> np.ndarray:
    """Real models score thousands of anchors, nearly all near zero; pad to look like one."""
    empty = np.zeros((anchors - len(table), table.shape[1]), np.float32)
    empty[:, :4] = [10, 10, 4, 4]
    return np.concatenate([table, empty])


def yolov8_model(path: Path, metadata: dict[str, str] | None = None, dynamic_batch: bool = False) -> Path:
    table = _with_empty_anchors(np.concatenate([YOLO_BOXES, YOLO_CLASS_SCORES], axis=1))  # N × (4 + C)
    input_shape = ["batch", 3, 640, 640] if dynamic_batch else [1, 3, 640, 640]
    return constant_model(path, {"output0": table.T[None]}, input_shape, metadata)  # 1 × (4 + C) × N


def yolov5_model(path: Path) -> Path:
    objectness = np.array([[1.0], [0.9], [0.8]], np.float32)
    class_scores = np.array([[0.9, 0.1], [0.9, 0.1], [0.1, 0.75]], np.float32)  # scores 0.9, 0.81, 0.6
    table = _with_empty_anchors(np.concatenate([YOLO_BOXES, objectness, class_scores], axis=1))
    return constant_model(path, {"output0": table[None]})


def ssd_model(path: Path) -> Path:
    rows = np.array(
        [
            [0, 15, 0.9, 0.25, 0.5, 0.5, 1.0],
            [0, 7, 0.3, 0.1, 0.1, 0.2, 0.2],
            [0, 3, 0.01, 0.1, 0.1, 0.2, 0.2],  # below every threshold
            [-1, 0, 0, 0, 0, 0, 0],  # end of the list: what follows is padding
            [0, 1, 0.99, 0.0, 0.0, 1.0, 1.0],
        ],
        np.float32,
    )
    return constant_model(path, {"detection_out": rows[None, None]}, input_shape=[1, 3, 300, 300])


def ssd_tf_model(path: Path) -> Path:
    outputs = {
        "detection_boxes": np.array([[[0.5, 0.25, 1.0, 0.5], [0.1, 0.1, 0.2, 0.2], [0, 0, 0, 0]]], np.float32),
        "detection_classes": np.array([[1, 2, 0]], np.float32),
        "detection_scores": np.array([[0.85, 0.45, 0.0]], np.float32),
        "num_detections": np.array([2], np.float32),
    }
    return constant_model(path, outputs, input_shape=[1, 320, 320, 3])


def classifier_model(path: Path, logits: tuple[float, ...] = (2.0, -1.0)) -> Path:
    return constant_model(path, {"logits": np.array([logits], np.float32)}, input_shape=[1, 3, 224, 224])
