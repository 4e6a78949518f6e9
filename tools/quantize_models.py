"""Rewrite MediaPipe's fp16 models to fp32 and make int8 variants; report size, speed, accuracy.

MediaPipe ships its models with fp16 weights that a DEQUANTIZE op widens at load time, which
hides them from ai-edge-quantizer. This tool folds those ops (fp16 constants become fp32
constants) and fills in the operator codes older files leave in ``deprecated_builtin_code``
only (without that, the face models come out unquantized), then asks ai-edge-quantizer for
two int8 variants:

* ``wi8``: weight-only int8 (weights stored int8, computation in float32);
* ``dri8``: dynamic-range int8 (int8 weights, activations quantized on the fly).

Accuracy is the agreement of each variant's outputs with the original model's on real images
(scikit-image's bundled photos), resized to the model input.

    python tools/quantize_models.py [--out DIR] [NAME ...]

Needs ``pip install ai-edge-quantizer scikit-image`` (development only; the runtime never
imports it).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgemm.models import load_manifest, model_path, models_dir
from edgemm.runtime import TFLiteModel

DEFAULT_NAMES = (
    "face_detection_short_range",
    "face_landmark",
    "palm_detection_lite",
    "hand_landmark_lite",
)
# input value range each model was trained with
INPUT_RANGE = {"face_detection_short_range": (-1.0, 1.0), "pose_detection": (-1.0, 1.0)}


@dataclass(frozen=True)
class VariantReport:
    name: str
    variant: str
    size: int
    invoke_ms: float
    max_abs_err: float
    rel_err: float


def fold_fp16_weights(tflite: bytes) -> tuple[bytes, int]:
    """Replace every DEQUANTIZE(fp16 constant) with an fp32 constant; returns (model, folded)."""
    from ai_edge_litert import schema_py_generated as fb
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(tflite))
    # Older files (MediaPipe's face models) fill only ``deprecated_builtin_code`` and leave
    # ``builtin_code`` at 0 (ADD). ai-edge-quantizer reads ``builtin_code`` alone, sees nothing
    # but ADD ops and quantizes nothing; the schema's rule is the larger of the two.
    for code in model.operatorCodes:
        code.builtinCode = max(code.builtinCode, code.deprecatedBuiltinCode)
    dequantize = {
        i
        for i, code in enumerate(model.operatorCodes)
        if flatbuffer_utils.get_builtin_code_from_operator_code(code)
        == fb.BuiltinOperator.DEQUANTIZE
    }
    folded = 0
    for sg in model.subgraphs:
        keep = []
        for op in sg.operators:
            src = sg.tensors[op.inputs[0]] if op.opcodeIndex in dequantize else None
            data = model.buffers[src.buffer].data if src is not None else None
            if src is None or src.type != fb.TensorType.FLOAT16 or data is None or len(data) == 0:
                keep.append(op)
                continue
            weights = np.frombuffer(bytes(data), dtype=np.float16).astype(np.float32)
            buf = fb.BufferT()
            buf.data = np.frombuffer(weights.tobytes(), dtype=np.uint8)
            model.buffers.append(buf)
            sg.tensors[op.outputs[0]].buffer = len(model.buffers) - 1
            model.buffers[src.buffer].data = None  # the fp16 copy is no longer read
            folded += 1
        sg.operators = keep
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model)), folded


def quantize(fp32: Path, recipe_name: str) -> bytes:
    from ai_edge_quantizer import quantizer, recipe

    q = quantizer.Quantizer(str(fp32))
    q.load_quantization_recipe(getattr(recipe, recipe_name)())
    return bytes(q.quantize().quantized_model)


def sample_images(shape: tuple[int, ...], lo: float, hi: float) -> list[np.ndarray]:
    import cv2
    from skimage import data

    h, w = shape[1], shape[2]
    out = []
    for img in (data.astronaut(), data.coffee(), data.chelsea(), data.rocket()):
        x = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        out.append((x * (hi - lo) + lo)[None])
    return out


def measure(
    path: Path, inputs: list[np.ndarray], repeats: int = 50
) -> tuple[float, list[list[np.ndarray]]]:
    model = TFLiteModel(path)
    outputs = [[o.copy() for o in model.run(x)] for x in inputs]
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model.run(inputs[0])
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), outputs


def report(name: str, out_dir: Path) -> list[VariantReport]:
    entry = load_manifest()[name]
    original = model_path(name)
    lo, hi = INPUT_RANGE.get(name, (0.0, 1.0))
    images = sample_images(entry.inputs[0].shape, lo, hi)

    fp32_bytes, folded = fold_fp16_weights(original.read_bytes())
    if folded == 0:
        print(f"{name}: no fp16 weights to fold", file=sys.stderr)
    variants = {"fp16 (original)": original, "fp32": out_dir / f"{name}_fp32.tflite"}
    variants["fp32"].write_bytes(fp32_bytes)
    for suffix, recipe_name in (("wi8", "weight_only_wi8_afp32"), ("dri8", "dynamic_wi8_afp32")):
        variants[suffix] = out_dir / f"{name}_{suffix}.tflite"
        variants[suffix].write_bytes(quantize(variants["fp32"], recipe_name))

    base_ms, reference = measure(original, images)
    rows = [VariantReport(name, "fp16 (original)", original.stat().st_size, base_ms, 0.0, 0.0)]
    for label, path in list(variants.items())[1:]:
        ms, outs = measure(path, images)
        errs = [
            np.abs(o - r)
            for ro, oo in zip(reference, outs, strict=True)
            for r, o in zip(ro, oo, strict=True)
        ]
        scale = max(float(np.abs(r).max()) for ro in reference for r in ro) or 1.0
        worst = max(float(e.max()) for e in errs)
        rows.append(VariantReport(name, label, path.stat().st_size, ms, worst, worst / scale))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=list(DEFAULT_NAMES))
    parser.add_argument(
        "--out", type=Path, default=None, help="output directory (default: <models>/quantized)"
    )
    args = parser.parse_args(argv)
    out_dir = args.out or models_dir() / "quantized"
    out_dir.mkdir(parents=True, exist_ok=True)
    print(
        f"{'model':28} {'variant':16} {'size KB':>8} {'invoke ms':>9} {'max |err|':>10} {'rel err':>8}"
    )
    for name in args.names:
        for r in report(name, out_dir):
            print(
                f"{r.name:28} {r.variant:16} {r.size / 1000:8.0f} {r.invoke_ms:9.2f} "
                f"{r.max_abs_err:10.4f} {r.rel_err:8.4f}"
            )
    print(f"written to {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
