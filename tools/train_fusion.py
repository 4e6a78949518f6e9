#!/usr/bin/env python3
"""Train the fusion head from a recipe of generated sessions; export float and full-int8 TFLite.

One command rebuilds the shipped head::

    python tools/train_fusion.py --recipe tools/fusion_sessions.py --out models/

Steps: render the recipe's training and held-out sessions (cached under ``--work``), replay
each through the real encoders (tools/extract_features.py), train a small MLP with
TensorFlow/Keras (split by session, class weights, fixed seed, early stopping on sessions held
back from training), export ``NAME_float.tflite`` and the full-int8 ``NAME.tflite`` (int8 input
and output, calibrated on a representative set of training windows), write the sidecar
``NAME.yaml`` (labels, feature layout, normalisation statistics, recipe, figures), and judge
both heads on the held-out sessions through edgemm's own runtime: ``NAME_report.json``
(per-class precision/recall/F1, macro-F1, int8-vs-float agreement) and
``NAME_confusion.png``.

TensorFlow runs in a separate process: this interpreter's when it can import tensorflow (the
``train`` extra), otherwise a side environment made on first use under
``~/.cache/edgemm/train-venv`` (``pip install tensorflow-cpu``), so edgemm's own environment
stays small.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT))

SEED = 1234
HIDDEN = (64, 32)
CLIP = 8.0
TRAIN_VENV = Path(os.environ.get("EDGEMM_TRAIN_VENV", Path.home() / ".cache/edgemm/train-venv"))
TRAIN_PACKAGES = ("tensorflow-cpu==2.21.0",)


# ------------------------------------------------------------------------------ TF side
# (runs in the training interpreter: numpy and tensorflow only)


def _fit(work: Path, epochs: int, seed: int) -> None:
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    d = np.load(work / "train.npz")
    x, y, amb, sess = d["x"], d["y"], d["ambiguous"], d["session"]
    n_classes = len(d["classes"])
    keep = ~amb
    rng = np.random.default_rng(seed)
    sessions = np.unique(sess)
    val_sessions = rng.choice(sessions, size=max(1, len(sessions) // 8), replace=False)
    is_val = np.isin(sess, val_sessions)
    tr, va = keep & ~is_val, keep & is_val
    mean = x[tr].mean(axis=0)
    std = x[tr].std(axis=0)
    std = np.where(std < 1e-3, 1.0, std)

    def norm(a: np.ndarray) -> np.ndarray:
        return np.clip((a - mean) / std, -CLIP, CLIP).astype(np.float32)

    counts = np.bincount(y[tr], minlength=n_classes).astype(np.float64)
    weights = {i: float(counts.sum() / (n_classes * max(c, 1.0))) for i, c in enumerate(counts)}
    inp = tf.keras.Input(shape=(x.shape[1],), name="features")
    h = tf.keras.layers.Dropout(0.1, seed=seed)(inp)
    for k, units in enumerate(HIDDEN):
        h = tf.keras.layers.Dense(
            units, activation="relu", kernel_regularizer=tf.keras.regularizers.l2(1e-4)
        )(h)
        h = tf.keras.layers.Dropout(0.2, seed=seed + k + 1)(h)
    out = tf.keras.layers.Dense(n_classes, activation="softmax", name="probs")(h)
    model = tf.keras.Model(inp, out)
    model.compile(
        optimizer=tf.keras.optimizers.Adam(2e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    stop = tf.keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=25, restore_best_weights=True
    )
    hist = model.fit(
        norm(x[tr]),
        y[tr],
        validation_data=(norm(x[va]), y[va]),
        epochs=epochs,
        batch_size=64,
        class_weight=weights,
        callbacks=[stop],
        verbose=2,
        shuffle=True,
    )
    # float export
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    (work / "float.tflite").write_bytes(conv.convert())
    # full-int8 export with a representative dataset of training windows
    rep = norm(x[tr])[rng.permutation(int(tr.sum()))[:1000]]

    def representative() -> Any:
        for row in rep:
            yield [row[None, :]]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    (work / "int8.tflite").write_bytes(conv.convert())
    info = {
        "mean": mean.astype(float).tolist(),
        "std": std.astype(float).tolist(),
        "clip": CLIP,
        "class_weights": weights,
        "epochs_run": len(hist.history["loss"]),
        "best_val_loss": float(min(hist.history["val_loss"])),
        "train_windows": int(tr.sum()),
        "val_windows": int(va.sum()),
        "val_sessions": sorted(int(s) for s in val_sessions),
        "hidden": list(HIDDEN),
        "seed": seed,
        "tensorflow": tf.__version__,
    }
    (work / "train_info.json").write_text(json.dumps(info))


# ------------------------------------------------------------------------------ edgemm side


def _load_recipe(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location("fusion_recipe", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load recipe {path}")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _trainer_python() -> str:
    if importlib.util.find_spec("tensorflow") is not None:
        return sys.executable
    py = TRAIN_VENV / "bin" / "python"
    if not py.is_file():
        print(f"making the training environment {TRAIN_VENV} (tensorflow-cpu)", flush=True)
        venv.create(TRAIN_VENV, with_pip=True)
    probe = subprocess.run([str(py), "-c", "import tensorflow"], capture_output=True)
    if probe.returncode != 0:
        subprocess.run(
            [str(py), "-m", "pip", "install", "-q", *TRAIN_PACKAGES, "numpy"], check=True
        )
    return str(py)


def _extract(recipe: Any, work: Path, split: str, force: bool) -> Path:
    from extract_features import extract

    dirs = recipe.make_all(work / "sessions", split)
    out = work / f"{split}.npz"
    stamp = hashlib.sha256(
        "\n".join((d / "labels.json").read_text() for d in dirs).encode()
    ).hexdigest()
    stamp_file = work / f"{split}.sha256"
    if force or not out.is_file() or not stamp_file.is_file() or stamp_file.read_text() != stamp:
        np.savez_compressed(out, **extract(dirs))
        stamp_file.write_text(stamp)
    return out


def _metrics(y: np.ndarray, p: np.ndarray, classes: list[str]) -> dict[str, Any]:
    n = len(classes)
    cm = np.zeros((n, n), dtype=np.int64)
    np.add.at(cm, (y, p), 1)
    per = {}
    f1s = []
    for i, c in enumerate(classes):
        tp = cm[i, i]
        prec = tp / cm[:, i].sum() if cm[:, i].sum() else 0.0
        rec = tp / cm[i].sum() if cm[i].sum() else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        per[c] = {
            "precision": round(float(prec), 4),
            "recall": round(float(rec), 4),
            "f1": round(float(f1), 4),
            "support": int(cm[i].sum()),
        }
        if cm[i].sum():
            f1s.append(f1)
    return {
        "macro_f1": round(float(np.mean(f1s)), 4),
        "accuracy": round(float((y == p).mean()), 4),
        "windows": int(len(y)),
        "per_class": per,
        "confusion": cm.tolist(),
    }


def confusion_png(cm: np.ndarray, classes: list[str], path: Path, title: str) -> None:
    """A row-normalised confusion matrix as a PNG (drawn with OpenCV)."""
    import cv2

    n = len(classes)
    cell, left, top = 70, 190, 80
    img = np.full((top + n * cell + 150, left + n * cell + 20, 3), 255, np.uint8)
    rows = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(img, title, (10, 30), font, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, "rows: true class, columns: predicted", (10, 55), font, 0.45, (60, 60, 60), 1)
    for i in range(n):
        for j in range(n):
            v = rows[i, j]
            shade = int(255 * (1 - v))
            x0, y0 = left + j * cell, top + i * cell
            cv2.rectangle(img, (x0, y0), (x0 + cell, y0 + cell), (255, shade, shade), -1)
            cv2.rectangle(img, (x0, y0), (x0 + cell, y0 + cell), (180, 180, 180), 1)
            color = (255, 255, 255) if v > 0.5 else (0, 0, 0)
            cv2.putText(img, str(cm[i, j]), (x0 + 8, y0 + 30), font, 0.5, color, 1, cv2.LINE_AA)
            cv2.putText(img, f"{v:.2f}", (x0 + 8, y0 + 55), font, 0.42, color, 1, cv2.LINE_AA)
        cv2.putText(
            img, classes[i], (5, top + i * cell + 40), font, 0.42, (0, 0, 0), 1, cv2.LINE_AA
        )
    for j, c in enumerate(classes):
        org = (left + j * cell + 30, top + n * cell + 8)
        for k, part in enumerate(c.split("_")):
            cv2.putText(
                img,
                part,
                (org[0] - 25, org[1] + 18 * (k + 1)),
                font,
                0.4,
                (0, 0, 0),
                1,
                cv2.LINE_AA,
            )
    cv2.imwrite(str(path), img)


def evaluate(
    head_path: Path, float_path: Path, data: dict[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities of the float and the int8 head on every window, both run through
    edgemm's runtime (the int8 one exactly as the fusion stage runs it)."""
    from edgemm.fusion import ConcatHead
    from edgemm.runtime import TFLiteModel

    head = ConcatHead(head_path)
    flt = TFLiteModel(float_path, name="fusion_float")
    x = data["x"]
    p_int8 = np.empty((len(x), len(head.classes)), np.float32)
    p_float = np.empty_like(p_int8)
    z = np.zeros((1, x.shape[1]), np.float32)
    for k in range(len(x)):
        p_int8[k] = head.probs(x[k])
        head.normalise(x[k], z[0])
        p_float[k] = flt.run(z)[0][0]
    return p_float, p_int8


