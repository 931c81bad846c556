"""hub_emo.data.prepare: the shared schema, concatenation, label sets, every bad input,
strict mode, determinism, the written folder (Parquet + card + skip report), the CLI."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import corpora
from hub_emo import data
from hub_emo.schema import EMOTIONS, dataset_features


@pytest.fixture(scope="module")
def ravdess(tmp_path_factory):
    """2 actors x 4 emotions, speech and song: 8 + 8 files."""
    return corpora.make_ravdess(tmp_path_factory.mktemp("ravdess"), actors=(1, 2), emotions=(1, 3, 4, 5), seconds=0.1)


@pytest.fixture(scope="module")
def written(ravdess, tmp_path_factory):
    out = tmp_path_factory.mktemp("written") / "emo"
    result = data.prepare_with_report(["ravdess_speech", "ravdess_song"], ravdess, out=out)
    return result


def test_speech_and_song_concatenate_in_the_schema(ravdess):
    ds = data.prepare(["ravdess_speech", "ravdess_song"], ravdess)
    expected = dataset_features()
    assert ds.features == expected
    assert len(ds) == 16
    assert ds["corpus"] == ["ravdess_speech"] * 8 + ["ravdess_song"] * 8
    domains = ds.features["domain"].int2str(ds["domain"])
    assert domains == ["speech"] * 8 + ["music"] * 8
    assert ds["id"][:8] == sorted(ds["id"][:8])
    labels = ds.features["label"].int2str(ds["label"])
    assert labels == [{"01": "neutral", "03": "happy", "04": "sad", "05": "angry"}[i.split("-")[2]] for i in ds["id"]]
    samples = ds[0]["audio"].get_all_samples()
    assert samples.sample_rate == 16000 and samples.data.shape[-1] == 1600
    from datasets import Audio

    resampled = ds.cast_column("audio", Audio(sampling_rate=8000))[0]["audio"].get_all_samples()
    assert resampled.sample_rate == 8000 and abs(resampled.data.shape[-1] - 800) <= 2


def test_by_config_and_mixed_roots(ravdess, tmp_path):
    corpora.make_pmemo(tmp_path / "pmemo")
    parts = data.prepare(["ravdess_song", "pmemo"], {"ravdess_song": ravdess, "pmemo": tmp_path / "pmemo"}, by_config=True)
    assert list(parts) == ["ravdess_song", "pmemo"]
    assert len(parts["ravdess_song"]) == 8 and len(parts["pmemo"]) == 5
    assert parts["pmemo"].features == parts["ravdess_song"].features
    assert parts["pmemo"]["valence"][0] == pytest.approx(0.4)
    assert parts["ravdess_song"]["valence"][0] is None


def test_label_set_selects_and_merges(ravdess, tmp_path):
    root = corpora.make_ravdess(tmp_path, actors=(3,), emotions=(1, 2, 7), vocal_channels=(1,), seconds=0.05)
    ds = data.prepare("ravdess_speech", root, label_set="shared5")
    assert ds.features["label"].names == ["neutral", "happy", "sad", "angry", "fearful"]
    # disgust is outside shared5; calm merges into neutral
    assert ds["native_label"] == ["neutral", "calm"] and ds["label"] == [0, 0]
    with pytest.raises(data.PrepareError, match="keeps none"):
        data.prepare("ravdess_speech", corpora.make_ravdess(tmp_path / "d", actors=(3,), emotions=(7,), vocal_channels=(1,)),
                     label_set="shared5")


def _bad_tree(root: Path) -> dict[str, str]:
    """A CREMA-D tree with one clip of each bad kind -> the reason expected for it."""
    corpora.make_crema_d(root)
    audio = root / "AudioWAV"
    (audio / "1002_DFA_ANG_XX.wav").write_bytes(b"RIFF\x00\x00not really a wave file" * 4)
    (audio / "1003_DFA_ANG_XX.wav").write_bytes(b"")
    sf.write(audio / "1004_DFA_ANG_XX.wav", np.zeros(800, np.float32), 16000)
    nan = np.full(800, 0.3, np.float32)
    nan[10] = np.nan
    sf.write(audio / "1005_DFA_ANG_XX.wav", nan, 16000, subtype="FLOAT")
    (audio / "1006_DFA_ANG_XX.wav").symlink_to(root / "gone.wav")
    corpora.tone(audio / "1007_DFA_XYZ_XX.wav")
    corpora.tone(audio / "hello.wav")
    return {
        "AudioWAV/1002_DFA_ANG_XX.wav": "cannot decode audio",
        "AudioWAV/1003_DFA_ANG_XX.wav": "file is empty",
        "AudioWAV/1004_DFA_ANG_XX.wav": "silent",
        "AudioWAV/1005_DFA_ANG_XX.wav": "NaN",
        "AudioWAV/1006_DFA_ANG_XX.wav": "unreadable",
        "AudioWAV/1007_DFA_XYZ_XX.wav": "outside the label map",
        "AudioWAV/hello.wav": "does not parse",
    }


def test_every_bad_input_is_skipped_and_reported(tmp_path):
    expected = _bad_tree(tmp_path / "crema")
    corpora.make_msp_podcast(tmp_path / "msp")
    (tmp_path / "msp" / "Audios" / "MSP-PODCAST_0002_0001.wav").unlink()  # metadata without audio
    corpora.tone(tmp_path / "msp" / "Audios" / "MSP-PODCAST_0100_0001.wav")  # audio without metadata
    with open(tmp_path / "msp" / "Labels" / "labels_consensus.csv", "a") as f:
        f.write("MSP-PODCAST_0004_0001.wav,A,nan,3.0,4.0,88,Female,Test2\n")  # NaN rating, duplicate id
    out = tmp_path / "out"
    result = data.prepare_with_report(["crema_d", "msp_podcast"], {"crema_d": tmp_path / "crema", "msp_podcast": tmp_path / "msp"}, out=out)
    assert result.counts() == {"crema_d": 12, "msp_podcast": 5}  # "X" (no agreement) is kept, unlabelled
    report = data.read_skip_report(out / data.SKIP_REPORT)
    crema = {s.file: s.reason for s in report if s.corpus == "crema_d"}
    assert set(crema) == set(expected)
    for file, reason in expected.items():
        assert reason in crema[file], (file, crema[file])
    msp = sorted(s.reason for s in report if s.corpus == "msp_podcast")
    assert msp[0] == "EmoAct is 'nan' (not finite)"
    assert msp[1:] == ["audio without metadata",
                       "metadata without audio (MSP-PODCAST_0002_0001.wav is missing)"]
    summary = result.summary()
    assert "prepared 17 clips (crema_d 12, msp_podcast 5); skipped 10; 1 kept with no canonical class" in summary
    assert str(out / data.SKIP_REPORT) in summary


def test_strict_names_the_file_and_writes_nothing(tmp_path):
    corpora.make_crema_d(tmp_path / "crema")
    sf.write(tmp_path / "crema" / "AudioWAV" / "1004_DFA_ANG_XX.wav", np.zeros(800, np.float32), 16000)
    with pytest.raises(data.PrepareError, match=r"strict: crema_d: .*1004_DFA_ANG_XX\.wav: silent"):
        data.prepare("crema_d", tmp_path / "crema", strict=True, out=tmp_path / "out")
    corpora.tone(tmp_path / "crema" / "AudioWAV" / "oops.wav")
    with pytest.raises(data.PrepareError, match=r"oops\.wav: name does not parse"):
        data.prepare("crema_d", tmp_path / "crema", strict=True, out=tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["crema"]


def test_same_input_gives_the_same_dataset_in_parallel_and_elsewhere(ravdess, tmp_path):
    first = data.prepare(["ravdess_speech", "ravdess_song"], ravdess)
    copy = shutil.copytree(ravdess, tmp_path / "copy")
    second = data.prepare(["ravdess_speech", "ravdess_song"], copy, num_proc=2)
    assert second.to_dict() == first.to_dict()  # ids, labels, folds and the embedded bytes
    stored = first.to_dict()["audio"][0]
    assert stored["path"] == "Actor_01/03-01-01-01-01-01-01.wav" and stored["bytes"][:4] == b"RIFF"


def test_an_edited_file_is_read_again(tmp_path):
    root = corpora.make_ravdess(tmp_path, actors=(4,), emotions=(1, 3), vocal_channels=(1,), seconds=0.05)
    assert len(data.prepare("ravdess_speech", root)) == 2
    sf.write(root / "Actor_04" / "03-01-03-01-01-01-04.wav", np.zeros(400, np.float32), 16000)
    result = data.prepare_with_report("ravdess_speech", root)
    assert len(result.dataset) == 1 and "silent" in result.skipped[0].reason


def test_nothing_to_prepare_and_bad_options(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(data.PrepareError, match="no clips found for tess"):
        data.prepare("tess", tmp_path / "empty")
    with pytest.raises(data.PrepareError, match="not a folder"):
        data.prepare("tess", tmp_path / "missing")
    with pytest.raises(data.PrepareError, match="unknown option.*colour"):
        data.prepare("tess", tmp_path / "empty", corpus_options={"tess": {"colour": 1}})
    with pytest.raises(ValueError, match="unknown label set"):
        data.prepare("tess", tmp_path / "empty", label_set="nope")
    with pytest.raises(data.PrepareError, match="named twice"):
        data.prepare(["tess", "tess"], tmp_path / "empty")


def test_emopia_midi_is_rendered_to_flac(tmp_path):
    corpora.make_emopia(tmp_path)
    ds = data.prepare("emopia", tmp_path)
    assert ds.features["label"].int2str(ds["label"]) == ["happy", "angry", "sad", "calm"]
    first = ds.cast_column("audio", ds.features["audio"].__class__(decode=False))[0]["audio"]
    assert first["path"] == "midis/Q1_0vLPYiPN7qY_1.flac" and first["bytes"][:4] == b"fLaC"
    samples = ds[0]["audio"].get_all_samples()
    assert samples.sample_rate == 22050 and float(samples.data.abs().max()) > 0.1


# -- the written folder ----------------------------------------------------------------


def test_written_folder_loads_by_config_and_streams(written):
    from datasets import get_dataset_config_names, load_dataset

    out = str(written.out)
    assert sorted(p.relative_to(written.out).as_posix() for p in written.out.rglob("*.parquet")) == [
        "data/ravdess_song/train-00000-of-00001.parquet", "data/ravdess_speech/train-00000-of-00001.parquet"]
    assert set(get_dataset_config_names(out)) == {"all", "ravdess_speech", "ravdess_song", "speech", "music"}
    song = load_dataset(out, "ravdess_song", split="train")
    assert len(song) == 8 and set(song["corpus"]) == {"ravdess_song"}
    assert song.features == dataset_features()
    assert len(load_dataset(out, "speech", split="train")) == 8
    assert len(load_dataset(out, split="train")) == 16  # "all" is the default
    streamed = list(load_dataset(out, "music", split="train", streaming=True))
    assert [r["id"] for r in streamed] == song["id"]
    assert streamed[0]["audio"].get_all_samples().sample_rate == 16000


def test_card_validates_and_documents_counts_licences_citations(written):
    from datasets.utils.metadata import MetadataConfigs
    from huggingface_hub import DatasetCard, DatasetCardData

    card = DatasetCard.load(written.out / "README.md")
    assert isinstance(card.data, DatasetCardData)
    assert card.data.task_categories == ["audio-classification"]
    assert card.data.license == "other"
    configs = MetadataConfigs.from_dataset_card_data(card.data)
    assert configs["ravdess_song"]["data_files"] == [{"split": "train", "path": "data/ravdess_song/*.parquet"}]
    assert configs["music"]["data_files"][0]["path"] == ["data/ravdess_song/*.parquet"]
    assert configs["all"]["default"] is True
    text = card.text
    header = "| corpus | " + " | ".join(EMOTIONS) + " | total |"
    assert header in text
    assert "| ravdess_song | 2 | 0 | 2 | 2 | 2 | 0 | 0 | 0 | 0 | 0 | 0 | 8 |" in text
    assert "CC BY-NC-SA 4.0" in text and "@article{livingstone2018ravdess" in text
    assert "`surprised` → surprised" in text and "RAVDESS song has no disgust" in text
    # the card round-trips through huggingface_hub's own parser
    assert DatasetCard(str(card)).data.to_dict() == card.data.to_dict()


def test_existing_output_is_kept_unless_overwrite_and_replaced_atomically(written, ravdess, monkeypatch):
    with pytest.raises(data.PrepareError, match="not empty"):
        data.prepare("ravdess_song", ravdess, out=written.out)
    before = sorted(p.name for p in written.out.rglob("*"))

    def broken_card(*args, **kwargs):
        raise RuntimeError("card template failed")

    from hub_emo.data import parquet

    monkeypatch.setattr(parquet, "dataset_card", broken_card)
    with pytest.raises(RuntimeError, match="card template failed"):
        data.prepare("ravdess_song", ravdess, out=written.out, overwrite=True)
    assert sorted(p.name for p in written.out.rglob("*")) == before
    assert [p.name for p in written.out.parent.iterdir()] == [written.out.name]  # no temp left


def test_cli_prepare(ravdess, tmp_path, capsys):
    from hub_emo.cli import main

    out = tmp_path / "cli"
    assert main(["prepare", "ravdess_song", "--root", str(ravdess), "--out", str(out), "--label-set", "ravdess6"]) == 0
    assert "prepared 8 clips (ravdess_song 8); skipped 0" in capsys.readouterr().out
    assert (out / "README.md").is_file() and (out / data.SKIP_REPORT).read_text() == "corpus\tfile\treason\n"
    corpora.tone(ravdess.parent / "bad" / "AudioWAV" / "1001_DFA_ANG.wav")
    code = main(["prepare", "crema_d", "--root", str(ravdess.parent / "bad"), "--strict"])
    assert code == 1 and "1001_DFA_ANG.wav: name does not parse" in capsys.readouterr().err
    assert main(["prepare", "emopia", "--root", str(tmp_path), "--option", "emopia.colour=red"]) == 1
    assert "unknown option" in capsys.readouterr().err


def test_clips_without_a_canonical_class_are_kept_with_no_label(tmp_path, caplog):
    """Emotify's power / nostalgia / solemnity tracks stay in the dataset with label -1 and their
    native label; label sets, training and probing leave them out and say how many."""
    from hub_emo import schema
    from hub_emo.analysis.probing import clip_metadata, unlabelled_note
    from hub_emo.training.data import select

    corpora.make_emotify(tmp_path / "emotify")
    result = data.prepare_with_report(["emotify"], tmp_path / "emotify", out=tmp_path / "out")
    ds = data.load_prepared(tmp_path / "out", concatenate=True)
    assert not result.skipped and len(ds) == len(corpora.EMOTIFY_VOTES)
    by_id = dict(zip(ds["id"], zip(ds["native_label"], ds["label"])))
    assert {i: n for i, (n, y) in by_id.items() if y == schema.NO_LABEL} == {
        "201": "power", "202": "nostalgia", "302": "solemnity"}
    assert ds.features["label"].int2str(by_id["1"][1]) == "tender"
    assert "3 kept with no canonical class (label -1)" in result.summary()
    card = (tmp_path / "out" / "README.md").read_text()
    assert "Kept with no canonical class" in card and "`nostalgia`" in card

    assert schema.count_unlabelled(ds) == 3
    kept = schema.apply_label_set(ds, "all")
    assert len(kept) == len(ds) - 3 and schema.NO_LABEL not in list(kept["label"])
    with caplog.at_level("WARNING", logger="hub_emo.training.data"):
        train = select(ds, "all", domain="music", name="emotify")
    assert len(train) == len(ds) - 3
    assert "emotify: 3 clip(s) with no canonical class (label -1) left out" in caplog.text
    ids, meta, _ = clip_metadata(ds, "all")
    assert sorted(ids) == ["1", "101", "2", "301"] and len(meta["label"]) == 4
    assert unlabelled_note(ds) == ["3 clip(s) with no canonical class (label -1) left out"]


def test_folders_named_alike_and_a_rewritten_folder_load_their_own_rows(tmp_path):
    """datasets keys a local folder's cache on its base name, config and the card's relative
    patterns; load_prepared must key it on the files, or a second folder gets the first's rows."""
    four = corpora.make_ravdess(tmp_path / "raw4", actors=(1, 2, 3, 4), emotions=(1, 3), seconds=0.1)
    two = corpora.make_ravdess(tmp_path / "raw2", actors=(1, 2), emotions=(1, 3), seconds=0.1)
    names = ["ravdess_speech", "ravdess_song"]
    data.prepare_with_report(names, four, out=tmp_path / "a" / "prepared")
    data.prepare_with_report(names, two, out=tmp_path / "b" / "prepared")

    def speakers(folder, config=None):
        return sorted(set(data.load_prepared(folder, config, concatenate=True)["speaker"]))

    assert speakers(tmp_path / "a" / "prepared") == ["Actor_01", "Actor_02", "Actor_03", "Actor_04"]
    assert speakers(tmp_path / "b" / "prepared") == ["Actor_01", "Actor_02"]
    data.prepare_with_report(names, two, out=tmp_path / "a" / "prepared", overwrite=True)
    assert speakers(tmp_path / "a" / "prepared") == ["Actor_01", "Actor_02"]
    song = data.load_prepared(tmp_path / "b" / "prepared", "ravdess_song", split="train")
    assert set(song["corpus"]) == {"ravdess_song"} and len(song) == 4
