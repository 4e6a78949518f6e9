"""CPU and wall time per 80 ms audio hop: the model floor, edgemm's audio path, pyopen-wakeword.

Rows (all on the same audio, in the same run, fed as 1280-sample hops):

* ``floor``: the raw model invokes per hop (mel + embedding + one wake-word head), inputs bound
  once, nothing else;
* ``edgemm``: :class:`SpeechEmbedder` + :class:`WakeWordDetector` (one head), the full path;
* ``pyopen-wakeword``: pyopen-wakeword 1.1.0's own streaming loop and bundled TFLite library
  (skipped when it is not installed: ``pip install pyopen-wakeword==1.1.0``);
* extra rows: microWakeWord and the VAD backends, for comparison.

Each row is timed hop by hop with ``time.process_time`` (CPU, all threads) and
``time.perf_counter`` (wall) over several repetitions; the table shows medians.

    python tools/bench_audio.py [--seconds 20] [--reps 5] [--model hey_jarvis] [--wav FILE]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edgemm.encoders.audio import (  # noqa: E402
    HOP_SAMPLES,
    MicroWakeWordDetector,
    SpeechEmbedder,
    VoiceActivityDetector,
    WakeWordDetector,
)

SR = 16000
Maker = Callable[[], Callable[[np.ndarray], object]]


def make_audio(seconds: float, wav: str | None) -> np.ndarray:
    """The WAV file given, else espeak-ng phrases over pink noise, else pink noise alone."""
    if wav:
        with wave.open(wav, "rb") as w:
            if w.getframerate() != SR or w.getsampwidth() != 2 or w.getnchannels() != 1:
                sys.exit(f"{wav}: need 16 kHz 16-bit mono")
            return np.frombuffer(w.readframes(w.getnframes()), np.int16).copy()
    n = int(seconds * SR)
    rng = np.random.default_rng(0)
    spec = np.fft.rfft(rng.standard_normal(n))
    spec /= np.sqrt(np.maximum(np.arange(spec.size), 1))
    x = np.fft.irfft(spec, n)
    x *= 200 / np.sqrt(np.mean(x * x))
    if shutil.which("espeak-ng") and shutil.which("sox"):
        phrases = ["hey jarvis", "turn on the lights", "hello there", "what time is it"]
        t = 1.0
        for i in range(int(seconds // 2.5)):
            tts = subprocess.run(
                ["espeak-ng", "-v", "en-us", "--stdout", phrases[i % len(phrases)]],
                capture_output=True,
                check=True,
            ).stdout
            pcm = subprocess.run(
                [
                    "sox",
                    "-D",
                    "-t",
                    "wav",
                    "-",
                    "-r",
                    str(SR),
                    "-c",
                    "1",
                    "-b",
                    "16",
                    "-e",
                    "signed",
                ]
                + ["-t", "raw", "-"],
                input=tts,
                capture_output=True,
                check=True,
            ).stdout
            sp = np.frombuffer(pcm, np.int16).astype(np.float64)
            i0 = int(t * SR)
            if i0 + sp.size > n:
                break
            x[i0 : i0 + sp.size] += sp
            t += 2.5
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)


def time_rows(
    plan: list[tuple[str, Maker]], audio: np.ndarray, reps: int
) -> list[tuple[str, float, float, int]]:
    """Median CPU and wall ms per hop for each row. Rows take turns within each repetition
    (so background load hits them alike); each repetition builds the row afresh and skips
    the first 2 s as warm-up."""
    hops = [audio[i : i + HOP_SAMPLES] for i in range(0, audio.size - HOP_SAMPLES + 1, HOP_SAMPLES)]
    warm = min(25, len(hops) // 4)
    cpu: dict[str, list[float]] = {name: [] for name, _ in plan}
    wall: dict[str, list[float]] = {name: [] for name, _ in plan}
    pt, pc = time.process_time, time.perf_counter
    for _ in range(reps):
        for name, make in plan:
            step = make()
            for h in hops[:warm]:
                step(h)
            c, w = cpu[name], wall[name]
            for h in hops[warm:]:
                c0, w0 = pt(), pc()
                step(h)
                c1, w1 = pt(), pc()
                c.append(c1 - c0)
                w.append(w1 - w0)
    return [
        (
            name,
            statistics.median(cpu[name]) * 1e3,
            statistics.median(wall[name]) * 1e3,
            len(cpu[name]),
        )
        for name, _ in plan
    ]


def record_inputs(audio: np.ndarray, model: str) -> list[tuple[np.ndarray, ...]]:
    """The exact mel, embedding and head inputs of every hop, recorded from a reference run."""
    emb = SpeechEmbedder()
    det = WakeWordDetector([model], prefill=emb.silence_embedding)
    mel_in, emb_in, head_in = [], [], []
    mel, embm, head = emb.mel, emb.embedding, det.heads[0]
    for i in range(0, audio.size - HOP_SAMPLES + 1, HOP_SAMPLES):
        for e in emb.feed(audio[i : i + HOP_SAMPLES]):
            mel_in.append(mel.interpreter.get_tensor(mel.inputs[0].index).copy())
            emb_in.append(embm.interpreter.get_tensor(embm.inputs[0].index).copy())
            det.push(e)
            head_in.append(head.interpreter.get_tensor(head.inputs[0].index).copy())
    return list(zip(mel_in, emb_in, head_in, strict=True))


def floor_step(model: str, inputs: list[tuple[np.ndarray, ...]]) -> Maker:
    """Set each model's recorded input and invoke: no framing, no buffers, no Python logic."""

    def make() -> Callable[[np.ndarray], object]:
        emb = SpeechEmbedder()  # only its loaded models are used
        head = WakeWordDetector([model]).heads[0]
        mel_m, emb_m = emb.mel, emb.embedding
        mel_set = mel_m.interpreter.set_tensor
        emb_set = emb_m.interpreter.set_tensor
        head_set = head.interpreter.set_tensor
        mi, ei, hi = mel_m.inputs[0].index, emb_m.inputs[0].index, head.inputs[0].index
        feed = iter(inputs * 2)

        def step(hop: np.ndarray) -> None:
            m, e, h = next(feed)
            mel_set(mi, m)
            mel_m.invoke()
            emb_set(ei, e)
            emb_m.invoke()
            head_set(hi, h)
            head.invoke()

        return step

    return make


