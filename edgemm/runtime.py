"""TFLite backend choice, interpreter loading and int8 (de)quantization.

Backends: ``litert`` (package ``ai-edge-litert``, the default) and ``tflite-runtime`` (the
fallback for old or 32-bit images; it needs numpy < 2 and lacks some ops). ``auto`` picks the
first importable one in that order. One :class:`TFLiteModel` per thread: interpreters are not
thread-safe, but ``invoke()`` releases the GIL so two threads use two cores.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelError

BACKENDS = ("litert", "tflite-runtime")
_MODULES = {"litert": "ai_edge_litert.interpreter", "tflite-runtime": "tflite_runtime.interpreter"}
_INSTALL = {
    "litert": "pip install ai-edge-litert",
    "tflite-runtime": "pip install 'edgemm[tflite]'",
}


def available_backends() -> list[str]:
    """Backends importable in this environment, in preference order."""
    found = []
    for name in BACKENDS:
        try:
            importlib.import_module(_MODULES[name])
        except Exception:  # ImportError, or a numpy ABI error from an old tflite-runtime
            continue
        found.append(name)
    return found


def resolve_backend(backend: str = "auto") -> str:
    if backend == "auto":
        found = available_backends()
        if not found:
            raise ModelError(
                "no TFLite backend is importable",
                "install one with: pip install ai-edge-litert  (or pip install 'edgemm[tflite]')",
            )
        return found[0]
    if backend not in BACKENDS:
        raise ModelError(
            f"unknown TFLite backend {backend!r}", f"use one of: auto, {', '.join(BACKENDS)}"
        )
    try:
        importlib.import_module(_MODULES[backend])
    except Exception as exc:
        raise ModelError(
            f"TFLite backend {backend!r} cannot be imported: {exc}",
            f"install it with: {_INSTALL[backend]}",
        ) from None
    return backend


def interpreter_class(backend: str) -> Any:
    return importlib.import_module(_MODULES[resolve_backend(backend)]).Interpreter


@dataclass(frozen=True)
class TensorInfo:
    name: str
    index: int
    shape: tuple[int, ...]
    dtype: np.dtype
    scale: float
    zero_point: int

    @property
    def quantized(self) -> bool:
        return self.scale != 0.0 and self.dtype in (np.dtype(np.int8), np.dtype(np.uint8))


def quantize(x: np.ndarray, scale: float, zero_point: int, dtype: np.dtype | type) -> np.ndarray:
    """Float → int8/uint8 with the tensor's affine parameters (round half to even, saturate)."""
    info = np.iinfo(dtype)
    q = np.rint(np.asarray(x, dtype=np.float32) / scale) + zero_point
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return (np.asarray(q, dtype=np.float32) - zero_point) * np.float32(scale)


def repair_hint(path: Path) -> str:
    return f"reinstall it with: edgemm models install --force {path.stem}"


class TFLiteModel:
    """One loaded interpreter with its tensors bound once.

    ``run(*inputs)`` sets every input (quantizing float input for int8 tensors), invokes and
    returns the outputs as float32 (dequantized where the tensor is quantized).
    """

    def __init__(
        self,
        path: str | Path,
        backend: str = "auto",
        num_threads: int = 1,
        name: str | None = None,
        input_shapes: list[list[int]] | None = None,
    ) -> None:
        """``input_shapes`` fixes dynamic input dimensions once, before tensors are allocated
        (resizing later re-initialises XNNPACK and is refused for some models)."""
        self.path = Path(path)
        self.name = name or self.path.stem
        self.backend = resolve_backend(backend)
        self.num_threads = num_threads
        if not self.path.is_file():
            raise ModelError(f"model file {self.path} not found", repair_hint(self.path))
        cls = interpreter_class(self.backend)
        try:
            self.interpreter = cls(model_path=str(self.path), num_threads=num_threads)
            if input_shapes:
                for d, shape in zip(
                    self.interpreter.get_input_details(), input_shapes, strict=False
                ):
                    self.interpreter.resize_tensor_input(d["index"], list(shape), strict=False)
            self.interpreter.allocate_tensors()
        except Exception as exc:  # the backends raise ValueError/RuntimeError with long text
            text = " ".join(str(exc).split())
            if "custom op" in text or "Didn't find op" in text or "unresolved" in text:
                raise ModelError(
                    f"model {self.path.name} needs an op that backend {self.backend!r} lacks: {text[:160]}",
                    "use runtime.backend: litert (pip install ai-edge-litert)",
                ) from None
            raise ModelError(
                f"model file {self.path} cannot be loaded ({text[:160]})", repair_hint(self.path)
            ) from None
        self.inputs = [self._info(d) for d in self.interpreter.get_input_details()]
        self.outputs = [self._info(d) for d in self.interpreter.get_output_details()]
        self._set = self.interpreter.set_tensor
        self._get = self.interpreter.get_tensor
        self._invoke = self.interpreter.invoke
        self._tensor = self.interpreter.tensor

    @staticmethod
    def _info(d: dict) -> TensorInfo:
        scale, zp = d.get("quantization", (0.0, 0))
        return TensorInfo(
            name=d["name"],
            index=int(d["index"]),
            shape=tuple(int(s) for s in d["shape"]),
            dtype=np.dtype(d["dtype"]),
            scale=float(scale),
            zero_point=int(zp),
        )

    def set_input(self, i: int, x: np.ndarray) -> None:
        t = self.inputs[i]
        if t.quantized and x.dtype != t.dtype:
            x = quantize(x, t.scale, t.zero_point, t.dtype)
        elif x.dtype != t.dtype:
            x = x.astype(t.dtype)
        self._set(t.index, x)

    def fill_input(self, i: int, fill: Callable[..., np.ndarray], *args: Any) -> None:
        """``fill(*args, out=buffer)`` writes input ``i`` straight into the interpreter's own
        buffer: no copy of the tensor (a 192x192x3 float input is 442 KB). Inputs that need
        quantizing or another dtype go through :meth:`set_input` instead."""
        t = self.inputs[i]
        if t.quantized or t.dtype != np.float32:
            self.set_input(i, fill(*args))
            return
        buf = self._tensor(t.index)()  # a view: it must be gone before invoke() runs
        try:
            fill(*args, out=buf)
        finally:
            del buf

    def invoke(self) -> None:
        self._invoke()

    def output(self, i: int = 0, raw: bool = False) -> np.ndarray:
        t = self.outputs[i]
        y = self._get(t.index)
        if t.quantized and not raw:
            return dequantize(y, t.scale, t.zero_point)
        return y

    def run(self, *inputs: np.ndarray) -> list[np.ndarray]:
        for i, x in enumerate(inputs):
            self.set_input(i, x)
        self._invoke()
        return [self.output(i) for i in range(len(self.outputs))]

    def __repr__(self) -> str:
        return f"TFLiteModel({self.name!r}, backend={self.backend!r})"
