"""Tiny emotion corpora in each corpus's official layout, for tests.

Every builder writes short generated clips (a sine whose pitch depends on the emotion,
plus a little noise, so a classifier can learn them) under the official file names and
metadata formats, and returns the corpus root.
Builders are deterministic: the same arguments write the same bytes.

For training and probing tests, `make_ravdess` is the one to use::

    from corpora import make_ravdess
    root = make_ravdess(tmp_path, actors=(1, 2), emotions=(1, 3, 4, 5))
    ds = hub_emo.data.prepare(["ravdess_speech", "ravdess_song"], root)
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Iterable

import numpy as np
import soundfile as sf

#: Pitch (Hz) of each canonical emotion's tone: distinct, so labels are learnable.
PITCH = {
    "neutral": 220.0, "calm": 262.0, "happy": 330.0, "sad": 196.0, "angry": 392.0,
    "fearful": 440.0, "disgust": 175.0, "surprised": 494.0, "boredom": 147.0,
    "tender": 294.0, "contempt": 165.0,
}


def tone(path: str | Path, label: str = "neutral", *, seconds: float = 0.1, sr: int = 16000,
         fmt: str | None = None, subtype: str | None = None) -> Path:
    """Write a tone for ``label`` (seeded by the file name, so reruns write the same file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(zlib.crc32(path.name.encode()))
    t = np.arange(int(seconds * sr)) / sr
    wave = 0.4 * np.sin(2 * np.pi * PITCH.get(label, 250.0) * t) + 0.02 * rng.standard_normal(t.size)
    sf.write(str(path), wave.astype(np.float32), sr, format=fmt, subtype=subtype)
    return path


def mp3(path: str | Path, label: str = "neutral", *, seconds: float = 0.1, sr: int = 22050) -> Path:
    return tone(path, label, seconds=seconds, sr=sr, fmt="MP3")


# -- speech ----------------------------------------------------------------------------

RAVDESS_EMOTIONS = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")


def make_ravdess(
    root: str | Path,
    *,
    actors: Iterable[int] = (1, 2),
    emotions: Iterable[int] = range(1, 9),
    vocal_channels: Iterable[int] = (1, 2),
    intensities: Iterable[int] = (1,),
    statements: Iterable[int] = (1,),
    repetitions: Iterable[int] = (1,),
    seconds: float = 0.25,
    sr: int = 16000,
) -> Path:
    """RAVDESS audio-only files ``Actor_XX/03-VV-EE-II-SS-RR-AA.wav`` under ``root``.

    Codes are RAVDESS's: emotions 1-8 (neutral .. surprised), vocal channel 1 speech /
    2 song, intensity 1 normal / 2 strong. As in the real corpus, song has only emotions
    1-6, neutral has no strong intensity, and actor 18 has no song. One file per
    combination: 2 actors x 8 emotions x 2 channels (defaults) = 28 files in ~0.1 s.
    The real corpus is 48 kHz; ``sr`` defaults to 16 kHz to keep tests small.
    """
    root = Path(root)
    for actor in actors:
        for channel in vocal_channels:
            if channel == 2 and actor == 18:
                continue
            for emotion in emotions:
                if channel == 2 and emotion > 6:
                    continue
                for intensity in intensities:
                    if emotion == 1 and intensity == 2:
                        continue
                    for statement in statements:
                        for repetition in repetitions:
                            name = f"03-{channel:02d}-{emotion:02d}-{intensity:02d}-{statement:02d}-{repetition:02d}-{actor:02d}.wav"
                            tone(root / f"Actor_{actor:02d}" / name, RAVDESS_EMOTIONS[emotion - 1],
                                 seconds=seconds, sr=sr, subtype="PCM_16")
    return root


def make_crema_d(root: str | Path) -> Path:
    """``AudioWAV/AAAA_SSS_EEE_LL.wav`` for two actors and all six emotions."""
    root = Path(root)
    for actor, sentence, level in (("1001", "DFA", "XX"), ("1091", "IEO", "HI")):
        for code, label in (("ANG", "angry"), ("DIS", "disgust"), ("FEA", "fearful"),
                            ("HAP", "happy"), ("NEU", "neutral"), ("SAD", "sad")):
            tone(root / "AudioWAV" / f"{actor}_{sentence}_{code}_{level}.wav", label)
    (root / "VideoDemographics.csv").write_text("ActorID,Age,Sex,Race,Ethnicity\n1001,51,Male,Caucasian,Not Hispanic\n")
    return root


TESS_FILES = {
    "OAF_back_angry": "angry", "OAF_bar_disgust": "disgust", "OAF_base_fear": "fearful",
    "OAF_bath_happy": "happy", "OAF_bean_neutral": "neutral", "OAF_beg_sad": "sad",
    "OAF_bite_ps": "surprised", "YAF_back_angry": "angry", "YAF_date_ps": "surprised",
    "YAF_dog_sad": "sad",
}


def make_tess(root: str | Path) -> Path:
    """TESS files in folders named as in the various copies (the folder is not parsed)."""
    root = Path(root)
    folders = {"ps": "Pleasant_surprise", "fear": "fear"}
    for stem, label in TESS_FILES.items():
        speaker, _, emotion = stem.split("_")
        folder = f"{speaker}_{folders.get(emotion, emotion)}"
        if speaker == "YAF" and emotion == "ps":
            folder = "YAF_pleasant_surprised"
        tone(root / "TESS Toronto emotional speech set data" / folder / f"{stem}.wav", label, sr=24414)
    return root


SAVEE_FILES = {
    "DC_a01": "angry", "DC_d02": "disgust", "DC_f03": "fearful", "DC_h01": "happy",
    "JE_n01": "neutral", "JE_sa01": "sad", "JK_su01": "surprised", "KL_sa15": "sad",
}


def make_savee(root: str | Path, *, flat: bool = False) -> Path:
    """SAVEE in the original ``AudioData/DC/a01.wav`` layout, or flattened ``ALL/DC_a01.wav``."""
    root = Path(root)
    for stem, label in SAVEE_FILES.items():
        speaker, _, utterance = stem.partition("_")
        path = root / "ALL" / f"{stem}.wav" if flat else root / "AudioData" / speaker / f"{utterance}.wav"
        tone(path, label, sr=44100, seconds=0.05)
    return root


EMODB_FILES = {
    "03a01Wa": "angry", "08a02La": "boredom", "09a04Eb": "disgust", "10a05Ac": "fearful",
    "11a07Fd": "happy", "12b01Ta": "sad", "16b10Na": "neutral",
}


def make_emodb(root: str | Path) -> Path:
    root = Path(root)
    for stem, label in EMODB_FILES.items():
        tone(root / "wav" / f"{stem}.wav", label)
    return root


#: (utterance, native label, [valence, activation, dominance]) per dialog of Session1/2.
IEMOCAP_LINES = {
    ("Session1", "Ses01F_impro01"): [
        ("Ses01F_impro01_F000", "neu", (2.5, 2.5, 2.5)),
        ("Ses01F_impro01_M001", "exc", (4.0, 4.5, 3.0)),
        ("Ses01F_impro01_F002", "fru", (2.0, 3.5, 3.5)),
        ("Ses01F_impro01_M003", "xxx", (2.5, 3.0, 3.0)),
    ],
    ("Session1", "Ses01M_script01_1"): [
        ("Ses01M_script01_1_F000", "ang", (1.0, 5.0, 4.0)),
        ("Ses01M_script01_1_M001", "hap", (5.0, 3.0, 3.0)),
    ],
    ("Session2", "Ses02F_impro02"): [
        ("Ses02F_impro02_F000", "sad", (1.5, 1.5, 2.0)),
        ("Ses02F_impro02_M001", "sur", (3.5, 4.0, 3.0)),
    ],
}


def make_iemocap(root: str | Path) -> Path:
    """``SessionN/sentences/wav/<dialog>/<utt>.wav`` and ``dialog/EmoEvaluation/<dialog>.txt``."""
    root = Path(root)
    for (session, dialog), lines in IEMOCAP_LINES.items():
        text = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]
        for i, (utt, label, (v, a, d)) in enumerate(lines):
            tone(root / session / "sentences" / "wav" / dialog / f"{utt}.wav", label)
            text.append(f"[{i * 3 + 0.5:.4f} - {i * 3 + 2.25:.4f}]\t{utt}\t{label}\t[{v:.4f}, {a:.4f}, {d:.4f}]")
            text.append(f"C-E2:\t{label.title()};\t()")
            text.append(f"A-E3:\tval {int(v)}; act {int(a)}; dom  {int(d)};\t()")
            text.append("")
        path = root / session / "dialog" / "EmoEvaluation" / f"{dialog}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(text), encoding="utf-8")
    return root