def edgemm_step(model: str) -> Maker:
    def make() -> Callable[[np.ndarray], object]:
        emb = SpeechEmbedder()
        det = WakeWordDetector([model], prefill=emb.silence_embedding)

        def step(hop: np.ndarray) -> None:
            for e in emb.feed(hop):
                det.push(e)

        return step

    return make


def pyopen_step(model: str) -> Maker | None:
    try:
        from pyopen_wakeword import Model, OpenWakeWord, OpenWakeWordFeatures
    except ImportError:
        return None

    def make() -> Callable[[np.ndarray], object]:
        feats = OpenWakeWordFeatures.from_builtin()
        ww = OpenWakeWord.from_builtin(Model(model))

        def step(hop: np.ndarray) -> None:
            for f in feats.process_streaming(hop.tobytes()):
                for _ in ww.process_streaming(f):
                    pass

        return step

    return make


def stage_step(model: str) -> Maker:
    from edgemm.stages.audio import WakeWordStage
    from edgemm.stages.base import FeatureStore

    class Ctx:
        sample_rate = SR
        hop_samples = HOP_SAMPLES

        def __init__(self) -> None:
            self.features = FeatureStore()
            self.events: list[tuple] = []

        def emit(self, *args: object, **kw: object) -> None:
            self.events.append((args, kw))

    def make() -> Callable[[np.ndarray], object]:
        stage, ctx = WakeWordStage([model]), Ctx()
        pos = [0]

        def step(hop: np.ndarray) -> None:
            stage.process_audio(hop, pos[0], ctx)
            pos[0] += hop.shape[0]

        return step

    return make


def micro_step(model: str) -> Maker:
    def make() -> Callable[[np.ndarray], object]:
        return MicroWakeWordDetector([model]).feed

    return make


def vad_step(backend: str) -> Maker:
    def make() -> Callable[[np.ndarray], object]:
        return VoiceActivityDetector(backend).feed

    return make


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0, help="length of generated audio")
    ap.add_argument("--reps", type=int, default=5, help="repetitions per row")
    ap.add_argument("--model", default="hey_jarvis", help="wake-word head to run")
    ap.add_argument("--wav", help="16 kHz mono int16 WAV to use instead of generated audio")
    args = ap.parse_args(argv)

    audio = make_audio(args.seconds, args.wav)
    inputs = record_inputs(audio, args.model)
    candidates: list[tuple[str, Maker | None]] = [
        ("floor (mel+embedding+1 head invokes)", floor_step(args.model, inputs)),
        ("edgemm SpeechEmbedder+WakeWordDetector", edgemm_step(args.model)),
        ("pyopen-wakeword 1.1.0 streaming", pyopen_step(args.model)),
        ("edgemm WakeWordStage (+features)", stage_step(args.model)),
        ("edgemm MicroWakeWordDetector", micro_step(args.model)),
        ("edgemm VAD silero", vad_step("silero")),
        ("edgemm VAD micro", vad_step("micro")),
    ]
    plan: list[tuple[str, Maker]] = []
    for name, make in candidates:
        try:
            if make is None:
                raise ImportError("not installed")
            make()(audio[:HOP_SAMPLES])
        except Exception as exc:  # a missing optional package or model: report and go on
            print(f"skipped: {name} ({exc})")
            continue
        plan.append((name, make))
    rows = time_rows(plan, audio, args.reps)

    print(f"\naudio: {audio.size / SR:.1f} s, {args.reps} reps, median per 80 ms hop")
    print(f"{'path':42s} {'CPU ms':>8s} {'wall ms':>8s} {'hops':>6s}")
    for name, cpu, wall, n in rows:
        print(f"{name:42s} {cpu:8.3f} {wall:8.3f} {n:6d}")
    a = next((r for r in rows if r[0].startswith("floor")), None)
    b = next((r for r in rows if r[0].startswith("edgemm SpeechEmbedder")), None)
    c = next((r for r in rows if r[0].startswith("pyopen")), None)
    if a and b:
        print(f"\nb/a (edgemm / floor):  CPU {b[1] / a[1]:.3f}  wall {b[2] / a[2]:.3f}")
    if b and c:
        print(f"b/c (edgemm / pyopen): CPU {b[1] / c[1]:.3f}  wall {b[2] / c[2]:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