def _report(
    data: dict[str, np.ndarray], p_float: np.ndarray, p_int8: np.ndarray, classes: list[str]
) -> dict[str, Any]:
    y, amb = data["y"], data["ambiguous"]
    a_f, a_q = p_float.argmax(1), p_int8.argmax(1)
    clear = ~amb
    return {
        "heldout_sessions": int(len(np.unique(data["session"]))),
        "float": _metrics(y[clear], a_f[clear], classes),
        "int8": _metrics(y[clear], a_q[clear], classes),
        "int8_all_windows": _metrics(y, a_q, classes),
        "int8_float_agreement": round(float((a_f == a_q).mean()), 4),
        "ambiguous_windows_excluded": int(amb.sum()),
    }


def bench(name: str = "fusion_default", windows: int = 2000) -> dict[str, float]:
    """Fusion cost per window (assembly + method + decision) on a realistic feature store:
    13 hops of embeddings, VAD and wake scores and 15 face frames per 1 s window."""
    import time

    from edgemm.fusion import DeciderSettings, FeatureLayout, RuleSet, WeightedSum
    from edgemm.stages.base import FeatureStore, Window
    from edgemm.stages.fusion import FusionStage

    class Ctx:
        features = FeatureStore()

        def emit(self, *a: Any, **k: Any) -> None:
            pass

    from edgemm.fusion import ConcatHead

    head = ConcatHead(name)
    lay = FeatureLayout(wake_models=("hey_jarvis",))
    rng = np.random.default_rng(0)
    out = {}
    for label, method, layout in (
        ("concat", head, head.layout),
        ("weighted_sum", WeightedSum(lay, {"audio": 0.5, "vision": 0.5}), lay),
        ("rules", RuleSet(lay), lay),
    ):
        ctx = Ctx()
        ctx.features = FeatureStore()
        st = FusionStage(method, layout, DeciderSettings())
        t = 0.0
        spent = 0.0
        for k in range(windows):
            while t < k * 0.5 + 1.0:
                t += 0.08
                ctx.features.put("embedding", t, rng.normal(size=96).astype(np.float32))
                ctx.features.put("vad", t, float(rng.random()))
                ctx.features.put("wakeword", t, {"hey_jarvis": float(rng.random() * 0.1)})
                if int(t / 0.08) % 6 != 0:
                    ctx.features.put(
                        "face",
                        t,
                        {"count": 1, "area": 0.1, "cx": 0.5, "cy": 0.5, "score": 0.9,
                         "frontalness": 0.9, "mouth_open": 0.1},
                    )  # fmt: skip
            w = Window(k, k * 0.5, k * 0.5 + 1.0)
            t0 = time.perf_counter()
            st.process_window(w, ctx)  # type: ignore[arg-type]
            spent += time.perf_counter() - t0
        out[label] = round(spent / windows * 1000, 4)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--recipe", type=Path, default=ROOT / "tools" / "fusion_sessions.py")
    ap.add_argument("--out", type=Path, default=ROOT / "models")
    ap.add_argument("--name", default="fusion_default")
    ap.add_argument("--work", type=Path, default=Path.home() / ".cache" / "edgemm" / "fusion-train")
    ap.add_argument("--epochs", type=int, default=300)
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--force", action="store_true", help="re-extract features")
    ap.add_argument("--fit-only", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--bench", action="store_true", help="measure fusion ms per window and exit")
    a = ap.parse_args()
    if a.bench:
        print(json.dumps({"ms_per_window": bench(a.name)}))
        return 0
    a.work.mkdir(parents=True, exist_ok=True)
    if a.fit_only:
        _fit(a.work, a.epochs, a.seed)
        return 0

    import yaml

    recipe = _load_recipe(a.recipe)
    train_npz = _extract(recipe, a.work, "train", a.force)
    held_npz = _extract(recipe, a.work, "heldout", a.force)
    py = _trainer_python()
    subprocess.run(
        [
            py,
            str(Path(__file__).resolve()),
            "--fit-only",
            "--work",
            str(a.work),
            "--epochs",
            str(a.epochs),
            "--seed",
            str(a.seed),
        ],
        check=True,
    )
    info = json.loads((a.work / "train_info.json").read_text())
    train = dict(np.load(train_npz))
    held = dict(np.load(held_npz))
    classes = [str(c) for c in train["classes"]]
    a.out.mkdir(parents=True, exist_ok=True)
    head = a.out / f"{a.name}.tflite"
    flt = a.out / f"{a.name}_float.tflite"
    shutil.copyfile(a.work / "int8.tflite", head)
    shutil.copyfile(a.work / "float.tflite", flt)
    meta: dict[str, Any] = {
        "name": a.name,
        "format": "full-int8 TFLite MLP; input int8 [1, N] (normalised features), output int8",
        "labels": classes,
        "layout": json.loads(str(train["layout"])),
        "normalisation": {
            "mean": [round(v, 6) for v in info["mean"]],
            "std": [round(v, 6) for v in info["std"]],
            "clip": info["clip"],
        },
        "recipe": {
            "command": "python tools/train_fusion.py --recipe tools/fusion_sessions.py --out models/",
            "sessions": str(a.recipe.name),
            "recipe_seed": int(getattr(recipe, "SEED", 0)),
            "train_sessions": int(len(np.unique(train["session"]))),
            "heldout_sessions": int(len(np.unique(held["session"]))),
            "train_windows": info["train_windows"],
            "val_windows": info["val_windows"],
            "hidden": info["hidden"],
            "epochs_run": info["epochs_run"],
            "seed": info["seed"],
            "tensorflow": info["tensorflow"],
        },
    }
    head.with_suffix(".yaml").write_text(yaml.safe_dump(meta, sort_keys=False, width=100))
    p_float, p_int8 = evaluate(head, flt, held)
    report = _report(held, p_float, p_int8, classes)
    meta["heldout"] = {
        "macro_f1_int8": report["int8"]["macro_f1"],
        "macro_f1_float": report["float"]["macro_f1"],
        "int8_float_agreement": report["int8_float_agreement"],
    }
    head.with_suffix(".yaml").write_text(yaml.safe_dump(meta, sort_keys=False, width=100))
    (a.out / f"{a.name}_report.json").write_text(json.dumps(report, indent=1))
    confusion_png(
        np.array(report["int8"]["confusion"]),
        classes,
        a.out / f"{a.name}_confusion.png",
        f"{a.name} (int8), held-out sessions: macro-F1 {report['int8']['macro_f1']:.3f}",
    )
    if a.out.resolve() == (ROOT / "models").resolve():  # the package carries a copy
        pkg = ROOT / "edgemm" / "data" / "models"
        pkg.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(head, pkg / head.name)
        shutil.copyfile(head.with_suffix(".yaml"), pkg / f"{a.name}.yaml")
    print(
        json.dumps(
            {k: report[k] for k in ("int8_float_agreement", "ambiguous_windows_excluded")}
            | {
                "macro_f1_int8": report["int8"]["macro_f1"],
                "macro_f1_float": report["float"]["macro_f1"],
                "macro_f1_int8_all_windows": report["int8_all_windows"]["macro_f1"],
            },
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
