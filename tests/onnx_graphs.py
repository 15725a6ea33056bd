"""Tiny models in each output layout, whose outputs are known constants: ONNX, and TFLite and a
TensorFlow SavedModel for the formats OpenVINO reads.

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


def yolov8_model(
    path: Path, metadata: dict[str, str] | None = None, dynamic_batch: bool = False, dynamic_size: bool = False
) -> Path:
    table = _with_empty_anchors(np.concatenate([YOLO_BOXES, YOLO_CLASS_SCORES], axis=1))  # N × (4 + C)
    sides = ["height", "width"] if dynamic_size else [640, 640]
    input_shape = ["batch" if dynamic_batch else 1, 3, *sides]
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


# The same boxes as `ssd_tf_model`, so a test can expect the same frame pixels from either file.
SSD_TF_OUTPUTS = {
    "detection_boxes": np.array([[[0.5, 0.25, 1.0, 0.5], [0.1, 0.1, 0.2, 0.2], [0, 0, 0, 0]]], np.float32),
    "detection_classes": np.array([[1, 2, 0]], np.float32),
    "detection_scores": np.array([[0.85, 0.45, 0.0]], np.float32),
    "num_detections": np.array([2], np.float32),
}


def tflite_ssd_model(path: Path, resize: tuple[int, int] | None = (320, 320)) -> Path:
    """A TFLite flatbuffer in TensorFlow's SSD layout (boxes, classes, scores, count), as Frigate's CPU
    detector files are: the constants of `SSD_TF_OUTPUTS` plus 0 × the mean of the picture.

    Its input is [1, ?, ?, 3] float32 (any size); with `resize` (width, height) it first resizes the
    picture itself (RESIZE_BILINEAR), as TF OD API exports do, so its own input size is that one."""
    import flatbuffers
    import tflite
    from tflite.BuiltinOperator import BuiltinOperator as Op
    from tflite.BuiltinOptions import BuiltinOptions as Options
    from tflite.TensorType import TensorType

    builder = flatbuffers.Builder(1024)
    buffers = [b""]  # buffer 0 is the empty one that tensors without data point at
    tensors: list[tuple[str, list[int], list[int], int, int]] = []  # name, shape, signature, type, buffer

    def tensor(name: str, shape: list[int], kind: int = TensorType.FLOAT32, data: np.ndarray | None = None) -> int:
        if data is not None:
            buffers.append(data.tobytes())
        signature = list(shape)
        shape = [1 if size < 0 else size for size in shape]
        tensors.append((name, shape, signature, kind, len(buffers) - 1 if data is not None else 0))
        return len(tensors) - 1

    images = tensor("images", [1, -1, -1, 3])
    operators: list[tuple[int, list[int], list[int], int]] = []  # opcode, inputs, outputs, options type
    pixels = images
    if resize is not None:
        size = tensor("size", [2], TensorType.INT32, np.array(resize[::-1], np.int32))
        pixels = tensor("resized", [1, resize[1], resize[0], 3])
        operators.append((Op.RESIZE_BILINEAR, [images, size], [pixels], Options.ResizeBilinearOptions))
    axes = tensor("axes", [4], TensorType.INT32, np.arange(4, dtype=np.int32))
    mean = tensor("mean", [])
    zero = tensor("zero", [], data=np.zeros((), np.float32))
    nothing = tensor("nothing", [])
    operators += [(Op.MEAN, [pixels, axes], [mean], Options.ReducerOptions),
                  (Op.MUL, [mean, zero], [nothing], Options.MulOptions)]  # fmt: skip
    outputs = []
    for name, value in SSD_TF_OUTPUTS.items():
        constant = tensor(f"{name}_value", list(value.shape), data=value)
        outputs.append(tensor(name, list(value.shape)))
        operators.append((Op.ADD, [constant, nothing], [outputs[-1]], Options.AddOptions))

    def vector(values: list[int]) -> int:
        return builder.CreateNumpyVector(np.asarray(values, np.int32))

    def tables(start, offsets: list[int]) -> int:
        start(builder, len(offsets))
        for offset in reversed(offsets):
            builder.PrependUOffsetTRelative(offset)
        return builder.EndVector()

    buffer_offsets = []
    for data in buffers:
        content = builder.CreateNumpyVector(np.frombuffer(data, np.uint8)) if data else None
        tflite.BufferStart(builder)
        if content is not None:
            tflite.BufferAddData(builder, content)
        buffer_offsets.append(tflite.BufferEnd(builder))
    tensor_offsets = []
    for name, shape, signature, kind, buffer in tensors:
        name_offset, shape_offset, signature_offset = builder.CreateString(name), vector(shape), vector(signature)
        tflite.TensorStart(builder)
        tflite.TensorAddName(builder, name_offset)
        tflite.TensorAddShape(builder, shape_offset)
        tflite.TensorAddShapeSignature(builder, signature_offset)
        tflite.TensorAddType(builder, kind)
        tflite.TensorAddBuffer(builder, buffer)
        tensor_offsets.append(tflite.TensorEnd(builder))
    codes = sorted({code for code, *_ in operators})
    code_offsets = []
    for code in codes:
        tflite.OperatorCodeStart(builder)
        tflite.OperatorCodeAddDeprecatedBuiltinCode(builder, min(code, 127))
        tflite.OperatorCodeAddBuiltinCode(builder, code)
        tflite.OperatorCodeAddVersion(builder, 1)
        code_offsets.append(tflite.OperatorCodeEnd(builder))
    starts = {
        Options.ResizeBilinearOptions: (tflite.ResizeBilinearOptionsStart, tflite.ResizeBilinearOptionsEnd),
        Options.ReducerOptions: (tflite.ReducerOptionsStart, tflite.ReducerOptionsEnd),
        Options.MulOptions: (tflite.MulOptionsStart, tflite.MulOptionsEnd),
        Options.AddOptions: (tflite.AddOptionsStart, tflite.AddOptionsEnd),
    }
    operator_offsets = []
    for code, inputs, results, options in operators:
        start, end = starts[options]
        start(builder)
        options_offset = end(builder)
        inputs_offset, results_offset = vector(inputs), vector(results)
        tflite.OperatorStart(builder)
        tflite.OperatorAddOpcodeIndex(builder, codes.index(code))
        tflite.OperatorAddInputs(builder, inputs_offset)
        tflite.OperatorAddOutputs(builder, results_offset)
        tflite.OperatorAddBuiltinOptionsType(builder, options)
        tflite.OperatorAddBuiltinOptions(builder, options_offset)
        operator_offsets.append(tflite.OperatorEnd(builder))
    tensors_vector = tables(tflite.SubGraphStartTensorsVector, tensor_offsets)
    operators_vector = tables(tflite.SubGraphStartOperatorsVector, operator_offsets)
    inputs_vector, outputs_vector, graph_name = vector([images]), vector(outputs), builder.CreateString("main")
    tflite.SubGraphStart(builder)
    tflite.SubGraphAddTensors(builder, tensors_vector)
    tflite.SubGraphAddInputs(builder, inputs_vector)
    tflite.SubGraphAddOutputs(builder, outputs_vector)
    tflite.SubGraphAddOperators(builder, operators_vector)
    tflite.SubGraphAddName(builder, graph_name)
    subgraph = tflite.SubGraphEnd(builder)
    subgraphs = tables(tflite.ModelStartSubgraphsVector, [subgraph])
    codes_vector = tables(tflite.ModelStartOperatorCodesVector, code_offsets)
    buffers_vector = tables(tflite.ModelStartBuffersVector, buffer_offsets)
    description = builder.CreateString("edgewatch test graph")
    tflite.ModelStart(builder)
    tflite.ModelAddVersion(builder, 3)
    tflite.ModelAddOperatorCodes(builder, codes_vector)
    tflite.ModelAddSubgraphs(builder, subgraphs)
    tflite.ModelAddDescription(builder, description)
    tflite.ModelAddBuffers(builder, buffers_vector)
    builder.Finish(tflite.ModelEnd(builder), file_identifier=b"TFL3")
    path.write_bytes(builder.Output())
    return path


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, payload: int | str | bytes) -> bytes:
    """One protobuf field: a varint, or a length-delimited string / message."""
    if isinstance(payload, int):
        return _varint(number << 3) + _varint(payload)
    payload = payload.encode() if isinstance(payload, str) else payload
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def saved_model_folder(folder: Path, frozen_graph: Path, inputs: dict[str, str], outputs: dict[str, str]) -> Path:
    """A TensorFlow SavedModel folder (`saved_model.pb`, `variables/`) holding a frozen graph, with a
    `serving_default` signature naming its tensors (key → tensor name), as `tf.saved_model.save` writes
    one; written with protobuf's wire format, since TensorFlow is too large to install for the tests.

    SavedModel = {1: schema version, 2: MetaGraphDef}; MetaGraphDef = {1: {4: tag}, 2: GraphDef,
    5: {signature name: SignatureDef}}; SignatureDef = {1: inputs, 2: outputs, 3: method}; a TensorInfo
    is {1: tensor name, 2: dtype} (DT_FLOAT 1, DT_UINT8 4: the only ones a detector needs here)."""

    def tensors(field: int, named: dict[str, str], dtype: int) -> bytes:
        return b"".join(
            _field(field, _field(1, key) + _field(2, _field(1, name) + _field(2, dtype))) for key, name in named.items()
        )

    signature = tensors(1, inputs, 4) + tensors(2, outputs, 1) + _field(3, "tensorflow/serving/predict")
    meta_graph = (
        _field(1, _field(4, "serve"))
        + _field(2, frozen_graph.read_bytes())
        + _field(5, _field(1, "serving_default") + _field(2, signature))
    )
    (folder / "variables").mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(_field(1, 1) + _field(2, meta_graph))
    return folder
