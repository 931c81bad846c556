"""The generated corpus: RAVDESS layout, read by the real loaders, deterministic, learnable."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dataset_scripts import _ravdess
from hub_emo.demo import synth

NAME = re.compile(r"^03-(0[12])-(0[1-8])-(0[12])-(0[12])-(0[12])-(\d\d)$")
SIX = ("neutral", "calm", "happy", "sad", "angry", "fearful")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """Four actors (one per RAVDESS fold), six emotions, one statement, one repetition."""
    out = tmp_path_factory.mktemp("synth") / "corpus"
    summary = synth.build_corpus(out, seed=0, actors=4, statements=(1,), repetitions=1, workers=1)
    assert summary["per_domain"] == {"speech": 44, "music": 44}
    assert summary["actors"] == [1, 2, 4, 5]
    return out


def test_default_actors_cover_the_four_ravdess_folds():
    for n in (4, 8):
        actors = synth.resolve_actors(n)
        folds = {i for i, fold in enumerate(_ravdess.FOLDS) for a in actors if a in fold}
        assert folds == {0, 1, 2, 3}
    assert synth.resolve_actors(4) == (1, 2, 4, 5)
    assert synth.resolve_actors(8) == tuple(range(1, 9))


def test_layout_and_audio_format(corpus):
    files = sorted(corpus.glob("Actor_*/*.wav"))
    assert len(files) == 88
    for path in files:
        match = NAME.match(path.stem)
        assert match, path.name
        channel, emotion, intensity, statement, repetition, actor = match.groups()
        assert path.parent.name == f"Actor_{actor}"
        assert not (emotion == "01" and intensity == "02"), "neutral has no strong intensity"
        if channel == "02":
            assert int(emotion) <= 6, "song has no disgust or surprised"
        info = sf.info(str(path))
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert 0.5 < info.duration < 5.0
        wave, _ = sf.read(str(path))
        assert np.abs(wave).max() > 0.01
    assert "CC0" in (corpus / synth.LICENSE_FILE).read_text()
    meta = json.loads((corpus / synth.METADATA_FILE).read_text())
    assert meta["parameters"]["seed"] == 0 and len(meta["clips"]) == 88
    assert {c["file"] for c in meta["clips"]} == {str(f.relative_to(corpus)) for f in files}


def test_the_project_ravdess_loaders_read_it_unchanged(corpus):
    from dataset_scripts import Skip, ravdess_song, ravdess_speech

    meta = {Path(c["file"]).stem: c for c in synth.load_metadata(corpus)["clips"]}
    for loader, domain in ((ravdess_speech, "speech"), (ravdess_song, "music")):
        rows = list(loader.records(corpus))
        skips = [r for r in rows if isinstance(r, Skip)]
        assert not skips, skips[:3]
        assert len(rows) == 44
        for row in rows:
            assert meta[row["id"]]["domain"] == domain
            assert row["native_label"] == meta[row["id"]]["emotion"]


def test_same_seed_same_bytes_serial_or_parallel(tmp_path):
    small = dict(actors=(1, 2), emotions=("neutral", "angry"), statements=(2,), repetitions=1)
    a = synth.build_corpus(tmp_path / "a", seed=3, workers=1, **small)
    synth.build_corpus(tmp_path / "b", seed=3, workers=2, **small)
    synth.build_corpus(tmp_path / "c", seed=4, workers=1, **small)
    names = sorted(str(p.relative_to(tmp_path / "a")) for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert len(names) == a["clips"] + 2  # + README.md and the metadata
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    wavs = [n for n in names if n.endswith(".wav")]
    differ = [n for n in wavs if (tmp_path / "a" / n).read_bytes() != (tmp_path / "c" / n).read_bytes()]
    assert len(differ) == len(wavs), "another seed must change every clip"


def test_rerun_reuses_and_foreign_folder_is_refused(tmp_path):
    small = dict(actors=(1,), emotions=("sad",), statements=(1,), repetitions=1, domains=("speech",), workers=1)
    first = synth.build_corpus(tmp_path / "c", **small)
    wav = next((tmp_path / "c").rglob("*.wav"))
    stamp = wav.stat().st_mtime_ns
    again = synth.build_corpus(tmp_path / "c", **small)
    assert again["reused"] and not first["reused"] and wav.stat().st_mtime_ns == stamp
    # other parameters replace the previous generated files, leaving no stale clip behind
    synth.build_corpus(tmp_path / "c", **{**small, "emotions": ("angry",)})
    assert [p.name for p in (tmp_path / "c").rglob("*.wav")] == ["03-01-05-01-01-01-01.wav", "03-01-05-02-01-01-01.wav"]

    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="mine.*not empty"):
        synth.build_corpus(foreign, **small)
    with pytest.raises(ValueError, match="emotions"):
        synth.build_corpus(tmp_path / "x", emotions=("joy",))
    with pytest.raises(ValueError, match="1..24"):
        synth.build_corpus(tmp_path / "x", actors=(30,))


def test_strong_intensity_exaggerates_the_cues():
    """RAVDESS's intensity 02 is performed further from neutral: louder anger, slower sadness."""
    def speech(intensity):
        return synth.render_speech(synth.Clip(1, "angry", intensity, 1, 1, 1), seed=0, sample_rate=16000)

    (normal, said), (strong, shouted) = speech(1), speech(2)
    assert shouted["loudness"] > said["loudness"] > synth.SPEECH_STYLES["neutral"].loudness
    assert np.sqrt(np.mean(strong**2)) > np.sqrt(np.mean(normal**2))

    def song(emotion, intensity):
        return synth.melody(synth.Clip(2, emotion, intensity, 1, 1, 1), seed=0)[1]

    neutral, sad, very_sad = song("neutral", 1), song("sad", 1), song("sad", 2)
    assert very_sad["tempo"] < sad["tempo"] < neutral["tempo"]
    assert very_sad["scale"] == list(synth.MINOR)


@pytest.mark.parametrize("domain, margin", [("speech", 0.35), ("music", 0.2)])
def test_emotions_are_learnable_across_actors(corpus, domain, margin):
    probe = synth.probe_learnability(corpus, domain)
    assert probe["folds"] == 4 and probe["classes"] == 6
    assert probe["accuracy"] >= probe["chance"] + margin, probe


def test_cli_synth(tmp_path, capsys):
    from hub_emo.cli import main

    out = tmp_path / "cli"
    code = main(["synth", str(out), "--actors", "2", "--repetitions", "1", "--emotions", "neutral,sad", "--workers", "1"])
    assert code == 0
    assert "24 clips" in capsys.readouterr().out
    assert len(synth.corpus_files(out, "music")) == 12
