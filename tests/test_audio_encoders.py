"""Audio encoders and stages on real models and real (espeak-ng) speech."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from audio_helpers import SAMPLE_RATE, chunks, noise, require_espeak, scene, speak

from edgemm.encoders.audio import (
    HOP_SAMPLES,
    MicroWakeWordDetector,
    SpeechEmbedder,
    SpeechSegmenter,
    VoiceActivityDetector,
    WakeWordDetector,
)
from edgemm.errors import ConfigError, ModelError
from edgemm.models import install
from edgemm.stages.audio import VadStage, WakeWordStage
from edgemm.stages.base import AudioStage, CollectingContext, FeatureStore

OWW_MODELS = ["melspectrogram", "embedding_model", "hey_jarvis", "alexa", "hey_mycroft"]
MICRO_MODELS = ["micro_hey_jarvis", "micro_alexa"]
HEADS = ["hey_jarvis", "alexa", "hey_mycroft"]
JARVIS_VOICES = ["en-us", "en", "en+f3", "en+m3", "en-gb-scotland", "en+m1", "en+f2"]
NEGATIVE_PHRASES = ["hello there", "turn on the lights", "what time is it"]


@pytest.fixture(scope="session", autouse=True)
def _models() -> None:
    """Install the models these tests use (a no-op when they are cached and intact)."""
    install(OWW_MODELS + MICRO_MODELS, progress=lambda _msg: None)


@pytest.fixture(scope="session")
def embedder() -> SpeechEmbedder:
    return SpeechEmbedder()


def run_stages(stages: list[Any], x: np.ndarray, start: int = 0) -> CollectingContext:
    """Drive stages as the scheduler does: whole 1280-sample hops, absolute sample indices."""
    ctx = CollectingContext(SAMPLE_RATE, HOP_SAMPLES, FeatureStore(horizon_s=1e6))
    for i in range(0, x.size - HOP_SAMPLES + 1, HOP_SAMPLES):
        ctx.now = (start + i + HOP_SAMPLES) / SAMPLE_RATE
        for s in stages:
            s.process_audio(x[i : i + HOP_SAMPLES], start + i, ctx)
    return ctx


def feed_all(emb: SpeechEmbedder, x: np.ndarray, sizes: list[int] | int) -> np.ndarray:
    emb.reset()
    out = [emb.feed(c).copy() for c in chunks(x, sizes)]
    return np.concatenate(out)


@pytest.fixture(scope="session")
def jarvis_scene() -> tuple[np.ndarray, float, float]:
    require_espeak()
    sp = speak("hey jarvis", "en-us")
    return scene([(1.37, sp)], 4.5, noise_rms=200, seed=3), 1.37, 1.37 + sp.size / SAMPLE_RATE


# ---------------------------------------------------------------------------------------------
# SpeechEmbedder


def test_embeddings_equal_pyopen_wakeword(embedder, jarvis_scene):
    """Same embeddings and head scores as pyopen-wakeword's own streaming implementation."""
    pyopen = pytest.importorskip("pyopen_wakeword")
    x = jarvis_scene[0]
    ref_features = pyopen.OpenWakeWordFeatures.from_builtin()
    ref_head = pyopen.OpenWakeWord.from_builtin(pyopen.Model.HEY_JARVIS)
    ref_emb, ref_scores = [], []
    for c in chunks(x, HOP_SAMPLES):
        for f in ref_features.process_streaming(c.tobytes()):
            ref_emb.append(f.reshape(96).copy())
            ref_scores.extend(ref_head.process_streaming(f))
    ref = np.array(ref_emb)

    detector = WakeWordDetector(["hey_jarvis"], prefill=embedder.silence_embedding)
    embedder.reset()
    mine, scores = [], []
    for c in chunks(x, HOP_SAMPLES):
        for e in embedder.feed(c):
            mine.append(e.copy())
            detector.push(e)
            scores.append(float(detector.scores[0]))
    mine_a = np.array(mine)

    # The reference's first call embeds its 8 s of silent pre-roll: 90 embeddings before ours
    # start, and 15 of them before its head scores start. It emits each one a hop later.
    n = ref.shape[0] - 90
    assert n > 40 and mine_a.shape[0] >= n
    assert np.abs(mine_a[:n] - ref[90:]).max() < 1e-3
    assert np.abs(np.array(scores[:n]) - np.array(ref_scores[75:])).max() < 1e-3
    assert max(scores) > 0.9  # the comparison covers a real detection, not just silence
    assert np.abs(ref[0] - embedder.silence_embedding).max() < 1e-3


