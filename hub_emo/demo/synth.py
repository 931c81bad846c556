"""A generated speech + music emotion corpus in the RAVDESS layout.

The demo needs a corpus with the same emotions in speech and in music, several
performers (so folds can be performer-independent) and no download. Speech comes from
espeak-ng with the prosody that carries emotion in speech varied (pitch level and
range, rate, loudness, voice quality: tremolo, jitter, breathiness, spectral tilt,
harshness). Song is a melody on the statement's syllable rhythm, "sung" by a General MIDI
instrument rendered with FluidSynth, with the cues that carry emotion in music varied
(mode, tempo, register, loudness, articulation, vibrato, timing regularity).

Files are written as RAVDESS names them, ``Actor_XX/03-VV-EE-II-SS-RR-AA.wav`` (VV 01
speech / 02 song; EE emotion; II intensity 01 normal / 02 strong; SS statement; RR
repetition; AA actor), so the loaders that read the real corpus read this one unchanged.
Odd actors are male-ish voices and lower instruments, even ones female-ish and higher.
Every clip is 16-bit mono WAV at ``sample_rate`` (16 kHz by default). The output is
byte-identical for a seed.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from dataset_scripts import _ravdess
from hub_emo.progress import bar

#: RAVDESS's statements, by statement code.
STATEMENTS: dict[int, str] = {
    1: "Kids are talking by the door",
    2: "Dogs are sitting by the door",
}
SPEECH_CHANNEL, SONG_CHANNEL = 1, 2
#: RAVDESS's emotions, in code order 01..08 (they are canonical emotions' names).
SPEECH_EMOTIONS: tuple[str, ...] = tuple(_ravdess.EMOTION_CODES.values())
#: RAVDESS song has no disgust or surprised.
SONG_EMOTIONS: tuple[str, ...] = SPEECH_EMOTIONS[:6]
DEFAULT_EMOTIONS: tuple[str, ...] = SONG_EMOTIONS
#: Actors taken one per fold in turn (RAVDESS's four actor folds, the protocol's performer-
#: independent split), so the first N actors always span min(N, 4) folds.
ACTOR_ORDER: tuple[int, ...] = tuple(a for group in zip(*_ravdess.FOLDS) for a in group)

METADATA_FILE = "synth_metadata.json"
LICENSE_FILE = "README.md"
GENERATOR_VERSION = 1
SOUNDFONTS = ("/usr/share/sounds/sf2/TimGM6mb.sf2",)

#: Corpus sizes: the default for `make demo`, and --quick.
PRESETS: dict[str, dict] = {
    "default": dict(actors=8, repetitions=2),
    "quick": dict(actors=4, repetitions=1),
}


# ----------------------------------------------------------------------------- styles


@dataclass(frozen=True)
class SpeechStyle:
    """Prosody and voice quality of one emotion, as deviations from a neutral voice."""

    pitch: float = 0.0  # percent change of the base pitch (SSML prosody pitch)
    range: float = 100.0  # pitch range, percent of the voice's own (SSML prosody range)
    rate: float = 100.0  # speaking rate, percent (SSML prosody rate)
    loudness: float = 0.0  # dB against the reference level
    tremolo: float = 0.0  # depth of a 6-8 Hz amplitude modulation (trembling voice)
    jitter: float = 0.0  # relative size of random pitch wobble (unsteady voice)
    breath: float = 0.0  # level of envelope-shaped noise (breathy voice)
    tilt: float = 0.0  # > 0 brighter (pre-emphasis), < 0 darker (low-pass)
    drive: float = 0.0  # soft-clipping drive (harsh, pressed voice)


MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10)
PHRYGIAN = (0, 1, 3, 5, 7, 8, 10)
DIMINISHED = (0, 2, 3, 5, 6, 8, 9)
LYDIAN = (0, 2, 4, 6, 7, 9, 11)
LOCRIAN = (0, 1, 3, 5, 6, 8, 10)


@dataclass(frozen=True)
class MusicStyle:
    """Musical cues of one emotion (Juslin & Laukka's cue table, simplified)."""

    scale: tuple[int, ...] = MAJOR
    tempo: float = 100.0  # beats per minute
    register: float = 0.0  # semitones from the performer's tonic
    velocity: float = 70.0  # MIDI velocity (loudness)
    velocity_spread: float = 4.0  # random velocity variation between notes
    articulation: float = 0.85  # sounding fraction of each note (1 legato, < 0.5 staccato)
    leap: float = 1.0  # melodic range multiplier
    vibrato: float = 0.0  # pitch vibrato depth in semitones
    vibrato_rate: float = 5.0  # Hz
    timing_jitter: float = 0.0  # random onset shift, fraction of a beat


SPEECH_STYLES: dict[str, SpeechStyle] = {
    "neutral": SpeechStyle(),
    "calm": SpeechStyle(pitch=-8, range=70, rate=86, loudness=-5, breath=0.015, tilt=-0.4),
    "happy": SpeechStyle(pitch=22, range=170, rate=112, loudness=3, tilt=0.3),
    "sad": SpeechStyle(pitch=-15, range=45, rate=74, loudness=-8, jitter=0.01, breath=0.04, tilt=-0.6),
    "angry": SpeechStyle(pitch=8, range=140, rate=118, loudness=7, drive=2.5, tilt=0.7),
    "fearful": SpeechStyle(pitch=32, range=115, rate=124, loudness=-2, tremolo=0.35, jitter=0.025, breath=0.02),
    "disgust": SpeechStyle(pitch=-12, range=90, rate=80, jitter=0.03, tilt=-0.2, drive=1.0),
    "surprised": SpeechStyle(pitch=38, range=210, rate=100, loudness=4, tilt=0.2),
}

MUSIC_STYLES: dict[str, MusicStyle] = {
    "neutral": MusicStyle(),
    "calm": MusicStyle(tempo=80, register=-2, velocity=50, velocity_spread=3, articulation=1.05, leap=0.8),
    "happy": MusicStyle(tempo=138, register=5, velocity=92, velocity_spread=10, articulation=0.5, leap=1.5, vibrato=0.1, vibrato_rate=5.5),
    "sad": MusicStyle(scale=MINOR, tempo=70, register=-5, velocity=45, articulation=1.05, leap=0.6, vibrato=0.15, vibrato_rate=4.5),
    "angry": MusicStyle(scale=PHRYGIAN, tempo=150, register=-3, velocity=118, velocity_spread=8, articulation=0.35, leap=1.3),
    "fearful": MusicStyle(scale=DIMINISHED, tempo=128, register=7, velocity=58, velocity_spread=22, articulation=0.45, vibrato=0.35, vibrato_rate=8.0, timing_jitter=0.08),
    "disgust": MusicStyle(scale=LOCRIAN, tempo=84, register=-7, velocity=78, articulation=0.6, leap=0.9),
    "surprised": MusicStyle(scale=LYDIAN, tempo=120, register=9, velocity=95, articulation=0.55, leap=2.0),
}

#: How much further a strong intensity pushes every cue away from neutral.
STRONG = 1.6


def _intensify(style, neutral, factor: float):
    """A style whose numeric cues lie ``factor`` times as far from neutral's."""
    changes = {}
    for name, value in asdict(style).items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            base = getattr(neutral, name)
            changes[name] = base + factor * (value - base)
    return replace(style, **changes)


def _performed(styles: dict, clip):
    """The style of the clip's emotion at its intensity (RAVDESS's 2, strong, pushed further from neutral)."""
    style = styles[clip.emotion]
    return _intensify(style, styles["neutral"], STRONG) if clip.intensity == 2 else style


# -------------------------------------------------------------------------- performers


@dataclass(frozen=True)
class Voice:
    """An espeak-ng 'speaker': language, voice variant, base pitch (0-99) and rate (wpm)."""

    language: str
    variant: str
    pitch: int
    speed: int


@dataclass(frozen=True)
class Instrument:
    """A 'singer': a General MIDI program and its tonic (MIDI note)."""

    name: str
    program: int
    tonic: int


#: Male-ish (odd actors) and female-ish (even actors) performers, cycled beyond four each.
MALE_VOICES = (
    Voice("en-us", "m3", 38, 170), Voice("en", "m1", 32, 160),
    Voice("en-us", "m7", 44, 180), Voice("en", "m5", 28, 165),
)
FEMALE_VOICES = (
    Voice("en-us", "f2", 64, 175), Voice("en", "f3", 70, 165),
    Voice("en-us", "f4", 58, 185), Voice("en", "f1", 74, 170),
)
LOW_INSTRUMENTS = (
    Instrument("choir aahs", 52, 48), Instrument("cello", 42, 45),
    Instrument("trombone", 57, 46), Instrument("clarinet", 71, 52),
)
HIGH_INSTRUMENTS = (
    Instrument("voice oohs", 53, 64), Instrument("violin", 40, 67),
    Instrument("flute", 73, 72), Instrument("oboe", 68, 65),
)


def actor_voice(actor: int) -> Voice:
    table = MALE_VOICES if actor % 2 else FEMALE_VOICES
    i = (actor - 1) // 2
    voice = table[i % len(table)]
    shift = 3 * (i // len(table))  # actors beyond the table: same timbre, other pitch
    return replace(voice, pitch=min(99, voice.pitch + shift), speed=voice.speed + shift)


def actor_instrument(actor: int) -> Instrument:
    table = LOW_INSTRUMENTS if actor % 2 else HIGH_INSTRUMENTS
    i = (actor - 1) // 2
    inst = table[i % len(table)]
    return replace(inst, tonic=inst.tonic + (i // len(table)) % 3 - 1)


def resolve_actors(actors: int | Iterable[int]) -> tuple[int, ...]:
    """Actor ids: a count N takes the first N of `ACTOR_ORDER` (spanning the folds)."""
    if isinstance(actors, int):
        if not 1 <= actors <= 24:
            raise ValueError(f"actors must be between 1 and 24, got {actors}")
        return tuple(sorted(ACTOR_ORDER[:actors]))
    ids = tuple(sorted({int(a) for a in actors}))
    if not ids or ids[0] < 1 or ids[-1] > 24:
        raise ValueError(f"actor ids must be in 1..24 (RAVDESS's), got {list(actors)}")
    return ids


# ------------------------------------------------------------------------------- clips


@dataclass(frozen=True)
class Clip:
    """One file of the corpus: its RAVDESS fields and where it goes."""

    channel: int  # 1 speech, 2 song
    emotion: str
    intensity: int  # 1 normal, 2 strong
    statement: int
    repetition: int
    actor: int

    @property
    def domain(self) -> str:
        return "speech" if self.channel == SPEECH_CHANNEL else "music"

    @property
    def relpath(self) -> str:
        channel = "speech" if self.channel == SPEECH_CHANNEL else "song"
        return _ravdess.file_name(channel, self.emotion, self.intensity, self.statement, self.repetition, self.actor)

    def rng(self, seed: int) -> np.random.Generator:
        key = [seed, self.channel, SPEECH_EMOTIONS.index(self.emotion), self.intensity,
               self.statement, self.repetition, self.actor]
        return np.random.default_rng(key)


def corpus_clips(
    actors: Sequence[int],
    emotions: Sequence[str],
    statements: Sequence[int],
    repetitions: int,
    domains: Sequence[str],
) -> list[Clip]:
    """Every clip of a corpus, in a fixed order (RAVDESS's factorial design)."""
    clips = []
    for domain in domains:
        channel, allowed = (
            (SPEECH_CHANNEL, SPEECH_EMOTIONS) if domain == "speech" else (SONG_CHANNEL, SONG_EMOTIONS)
        )
        for actor in actors:
            for emotion in emotions:
                if emotion not in allowed:
                    continue
                for intensity in (1,) if emotion == "neutral" else (1, 2):
                    for statement in statements:
                        for rep in range(1, repetitions + 1):
                            clips.append(Clip(channel, emotion, intensity, statement, rep, actor))
    return clips


# ------------------------------------------------------------------------------ speech


def _espeak(text: str, voice: Voice, style: SpeechStyle) -> tuple[np.ndarray, int]:
    import io

    import soundfile as sf

    ssml = (
        f'<speak><prosody pitch="{style.pitch:+.1f}%" range="{max(style.range, 5):.1f}%" '
        f'rate="{max(style.rate, 30):.1f}%">{text}</prosody></speak>'
    )
    cmd = ["espeak-ng", "-m", "--stdout", "-v", f"{voice.language}+{voice.variant}",
           "-p", str(voice.pitch), "-s", str(voice.speed), ssml]
    try:
        out = subprocess.run(cmd, capture_output=True, check=True).stdout
    except FileNotFoundError:
        raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng)") from None
    except subprocess.CalledProcessError as error:
        raise RuntimeError(f"espeak-ng failed: {error.stderr.decode(errors='replace')}") from None
    wave, sr = sf.read(io.BytesIO(out), dtype="float32")
    return wave, sr


def _smooth_noise(rng: np.random.Generator, n: int, sr: int, cutoff: float) -> np.ndarray:
    """Unit-variance random signal band-limited to ``cutoff`` Hz (for wobble and tremor)."""
    step = max(1, int(sr / (2 * cutoff)))
    knots = rng.standard_normal(n // step + 2)
    return np.interp(np.arange(n) / step, np.arange(knots.size), knots)


def _trim(wave: np.ndarray, sr: int, pad: float = 0.05) -> np.ndarray:
    """Cut leading/trailing silence, keeping ``pad`` seconds each side."""
    frame = int(0.01 * sr)
    energy = np.convolve(wave**2, np.ones(frame) / frame, mode="same")
    active = np.flatnonzero(energy > energy.max() * 1e-4)
    if active.size == 0:
        return wave
    start = max(0, active[0] - int(pad * sr))
    return wave[start : active[-1] + int(pad * sr)]


def _set_level(wave: np.ndarray, db: float) -> np.ndarray:
    """Scale to a reference RMS (over the active part) plus ``db``; soft-limit the peaks."""
    frame = max(1, wave.size // 200)
    power = np.convolve(wave**2, np.ones(frame) / frame, mode="same")
    rms = np.sqrt(power[power > power.max() * 1e-3].mean() + 1e-12)
    wave = wave * (10 ** ((-26.0 + db) / 20) / rms)
    return np.tanh(wave / 0.95) * 0.95


def render_speech(clip: Clip, seed: int, sample_rate: int) -> tuple[np.ndarray, dict]:
    """One utterance: espeak-ng prosody, then voice-quality effects, then level."""
    from scipy.signal import lfilter

    from hub_emo.audio import resample

    rng = clip.rng(seed)
    voice = actor_voice(clip.actor)
    style = _performed(SPEECH_STYLES, clip)
    # a performer never says a line twice the same way
    style = replace(
        style,
        pitch=style.pitch + rng.normal(0, 3),
        rate=style.rate * (1 + rng.normal(0, 0.04)),
        loudness=style.loudness + rng.normal(0, 1.0),
    )
    wave, sr = _espeak(STATEMENTS[clip.statement], voice, style)
    wave = _trim(wave.astype(np.float64), sr)
    n, t = wave.size, np.arange(wave.size) / sr
    if style.jitter > 0:  # pitch wobble: read the waveform at a randomly varying speed
        speed = 1 + style.jitter * _smooth_noise(rng, n, sr, 12.0)
        wave = np.interp(np.cumsum(speed).clip(0, n - 1), np.arange(n), wave)
    if style.tremolo > 0:
        rate_hz = 6.5 + rng.uniform(-0.5, 1.0)
        wave = wave * (1 + style.tremolo * np.sin(2 * np.pi * rate_hz * t + rng.uniform(0, 6.3)))
    if style.breath > 0:
        envelope = np.sqrt(np.convolve(wave**2, np.ones(int(0.02 * sr)) / (0.02 * sr), mode="same"))
        noise = lfilter([1, -0.9], [1], rng.standard_normal(n))
        wave = wave + style.breath * 8 * envelope * noise
    if style.tilt > 0:
        wave = lfilter([1, -min(0.95, style.tilt)], [1], wave)
    elif style.tilt < 0:
        a = min(0.95, -style.tilt)
        wave = lfilter([1 - a], [1, -a], wave)
    if style.drive > 0:
        peak = np.abs(wave).max() + 1e-12
        wave = np.tanh(style.drive * wave / peak) * peak
    wave = _set_level(wave, style.loudness)
    wave = resample(wave.astype(np.float32), sr, sample_rate)
    params = {"voice": f"{voice.language}+{voice.variant}", "base_pitch": voice.pitch,
              "base_rate_wpm": voice.speed, **{k: round(float(v), 3) for k, v in asdict(style).items()}}
    return wave, params


# ------------------------------------------------------------------------------- music

#: Syllable rhythm of each statement in beats (stressed syllables longer) and its contour
#: in scale degrees: "KIDS are TALK-ing BY the DOOR", "DOGS are SIT-ting BY the DOOR".
RHYTHMS = {1: (0.5, 0.25, 0.5, 0.25, 0.375, 0.125, 0.5), 2: (0.5, 0.25, 0.375, 0.375, 0.25, 0.25, 0.5)}
CONTOURS = {1: (0, 2, 4, 2, 3, 1, 0), 2: (4, 3, 2, 4, 1, 2, 0)}


def _soundfont() -> str:
    for path in SOUNDFONTS:
        if os.path.isfile(path):
            return path
    import pretty_midi

    bundled = Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"
    if bundled.is_file():
        return str(bundled)
    raise RuntimeError("no General MIDI SoundFont found (apt-get install timgm6mb-soundfont)")


def _degree_to_pitch(degree: float, scale: Sequence[int]) -> int:
    d = int(round(degree))
    return 12 * (d // len(scale)) + scale[d % len(scale)]


def melody(clip: Clip, seed: int):
    """The MIDI of one sung line: melody on the syllable rhythm over chord stabs."""
    import pretty_midi

    rng = clip.rng(seed)
    inst = actor_instrument(clip.actor)
    style = _performed(MUSIC_STYLES, clip)
    style = replace(
        style,
        tempo=min(220.0, max(50.0, style.tempo * (1 + rng.normal(0, 0.04)))),
        velocity=style.velocity + rng.normal(0, 3),
    )
    tonic = inst.tonic + int(round(style.register)) + int(rng.integers(-2, 3))
    beat = 60.0 / style.tempo
    pm = pretty_midi.PrettyMIDI(initial_tempo=style.tempo)
    part = pretty_midi.Instrument(program=inst.program, name=inst.name)

    def velocity(scale=1.0):
        return int(np.clip(scale * (style.velocity + rng.normal(0, style.velocity_spread)), 8, 127))

    onset = 0.05
    for length, degree in zip(RHYTHMS[clip.statement], CONTOURS[clip.statement]):
        start = onset + rng.normal(0, style.timing_jitter) * beat if onset > 0.05 else onset
        dur = max(0.04, length * beat * min(style.articulation, 1.1))
        pitch = tonic + _degree_to_pitch(degree * style.leap, style.scale)
        part.notes.append(pretty_midi.Note(velocity(), int(np.clip(pitch, 21, 108)), start, start + dur))
        onset += length * beat
    end = onset
    chord = [tonic - 12 + _degree_to_pitch(d, style.scale) for d in (0, 2, 4)]
    t = 0.05
    while t < end - 1e-6:  # one chord per beat: carries mode, tempo and articulation
        for pitch in chord:
            part.notes.append(
                pretty_midi.Note(velocity(0.55), int(np.clip(pitch, 21, 108)), t,
                                 t + max(0.04, min(beat * min(style.articulation, 1.0), end - t)))
            )
        t += beat
    if style.vibrato > 0:
        for time_s in np.arange(0.0, end, 0.02):
            bend = style.vibrato / 2 * 8191 * np.sin(2 * np.pi * style.vibrato_rate * time_s)
            part.pitch_bends.append(pretty_midi.PitchBend(int(bend), float(time_s)))
    pm.instruments.append(part)
    params = {"instrument": inst.name, "program": inst.program, "tonic": tonic,
              **{k: (list(v) if isinstance(v, tuple) else round(float(v), 3))
                 for k, v in asdict(style).items()}}
    return pm, params


SONG_GAIN = 5.0
#: FluidSynth is rendered one clip at a time: two synthesisers in two threads rendered one clip
#: differently in two runs of one revision (its start-up is not thread-safe), and a corpus must
#: come out the same every time. Speech (espeak-ng subprocesses) still renders in parallel.
_FLUIDSYNTH = threading.Lock()


def _quiet_fluidsynth() -> None:
    """Silence FluidSynth's warnings (TimGM6mb triggers one per clip); errors still print."""
    try:
        import ctypes

        import fluidsynth

        for level in (2, 3):  # FLUID_WARN, FLUID_INFO
            fluidsynth._fl.fluid_set_log_function(ctypes.c_int(level), None, None)
    except (ImportError, AttributeError, OSError):
        pass


def render_song(clip: Clip, seed: int, sample_rate: int) -> tuple[np.ndarray, dict]:
    pm, params = melody(clip, seed)
    _quiet_fluidsynth()
    with _FLUIDSYNTH:
        wave = pm.fluidsynth(fs=sample_rate, synthesizer=_soundfont(), normalize=False)
    # keep a short release after the last note, faded, instead of the whole reverb tail
    end = min(wave.size, int((pm.get_end_time() + 0.25) * sample_rate))
    wave = wave[:end].astype(np.float64)
    fade = min(end, int(0.05 * sample_rate))
    wave[end - fade :] *= np.linspace(1.0, 0.0, fade)
    # FluidSynth's level follows velocity; one fixed gain, soft-limited, keeps it so.
    wave = np.tanh(wave * SONG_GAIN / 0.95) * 0.95
    return wave.astype(np.float32), params


# ------------------------------------------------------------------------------ corpus


def _render_batch(clips: list[Clip], out_dir: str, seed: int, sample_rate: int) -> list[dict]:
    import soundfile as sf

    rows = []
    for clip in clips:
        render = render_speech if clip.channel == SPEECH_CHANNEL else render_song
        wave, params = render(clip, seed, sample_rate)
        path = Path(out_dir, clip.relpath)
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), wave, sample_rate, subtype="PCM_16")
        rows.append({"file": clip.relpath, **asdict(clip), "domain": clip.domain,
                     "seconds": round(wave.size / sample_rate, 4), "params": params})
    return rows


def _tool_versions() -> dict:
    def first_line(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True).stdout.strip().splitlines()[0]
        except (OSError, IndexError):
            return None

    import pretty_midi

    return {
        "espeak-ng": first_line(["espeak-ng", "--version"]),
        "pretty_midi": getattr(pretty_midi, "__version__", None),
        "soundfont": os.path.basename(_soundfont()),
        "generator_version": GENERATOR_VERSION,
    }


LICENSE_TEXT = """# hub_emo synthetic emotion corpus

Generated on this machine by `hub-emo synth` (hub_emo.demo.synth) — no recording, no
download. Speech is espeak-ng text-to-speech with emotional prosody; song is MIDI
rendered with FluidSynth and the TimGM6mb General MIDI SoundFont (GPL-2 with a
permission to use its sounds freely in rendered music). The "actors" are synthetic
voices and instruments, not people, and the emotions are rules, not performances.

Licence: CC0 1.0 Universal (public domain dedication). Use it for anything.

Layout: RAVDESS's (`Actor_XX/03-VV-EE-II-SS-RR-AA.wav`; VV 01 speech, 02 song; EE
01 neutral, 02 calm, 03 happy, 04 sad, 05 angry, 06 fearful, 07 disgust, 08 surprised;
II 01 normal, 02 strong intensity; SS statement 01 "Kids are talking by the door", 02
"Dogs are sitting by the door"; RR repetition; AA actor, odd male-ish, even
female-ish). This is NOT RAVDESS and says nothing about how people express emotion:
it is a deterministic stand-in so the pipeline runs offline. Every clip's generation
parameters are in `synth_metadata.json`.
"""


def build_corpus(
    out_dir: str | os.PathLike,
    seed: int = 0,
    actors: int | Iterable[int] = 8,
    emotions: Sequence[str] = DEFAULT_EMOTIONS,
    statements: Sequence[int] = (1, 2),
    repetitions: int = 2,
    domains: Sequence[str] = ("speech", "music"),
    sample_rate: int = 16000,
    workers: int | None = None,
    overwrite: bool = False,
) -> dict:
    """Generate the corpus into ``out_dir`` and return a summary.

    A rerun with the same parameters finds the previous output and reuses it (unless
    ``overwrite``); a previous synthetic corpus with other parameters is replaced. A
    directory holding anything else is refused rather than mixed with generated files.
    """
    out = Path(out_dir)
    actor_ids, emotions = resolve_actors(actors), tuple(emotions)
    parameters = _checked_parameters(seed, actor_ids, emotions, statements, repetitions, domains, sample_rate)
    previous = _previous_corpus(out, parameters, overwrite)
    if previous is not None:
        return _summary(out, previous, elapsed=0.0, reused=True)
    started = time.perf_counter()
    clips = corpus_clips(actor_ids, emotions, parameters["statements"], repetitions, domains)
    by_file = _render_clips(clips, out, seed, sample_rate, workers)
    metadata = {
        "description": "hub_emo synthetic speech + song emotion corpus (RAVDESS layout)",
        "license": "CC0-1.0",
        "parameters": parameters,
        "tools": _tool_versions(),
        "speech_styles": {k: asdict(v) for k, v in SPEECH_STYLES.items() if k in emotions},
        "music_styles": {k: asdict(v) for k, v in MUSIC_STYLES.items() if k in emotions},
        "strong_intensity_factor": STRONG,
        "clips": [by_file[c.relpath] for c in clips],
    }
    (out / LICENSE_FILE).write_text(LICENSE_TEXT)
    (out / METADATA_FILE).write_text(json.dumps(metadata, indent=1) + "\n")
    return _summary(out, metadata, elapsed=time.perf_counter() - started, reused=False)


def _checked_parameters(seed, actor_ids, emotions, statements, repetitions, domains, sample_rate) -> dict:
    """The corpus parameters as the metadata records them; invalid ones are refused."""
    unknown = [e for e in emotions if e not in SPEECH_EMOTIONS]
    if unknown or not emotions:
        raise ValueError(f"emotions must be among {SPEECH_EMOTIONS}, got {list(emotions)}")
    bad = [s for s in statements if s not in STATEMENTS] + [d for d in domains if d not in ("speech", "music")]
    if bad or repetitions not in (1, 2) or sample_rate < 8000:  # RAVDESS has 2 repetitions
        raise ValueError(f"invalid corpus parameters: {bad or (repetitions, sample_rate)}")
    return {
        "seed": int(seed), "actors": list(actor_ids), "emotions": list(emotions),
        "statements": [int(s) for s in statements], "repetitions": int(repetitions),
        "domains": list(domains), "sample_rate": int(sample_rate),
    }


def _previous_corpus(out: Path, parameters: dict, overwrite: bool) -> dict | None:
    """The metadata of a complete earlier corpus with these ``parameters`` in ``out``, to reuse.

    Any other earlier synthetic corpus is deleted; a non-empty folder without one is refused.
    """
    meta_path = out / METADATA_FILE
    previous = None
    if meta_path.is_file():
        previous = json.loads(meta_path.read_text())
    elif out.is_dir() and any(out.iterdir()):
        raise ValueError(f"{out}: directory is not empty and holds no {METADATA_FILE}; refusing to write a corpus into it")
    if previous and not overwrite and previous.get("parameters") == parameters \
            and previous.get("tools", {}).get("generator_version") == GENERATOR_VERSION \
            and all((out / row["file"]).is_file() for row in previous["clips"]):
        return previous
    if previous:
        for row in previous.get("clips", []):
            (out / row["file"]).unlink(missing_ok=True)
        meta_path.unlink()
    return None


def _render_clips(clips: list[Clip], out: Path, seed: int, sample_rate: int, workers: int | None) -> dict:
    """Render every clip into ``out``; each clip's metadata row by its file."""
    # one batch per (domain, actor), ordered longest first, so workers stay busy
    batches: dict[tuple[int, int], list[Clip]] = {}
    for clip in clips:
        batches.setdefault((clip.channel, clip.actor), []).append(clip)
    work = sorted(batches.values(), key=lambda b: (-len(b), b[0].channel, b[0].actor))
    workers = workers or min(len(work), os.cpu_count() or 1)
    out.mkdir(parents=True, exist_ok=True)
    # Threads, not processes: the work is espeak-ng subprocesses, FluidSynth and numpy,
    # which release the GIL, and a spawned process would re-import torch (via hub_emo).
    with ThreadPoolExecutor(workers) as pool, \
            bar(total=sum(len(b) for b in work), desc="synthesise corpus", unit="clip") as shown:
        results = []
        for rows in pool.map(_render_batch, work, [str(out)] * len(work), [seed] * len(work),
                             [sample_rate] * len(work)):
            results.append(rows)
            shown.update(len(rows))
    return {row["file"]: row for rows in results for row in rows}


def _summary(out: Path, metadata: dict, elapsed: float, reused: bool) -> dict:
    clips = metadata["clips"]
    per_domain = {d: sum(1 for c in clips if c["domain"] == d) for d in metadata["parameters"]["domains"]}
    return {
        "out_dir": str(out),
        "clips": len(clips),
        "per_domain": per_domain,
        "seconds_of_audio": round(sum(c["seconds"] for c in clips), 1),
        "actors": metadata["parameters"]["actors"],
        "emotions": metadata["parameters"]["emotions"],
        "sample_rate": metadata["parameters"]["sample_rate"],
        "elapsed_s": round(elapsed, 2),
        "reused": reused,
    }


def load_metadata(corpus_dir: str | os.PathLike) -> dict:
    path = Path(corpus_dir) / METADATA_FILE
    if not path.is_file():
        raise ValueError(f"{path}: no such file; is {corpus_dir} a corpus made by build_corpus?")
    return json.loads(path.read_text())


def corpus_files(corpus_dir: str | os.PathLike, domain: str) -> list[Path]:
    """The clips of one domain ("speech" or "music") of a generated corpus, in order."""
    if domain not in ("speech", "music"):
        raise ValueError(f"domain must be 'speech' or 'music', got {domain!r}")
    rows = load_metadata(corpus_dir)["clips"]
    return [Path(corpus_dir, r["file"]) for r in rows if r["domain"] == domain]


# ----------------------------------------------------------------------- learnability


def acoustic_features(wave: np.ndarray, sr: int) -> np.ndarray:
    """A dozen classic prosodic/spectral statistics of one clip (for a sanity probe).

    Log-energy mean/std/max, pitch proxy (autocorrelation peak, voiced frames) mean/std/
    range, spectral centroid mean/std, zero-crossing rate mean/std, voiced fraction,
    duration.
    """
    frame, hop = int(0.04 * sr), int(0.01 * sr)
    if wave.size < frame:
        wave = np.pad(wave, (0, frame - wave.size))
    n = 1 + (wave.size - frame) // hop
    frames = np.lib.stride_tricks.sliding_window_view(wave, frame)[::hop][:n] * np.hanning(frame)
    power = (frames**2).mean(axis=1) + 1e-10
    log_e = np.log(power)
    spec = np.abs(np.fft.rfft(frames, 2 * frame, axis=1))
    freqs = np.fft.rfftfreq(2 * frame, 1 / sr)
    centroid = (spec * freqs).sum(1) / (spec.sum(1) + 1e-10)
    zcr = (np.abs(np.diff(np.sign(frames), axis=1)) > 0).mean(axis=1)
    ac = np.fft.irfft(spec**2, axis=1)[:, :frame]
    lo, hi = int(sr / 500), int(sr / 60)
    lag = lo + ac[:, lo:hi].argmax(axis=1)
    strength = ac[np.arange(n), lag] / (ac[:, 0] + 1e-10)
    voiced = (strength > 0.4) & (log_e > log_e.max() - 6)
    f0 = np.log(sr / lag[voiced]) if voiced.any() else np.zeros(1)
    active = log_e > log_e.max() - 8
    return np.array([
        log_e[active].mean(), log_e[active].std(), log_e.max(),
        f0.mean(), f0.std(), np.ptp(f0),
        centroid[active].mean(), centroid[active].std(),
        zcr[active].mean(), zcr[active].std(),
        voiced.mean(), wave.size / sr,
    ])


def probe_learnability(corpus_dir: str | os.PathLike, domain: str = "speech") -> dict:
    """Accuracy of a logistic regression on `acoustic_features`, actor-independent.

    Leave-one-actor-out (or 4 actor folds when there are more actors); chance is the
    majority-class rate. A corpus whose emotions this cannot separate would make the
    demo's studies meaningless.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from hub_emo.audio import load

    rows = [r for r in load_metadata(corpus_dir)["clips"] if r["domain"] == domain]
    if not rows:
        raise ValueError(f"{corpus_dir}: no {domain} clips")
    x = np.stack([acoustic_features(*load(Path(corpus_dir, r["file"]))) for r in rows])
    y = np.array([r["emotion"] for r in rows])
    groups = np.array([r["actor"] for r in rows])
    n_folds = min(4, len(set(groups)))
    if n_folds < 2:
        raise ValueError(f"{corpus_dir}: an actor-independent probe needs at least 2 actors")
    model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
    pred = cross_val_predict(model, x, y, groups=groups, cv=GroupKFold(n_folds))
    _, counts = np.unique(y, return_counts=True)
    return {
        "domain": domain,
        "clips": len(rows),
        "classes": len(counts),
        "accuracy": float((pred == y).mean()),
        "chance": float(counts.max() / counts.sum()),
        "folds": n_folds,
    }