#: speaker -> [(utterance, emotion as written in the transcript, folder emotion, split)].
ESD_ROWS = {
    "0001": [("0001_000001", "中立", "Neutral", None), ("0001_000351", "生气", "Angry", None)],
    "0011": [
        ("0011_000001", "Neutral", "Neutral", "evaluation"),
        ("0011_000351", "Angry", "Angry", "train"),
        ("0011_000701", "Happy", "Happy", "test"),
        ("0011_001051", "Sad", "Sad", "train"),
        ("0011_001401", "Surprise", "Surprise", "train"),
    ],
}


def make_esd(root: str | Path) -> Path:
    """``ESD/<spk>/<Emotion>[/<split>]/<spk>_<n>.wav`` and ``<spk>/<spk>.txt`` (tab-separated)."""
    base = Path(root) / "ESD"
    canonical = {"Neutral": "neutral", "Angry": "angry", "Happy": "happy", "Sad": "sad", "Surprise": "surprised"}
    for speaker, rows in ESD_ROWS.items():
        lines = []
        for utt, emotion, folder, split in rows:
            where = base / speaker / folder / (split or "")
            tone(where / f"{utt}.wav", canonical[folder])
            lines.append(f"{utt}\tSome text {utt[-3:]}.\t{emotion}")
        (base / speaker / f"{speaker}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Path(root)


MSP_ROWS = [
    # FileName, EmoClass, EmoAct, EmoVal, EmoDom, SpkrID, Gender, Split_Set
    ("MSP-PODCAST_0001_0008.wav", "N", "4.0", "4.0", "4.0", "127", "Female", "Train"),
    ("MSP-PODCAST_0001_0019.wav", "A", "6.2", "1.8", "5.0", "127", "Female", "Train"),
    ("MSP-PODCAST_0002_0001.wav", "H", "5.0", "6.4", "4.0", "Unknown", "Male", "Development"),
    ("MSP-PODCAST_0003_0004.wav", "C", "3.0", "2.0", "4.0", "12", "Male", "Test1"),
    ("MSP-PODCAST_0003_0005.wav", "X", "3.0", "4.0", "4.0", "12", "Male", "Test1"),
    ("MSP-PODCAST_0004_0001.wav", "U", "5.5", "4.5", "4.0", "88", "Female", "Test2"),
]


def make_msp_podcast(root: str | Path) -> Path:
    root = Path(root)
    labels = {"N": "neutral", "A": "angry", "H": "happy", "C": "contempt", "U": "surprised"}
    for row in MSP_ROWS:
        tone(root / "Audios" / row[0], labels.get(row[1], "neutral"))
    header = "FileName,EmoClass,EmoAct,EmoVal,EmoDom,SpkrID,Gender,Split_Set"
    _write_lines(root / "Labels" / "labels_consensus.csv", [header] + [",".join(r) for r in MSP_ROWS])
    return root


# -- music -----------------------------------------------------------------------------

EMOPIA_CLIPS = {
    "Q1_0vLPYiPN7qY_1": 1, "Q2_1Qc15G0ZHIg_2": 2, "Q3_-_pfjIZp4YM_0": 3, "Q4_a_b_c_3": 4,
}


def make_emopia(root: str | Path, *, audio_dir: str | Path | None = None) -> Path:
    """``midis/Q<n>_<songid>_<clip>.mid`` (one short note each) and ``label.csv`` (ID, 4Q)."""
    import pretty_midi

    root = Path(root)
    (root / "midis").mkdir(parents=True, exist_ok=True)
    for i, (clip, quadrant) in enumerate(EMOPIA_CLIPS.items()):
        midi = pretty_midi.PrettyMIDI()
        piano = pretty_midi.Instrument(program=0)
        piano.notes.append(pretty_midi.Note(velocity=100, pitch=60 + 2 * i, start=0.0, end=0.15))
        midi.instruments.append(piano)
        midi.write(str(root / "midis" / f"{clip}.mid"))
        if audio_dir is not None:
            tone(Path(audio_dir) / f"{clip}.wav", "happy", sr=22050)
    _write_lines(root / "label.csv", ["ID,4Q,annotator"] + [f"{c},{q},a" for c, q in EMOPIA_CLIPS.items()])
    return root


PANDA_SONGS = {"MT0000004637": "Q1", "MT0000011975": "Q2", "MT0000040632": "Q3", "MT0002161109": "Q4"}


def make_panda_4q(root: str | Path) -> Path:
    base = Path(root) / "MER_audio_taffc_dataset"
    labels = {"Q1": "happy", "Q2": "angry", "Q3": "sad", "Q4": "calm"}
    for song, q in PANDA_SONGS.items():
        mp3(base / q / f"{song}.mp3", labels[q], sr=32000)
    _write_lines(base / "panda_dataset_taffc_annotations.csv",
                 ['"Song","Quadrant"'] + [f'"{s}","{q}"' for s, q in PANDA_SONGS.items()])
    _write_lines(base / "panda_dataset_taffc_metadata.csv",
                 ['"Song","Artist","Title","Quadrant"']
                 + [f'"{s}","Artist {s[-2:]}","Title","{q}"' for s, q in PANDA_SONGS.items()])
    return Path(root)


#: musicId -> (Arousal(mean), Valence(mean)) on PMEmo's [0, 1] scale.
PMEMO_ROWS = {"1": (0.8, 0.7), "4": (0.9, 0.2), "5": (0.2, 0.3), "7": (0.3, 0.8), "8": (0.5, 0.5)}


def make_pmemo(root: str | Path) -> Path:
    root = Path(root)
    for music_id in PMEMO_ROWS:
        mp3(root / "chorus" / f"{music_id}.mp3")
    _write_lines(root / "annotations" / "static_annotations.csv",
                 ["musicId,Arousal(mean),Valence(mean)"] + [f"{m},{a},{v}" for m, (a, v) in PMEMO_ROWS.items()])
    _write_lines(root / "metadata.csv", ["musicId,fileName,title,artist,album,duration,chorus_start_time,chorus_end_time"]
                 + [f"{m},{m}.mp3,T,Artist {m},A,30,0,30" for m in PMEMO_ROWS])
    return root


#: song_id -> (valence_mean, arousal_mean) on DEAM's 1-9 scale; the second file holds ids >= 2000.
DEAM_ROWS = {"2": (6.5, 6.0), "3": (3.0, 7.0), "5": (2.5, 3.0), "2001": (7.0, 2.0)}


def make_deam(root: str | Path) -> Path:
    root = Path(root)
    for song in DEAM_ROWS:
        mp3(root / "MEMD_audio" / f"{song}.mp3", sr=44100)
    folder = root / "annotations" / "annotations averaged per song" / "song_level"
    header = "song_id, valence_mean, valence_std, arousal_mean, arousal_std"
    for name, keep in (("1_2000", lambda s: int(s) < 2000), ("2000_2058", lambda s: int(s) >= 2000)):
        _write_lines(folder / f"static_annotations_averaged_songs_{name}.csv",
                     [header] + [f"{s}, {v}, 1.0, {a}, 1.1" for s, (v, a) in DEAM_ROWS.items() if keep(s)])
    return root


EMOTIFY_GEMS = ("amazement", "solemnity", "tenderness", "nostalgia", "calmness", "power",
                "joyful_activation", "tension", "sadness")
#: track id -> (genre, one GEMS vote vector per listener).
EMOTIFY_VOTES = {
    1: ("classical", [(0, 0, 1, 0, 0, 0, 0, 0, 0), (0, 0, 1, 0, 1, 0, 0, 0, 0)]),  # tenderness
    2: ("classical", [(0, 0, 0, 0, 0, 0, 0, 0, 1), (0, 0, 0, 0, 0, 0, 0, 0, 1)]),  # sadness
    101: ("rock", [(0, 0, 0, 0, 0, 0, 1, 0, 0), (0, 0, 0, 0, 0, 1, 1, 0, 0)]),  # joyful_activation
    201: ("electronic", [(0, 0, 0, 0, 0, 1, 0, 0, 0)]),  # power: no canonical class
    202: ("electronic", [(0, 0, 0, 1, 0, 0, 0, 0, 0), (0, 0, 0, 1, 1, 0, 0, 0, 0)]),  # nostalgia: none
    302: ("pop", [(0, 1, 0, 0, 0, 0, 0, 0, 0)]),  # solemnity: no canonical class
    301: ("pop", [(1, 0, 0, 0, 0, 0, 0, 1, 0)]),  # tie: amazement comes first
}


def make_emotify(root: str | Path) -> Path:
    root = Path(root)
    for track, (genre, _) in EMOTIFY_VOTES.items():
        mp3(root / "emotifymusic" / genre / f"{(track - 1) % 100 + 1}.mp3", sr=44100)
    header = "track id, genre, " + ", ".join(EMOTIFY_GEMS) + ", mood, liked, disliked, age, gender, mother tongue"
    lines = [header]
    for track, (genre, votes) in EMOTIFY_VOTES.items():
        for vote in votes:
            lines.append(f"{track}, {genre}, " + ", ".join(map(str, vote)) + ", 3, 1, 0, 30, 1, English")
    _write_lines(root / "emotifymusic" / "data.csv", lines)
    return root


#: TRACK_ID -> (PATH, tags); the splits file puts track_0000948 in test.
MTG_ROWS = {
    "track_0000214": ("14/214.mp3", ["mood/theme---happy", "mood/theme---film"]),
    "track_0000948": ("48/948.mp3", ["mood/theme---melancholic", "mood/theme---sad"]),
    "track_0001009": ("09/1009.mp3", ["mood/theme---relaxing"]),
    "track_0001200": ("00/1200.mp3", ["mood/theme---happy", "mood/theme---sad"]),
    "track_0001300": ("00/1300.mp3", ["mood/theme---epic"]),
}


def make_mtg_jamendo_mood(root: str | Path) -> Path:
    """``data/autotagging_moodtheme.tsv``, ``data/splits/split-0/*.tsv`` and audio at ``audio/<PATH>``."""
    root = Path(root)
    header = "TRACK_ID\tARTIST_ID\tALBUM_ID\tPATH\tDURATION\tTAGS"
    rows = [f"{t}\tartist_000{i}\talbum_000{i}\t{p}\t212.7\t" + "\t".join(tags)
            for i, (t, (p, tags)) in enumerate(MTG_ROWS.items())]
    _write_lines(root / "data" / "autotagging_moodtheme.tsv", [header] + rows)
    for part, members in (("train", rows[:1] + rows[2:]), ("validation", []), ("test", rows[1:2])):
        _write_lines(root / "data" / "splits" / "split-0" / f"autotagging_moodtheme-{part}.tsv", [header] + members)
    for path, _ in MTG_ROWS.values():
        mp3(root / "audio" / path)
    return root


BUILDERS = {
    "ravdess_speech": make_ravdess,
    "ravdess_song": make_ravdess,
    "crema_d": make_crema_d,
    "tess": make_tess,
    "savee": make_savee,
    "emodb": make_emodb,
    "iemocap": make_iemocap,
    "esd": make_esd,
    "msp_podcast": make_msp_podcast,
    "emopia": make_emopia,
    "panda_4q": make_panda_4q,
    "pmemo": make_pmemo,
    "deam": make_deam,
    "emotify": make_emotify,
    "mtg_jamendo_mood": make_mtg_jamendo_mood,
}


def _write_lines(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