@pytest.mark.parametrize(
    "sizes", [HOP_SAMPLES, 160, 4000, 1, [1, 7, 333, 2000, 5, 1279, 1281, 96000]]
)
def test_embeddings_do_not_depend_on_chunk_size(embedder, jarvis_scene, sizes):
    x = jarvis_scene[0][: 2 * SAMPLE_RATE] if sizes == 1 else jarvis_scene[0]
    ref = feed_all(embedder, x, HOP_SAMPLES)
    got = feed_all(embedder, x, sizes)
    assert ref.shape == (x.size // HOP_SAMPLES, 96)
    np.testing.assert_array_equal(got, ref)


def test_random_chunk_sizes(embedder, jarvis_scene):
    rng = np.random.default_rng(7)
    x = jarvis_scene[0]
    sizes = [int(s) for s in rng.integers(1, 5000, 200)]
    np.testing.assert_array_equal(feed_all(embedder, x, sizes), feed_all(embedder, x, 1280))


def test_embedding_is_emitted_when_its_window_is_complete(embedder):
    """Embedding k appears as soon as sample 1280k + 480 arrives, not before."""
    embedder.reset()
    x = noise(6000, 500, seed=1)
    assert embedder.feed(x[:479]).shape == (0, 96)
    assert embedder.feed(x[479:480]).shape == (1, 96)  # k = 0
    assert embedder.feed(x[480:1759]).shape == (0, 96)
    assert embedder.feed(x[1759:1760]).shape == (1, 96)  # k = 1
    assert embedder.hops == 2
    start, end = SpeechEmbedder.span(1)
    assert (start, end) == (1280 - 12800, 1280 - 288)


def test_embedder_rejects_float_audio(embedder):
    with pytest.raises(TypeError, match="int16"):
        embedder.feed(np.zeros(1280, np.float32))


def test_unknown_model_name_names_the_fix():
    with pytest.raises(ModelError, match="unknown model 'hey_nobody'"):
        WakeWordDetector(["hey_nobody"])


# ---------------------------------------------------------------------------------------------
# wake words (openWakeWord heads)


@pytest.fixture(scope="session")
def wake_stage_factory():
    def make(**kw: Any) -> WakeWordStage:
        return WakeWordStage(kw.pop("models", HEADS), **kw)

    return make


@pytest.mark.slow
@pytest.mark.parametrize("voice", JARVIS_VOICES)
def test_hey_jarvis_fires_after_the_utterance(wake_stage_factory, voice):
    require_espeak()
    sp = speak("hey jarvis", voice)
    for t0, noise_rms, seed in [(1.0, 100, 1), (1.37, 300, 2)]:
        t1 = t0 + sp.size / SAMPLE_RATE
        x = scene([(t0, sp)], 4.5, noise_rms=noise_rms, seed=seed)
        stage = wake_stage_factory()
        ctx = run_stages([stage], x)
        assert [e.label for e in ctx.events] == ["hey_jarvis"], (voice, t0, ctx.events)
        ev = ctx.events[0]
        assert ev.type == "wake_word" and ev.source == "audio.wakeword"
        assert ev.score >= 0.5 and ev.data == {"threshold": 0.5}
        assert t0 < ev.t_emit <= t1 + 1.0
        assert ev.t_end <= ev.t_emit and ev.t_end > t0
        assert ev.t_end - ev.t_start == pytest.approx(16 * HOP_SAMPLES / SAMPLE_RATE)


@pytest.mark.slow
def test_other_speech_noise_and_silence_never_fire(wake_stage_factory):
    require_espeak()
    parts = []
    t = 0.5
    for i, phrase in enumerate(NEGATIVE_PHRASES * 2):
        voice = ["en-us", "en+f3", "en+m3", "en"][i % 4]
        sp = speak(phrase, voice)
        parts.append((t, sp))
        t += sp.size / SAMPLE_RATE + 0.6
    talk = scene(parts, t + 0.5, noise_rms=150, seed=9)
    x = np.concatenate(
        [talk, noise(8 * SAMPLE_RATE, 300, seed=4), np.zeros(3 * SAMPLE_RATE, np.int16)]
    )
    stage = wake_stage_factory()
    ctx = run_stages([stage], x)
    assert ctx.events == []
    scores = [v for _, v in ctx.features.between("wakeword", -1.0, 1e9)]
    assert len(scores) == x.size // HOP_SAMPLES  # scored every hop
    assert max(max(s.values()) for s in scores) < 0.5


def test_stage_features_per_hop(wake_stage_factory, jarvis_scene):
    x = jarvis_scene[0]
    stage = wake_stage_factory(models=["hey_jarvis"])
    assert isinstance(stage, AudioStage)
    ctx = run_stages([stage], x)
    emb = ctx.features.between("embedding", -1.0, 1e9)
    ww = ctx.features.between("wakeword", -1.0, 1e9)
    hops = x.size // HOP_SAMPLES
    assert len(emb) == len(ww) == hops
    assert all(v.shape == (96,) and v.dtype == np.float32 for _, v in emb)
    assert len({float(v[0]) for _, v in emb}) > hops // 2  # real, changing embeddings
    assert all(set(v) == {"hey_jarvis"} for _, v in ww)
    times = [t for t, _ in emb]
    assert np.allclose(np.diff(times), HOP_SAMPLES / SAMPLE_RATE)
    assert times[0] == pytest.approx((HOP_SAMPLES - 288) / SAMPLE_RATE - HOP_SAMPLES / SAMPLE_RATE)
    peak_t = max(ww, key=lambda tv: tv[1]["hey_jarvis"])[0]
    assert jarvis_scene[1] < peak_t < jarvis_scene[2] + 0.8


def test_per_model_threshold_and_refractory(wake_stage_factory):
    require_espeak()
    sp = speak("hey jarvis", "en-us")
    gap = sp.size / SAMPLE_RATE + 0.4
    x = scene([(1.0, sp), (1.0 + gap, sp)], 1.0 + 2 * gap + 1.5, noise_rms=100, seed=5)
    long = run_stages([wake_stage_factory(models=["hey_jarvis"], refractory_s=5.0)], x).events
    short = run_stages([wake_stage_factory(models=["hey_jarvis"], refractory_s=0.8)], x).events
    assert len(long) == 1
    assert len(short) == 2 and short[1].t_emit - short[0].t_emit >= 0.8
    strict = wake_stage_factory(models=["hey_jarvis", "alexa"], threshold={"hey_jarvis": 0.99999})
    assert strict.thresholds == [0.99999, 0.5]
    assert run_stages([strict], x).events == []
    with pytest.raises(ConfigError, match="unknown model"):
        WakeWordDetector(["hey_jarvis"], threshold={"hey_travis": 0.5})
    with pytest.raises(ConfigError, match="outside"):
        WakeWordDetector(["hey_jarvis"], threshold=1.5)


def test_stage_resets_on_a_gap(wake_stage_factory, jarvis_scene):
    """A hop that does not follow the previous one restarts the stream cleanly."""
    x, t0, _ = jarvis_scene
    noise_only = noise(3 * SAMPLE_RATE, 200, seed=8)
    stage = wake_stage_factory(models=["hey_jarvis"])
    run_stages([stage], noise_only)
    later = run_stages([stage], x, start=10 * SAMPLE_RATE).events
    fresh = run_stages([wake_stage_factory(models=["hey_jarvis"])], x).events
    assert len(later) == len(fresh) == 1
    assert later[0].t_end == pytest.approx(fresh[0].t_end + 10.0)
    assert later[0].score == pytest.approx(fresh[0].score, abs=1e-6)


# ---------------------------------------------------------------------------------------------
# microWakeWord


@pytest.mark.slow
def test_micro_wake_words_fire_and_stay_quiet():
    require_espeak()
    stage = WakeWordStage(["alexa", "hey_jarvis"], engine="micro")
    assert stage.thresholds == [0.9, 0.97]  # the models' own cutoffs
    for voice in ["en-us", "en", "en+m3", "en+f3"]:
        sp = speak("alexa", voice)
        x = scene([(1.0, sp)], 3.5, noise_rms=150, seed=1)
        events = run_stages([stage], x).events
        assert [e.label for e in events] == ["alexa"], voice
        assert 1.0 < events[0].t_emit <= 1.0 + sp.size / SAMPLE_RATE + 1.0
        stage.micro.reset()
    sp = speak("hey jarvis", "en+f3")
    events = run_stages([stage], scene([(1.0, sp)], 3.5, noise_rms=150, seed=1)).events
    assert [e.label for e in events] == ["hey_jarvis"]
    stage.micro.reset()
    parts = [(0.5 + 1.6 * i, speak(p, "en-us")) for i, p in enumerate(NEGATIVE_PHRASES)]
    quiet = np.concatenate([scene(parts, 5.5, noise_rms=150, seed=2), noise(48000, 300, seed=3)])
    assert run_stages([stage], quiet).events == []


def test_micro_does_not_depend_on_chunk_size():
    require_espeak()
    x = scene([(1.0, speak("hey jarvis", "en+f3"))], 3.5, noise_rms=150, seed=1)
    det = MicroWakeWordDetector(["hey_jarvis", "alexa"])

    def run(sizes: list[int] | int) -> tuple[list, list[float], int]:
        det.reset()
        found = [d for c in chunks(x, sizes) for d in det.feed(c)]
        return found, det.scores.tolist(), det.invokes

    ref = run(480)
    assert [d.name for d in ref[0]] == ["hey_jarvis"]
    assert ref[2] == (x.size // 160 - 2) // 3  # 3 features per invoke; the first needs 480
    assert run(HOP_SAMPLES) == ref
    assert run([1, 159, 161, 2000, 7]) == ref


def test_micro_scores_match_pymicro_wakeword():
    """Same features, same quantized inputs and (up to runtime kernels) the same scores as
    pymicro-wakeword's own implementation, which bundles another TFLite build."""
    ref_mod = pytest.importorskip("pymicro_wakeword")
    require_espeak()
    x = scene([(1.0, speak("hey jarvis", "en+f3"))], 3.5, noise_rms=150, seed=1)
    ref = ref_mod.MicroWakeWord.from_builtin(ref_mod.Model.HEY_JARVIS)
    ref_features = ref_mod.MicroWakeWordFeatures()
    ref_scores = []
    for c in chunks(x, HOP_SAMPLES):
        for f in ref_features.process_streaming(c.tobytes()):
            p = ref.process_streaming_prob(f)
            if not ref._features:  # an invoke happened (every 3rd feature frame)
                ref_scores.append(p)
    det = MicroWakeWordDetector(["hey_jarvis"])
    scores = []
    for c in chunks(x, 480):  # 480 samples = one invoke once the frontend has warmed up
        det.feed(c)
        if det.invokes > len(scores):
            scores.append(float(det.scores[0]))
    n = min(len(scores), len(ref_scores))
    assert n == (x.size // 160 - 2) // 3
    diff = np.abs(np.array(scores[:n]) - np.array(ref_scores[:n]))
    # LiteRT's int8 kernels differ from the bundled library's by a few output steps (1/256)
    assert diff.max() < 0.05 and np.median(diff) == 0.0
    cutoff = det.thresholds[0]
    assert (np.array(scores[:n]) > cutoff).any()
    assert ((np.array(scores[:n]) > cutoff) == (np.array(ref_scores[:n]) > cutoff)).mean() > 0.95


# ---------------------------------------------------------------------------------------------
# voice activity


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["silero", "micro"])
def test_vad_marks_speech_onset_and_end(backend):
    require_espeak()
    # micro VAD reacts later (its frames lag by ~0.3 s), so it gets a wider end tolerance
    end_tol = 0.3 if backend == "silero" else 0.9
    for phrase, voice, t0 in [
        ("turn on the lights in the kitchen", "en-us", 1.13),
        ("hello there", "en+f3", 2.0),
        ("what time is it", "en+m3", 0.7),
    ]:
        sp = speak(phrase, voice)
        t1 = t0 + sp.size / SAMPLE_RATE
        x = scene([(t0, sp)], t1 + 2.0, noise_rms=100, seed=3)
        events = run_stages([VadStage(backend=backend)], x).events
        assert [e.label for e in events] == ["speech_start", "speech_end"], (phrase, events)
        start, end = events
        assert start.source == "audio.vad" and start.type == "vad"
        assert abs(start.t_start - t0) <= 0.3 + (0.1 if backend == "micro" else 0.0)
        assert start.t_emit >= start.t_start
        assert end.t_start == start.t_start
        assert t1 - 0.3 <= end.t_end <= t1 + end_tol
        assert end.t_emit > end.t_end


@pytest.mark.parametrize("backend", ["silero", "micro"])
def test_vad_quiet_on_silence_and_noise(backend):
    x = np.concatenate(
        [
            np.zeros(2 * SAMPLE_RATE, np.int16),
            noise(4 * SAMPLE_RATE, 60, seed=1),
            noise(4 * SAMPLE_RATE, 300, seed=2, color="white"),
        ]  # fmt: skip
    )
    ctx = run_stages([VadStage(backend=backend)], x)
    assert ctx.events == []
    probs = [p for _, p in ctx.features.between("vad", 0.0, 1e9)]
    assert len(probs) == x.size // HOP_SAMPLES and max(probs) < 0.5


@pytest.mark.slow
def test_vad_hangover_joins_short_pauses():
    require_espeak()
    a, b = speak("turn on the lights", "en-us"), speak("in the kitchen", "en-us")
    ta = a.size / SAMPLE_RATE
    joined = scene([(1.0, a), (1.0 + ta + 0.25, b)], 6.0, noise_rms=100, seed=1)
    split = scene([(1.0, a), (1.0 + ta + 1.5, b)], 7.0, noise_rms=100, seed=1)
    labels = lambda x: [e.label for e in run_stages([VadStage(min_silence_s=0.5)], x).events]  # noqa: E731
    assert labels(joined) == ["speech_start", "speech_end"]
    assert labels(split) == ["speech_start", "speech_end"] * 2


@pytest.mark.parametrize("backend", ["silero", "micro"])
def test_vad_does_not_depend_on_chunk_size(backend, jarvis_scene):
    x = jarvis_scene[0]
    vad = VoiceActivityDetector(backend)

    def probs(sizes: list[int] | int) -> np.ndarray:
        vad.reset()
        return np.concatenate([vad.feed(c).copy() for c in chunks(x, sizes)])

    ref = probs(HOP_SAMPLES)
    assert ref.shape == (x.size // HOP_SAMPLES,) and ref.max() > 0.5
    np.testing.assert_array_equal(probs([100, 2000, 513, 7]), ref)


def test_segmenter_min_durations():
    seg = SpeechSegmenter(threshold=0.5, min_speech_s=0.24, min_silence_s=0.4)
    hop = HOP_SAMPLES / SAMPLE_RATE
    probs = [0.1, 0.9, 0.9, 0.1, 0.9, 0.9, 0.9, 0.9, 0.2, 0.2, 0.9, 0.1, 0.1, 0.1, 0.1, 0.1]
    out = [(i, seg.push(p, i * hop, (i + 1) * hop)) for i, p in enumerate(probs)]
    changes = [(i, c) for i, c in out if c is not None]
    # a 2-hop blip is too short; speech starts on the 3rd hop of the run that began at hop 4
    assert [(i, c.label) for i, c in changes] == [(6, "speech_start"), (15, "speech_end")]
    assert changes[0][1].t_start == pytest.approx(4 * hop)
    assert changes[1][1].t_start == pytest.approx(4 * hop)
    assert changes[1][1].t_end == pytest.approx(11 * hop)  # the 2-hop dip was bridged


def test_vad_config_errors():
    with pytest.raises(ConfigError, match="unknown VAD backend"):
        VoiceActivityDetector("webrtc")
    with pytest.raises(ConfigError, match="outside"):
        SpeechSegmenter(threshold=0.0)
    with pytest.raises(ConfigError, match="unknown wake-word engine"):
        WakeWordStage(["hey_jarvis"], engine="porcupine")


_VAD_THREADS = """
import os, numpy as np
from edgemm.encoders.audio import VoiceActivityDetector
vad = VoiceActivityDetector("silero")
before = len(os.listdir("/proc/self/task"))
x = (np.random.default_rng(0).normal(0, 0.1, 16000) * 32767).astype(np.int16)
probs = vad.feed(x)
print(os.environ.get("OMP_THREAD_LIMIT"), len(os.listdir("/proc/self/task")) - before,
      round(float(probs.sum()), 6))
"""


def test_silero_runs_on_the_calling_thread_unless_the_user_says_otherwise():
    """ggml fans each 512-sample frame out to an OpenMP pool; edgemm caps it at one thread
    (same probabilities, a fraction of the CPU) unless OMP_THREAD_LIMIT is already set."""
    import os
    import subprocess
    import sys

    def run(extra: dict[str, str]) -> list[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OMP_")} | extra
        out = subprocess.run(
            [sys.executable, "-c", _VAD_THREADS], env=env, capture_output=True, text=True,
            check=True,
        )  # fmt: skip
        return out.stdout.split()

    limit, new_threads, total = run({})
    assert limit == "1" and new_threads == "0"
    user_limit, user_threads, user_total = run({"OMP_THREAD_LIMIT": "2"})
    assert user_limit == "2" and int(user_threads) >= 1  # the user's setting wins
    assert total == user_total  # the thread count does not change the result
