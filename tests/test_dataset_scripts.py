"""Every corpus module: the contract, and its records label by label against the corpus's
published conventions (tables written here from the corpora's documentation, not from
the modules' maps). Only `records()` runs here: no audio is decoded."""

from __future__ import annotations

import pytest

import corpora
import dataset_scripts
from dataset_scripts import Skip
from hub_emo.schema import EMOTIONS


def run(name, root, **options):
    items = list(dataset_scripts.load(name).records(root, **options))
    records = {r["id"]: r for r in items if isinstance(r, dict)}
    skips = [s for s in items if isinstance(s, Skip)]
    return records, skips


@pytest.mark.parametrize("name", dataset_scripts.CORPORA)
def test_contract(name):
    module = dataset_scripts.load(name)
    assert module.NAME == name
    assert module.DOMAIN in ("speech", "music")
    assert module.HOMEPAGE.startswith("http")
    assert module.LICENSE and "@" in module.CITATION and "title" in module.CITATION
    assert set(module.LABEL_MAP.values()) <= set(EMOTIONS)
    assert module.__doc__ and module.records.__doc__


def test_contract_rejects_a_broken_module():
    import types

    broken = types.ModuleType("broken")
    broken.NAME, broken.DOMAIN, broken.HOMEPAGE, broken.LICENSE, broken.CITATION = "b", "video", "", "", ""
    broken.LABEL_MAP, broken.DROPPED, broken.records = {"x": "joy"}, {}, lambda root: iter(())
    with pytest.raises(ValueError, match="DOMAIN"):
        dataset_scripts.check_contract(broken)
    broken.DOMAIN = "music"
    with pytest.raises(ValueError, match="non-canonical.*joy"):
        dataset_scripts.check_contract(broken)
    with pytest.raises(ValueError, match="unknown corpus"):
        dataset_scripts.load("ravdess")


# RAVDESS: emotion codes 01-08, the paper's folds by integer actor id.
RAVDESS_CODES = {1: "neutral", 2: "calm", 3: "happy", 4: "sad", 5: "angry", 6: "fearful", 7: "disgust", 8: "surprised"}
PAPER_FOLDS = [[2, 8, 10, 16, 18, 24], [1, 3, 9, 11, 19, 23], [4, 6, 12, 13, 20, 21], [5, 7, 14, 15, 17, 22]]


def test_ravdess_speech_and_song_split_one_tree(tmp_path):
    corpora.make_ravdess(tmp_path, actors=(1, 2, 18), intensities=(1, 2), seconds=0.01)
    speech, s_skips = run("ravdess_speech", tmp_path)
    song, g_skips = run("ravdess_song", tmp_path)
    assert not s_skips and not g_skips
    # 3 actors x (1 neutral + 7 x 2 intensities) = 45 speech; song: 2 actors x (1 + 5 x 2) = 22
    assert len(speech) == 45 and len(song) == 22
    assert all(i.split("-")[1] == "01" for i in speech) and all(i.split("-")[1] == "02" for i in song)
    assert not any(i.endswith("-18") for i in song)
    for rid, rec in {**speech, **song}.items():
        code, actor = int(rid.split("-")[2]), int(rid.split("-")[6])
        assert rec["label"] == RAVDESS_CODES[code] == rec["native_label"]
        assert rec["speaker"] == f"Actor_{actor:02d}"
        assert actor in PAPER_FOLDS[int(rec["fold"]) - 1]


def test_ravdess_folds_compare_actors_as_integers():
    from dataset_scripts import _ravdess

    for fold, actors in enumerate(PAPER_FOLDS, 1):
        for actor in actors:
            assert _ravdess.fold_of(f"{actor:02d}") == _ravdess.fold_of(actor) == str(fold)
    assert sorted(a for f in PAPER_FOLDS for a in f) == list(range(1, 25))


def test_ravdess_bad_names_are_reported(tmp_path):
    corpora.make_ravdess(tmp_path, actors=(1,), emotions=(1,), vocal_channels=(1,), seconds=0.01)
    for name in ("03-01-01-01-01-01-25.wav", "02-01-01-01-01-01-01.wav", "03-01-09-01-01-01-01.wav",
                 "notes.wav", "03-02-07-01-01-01-01.wav"):
        corpora.tone(tmp_path / "Actor_01" / name, seconds=0.01)
    _, skips = run("ravdess_speech", tmp_path)
    reasons = {s.file.rsplit("/", 1)[-1]: s.reason for s in skips}
    assert "actor 25" in reasons["03-01-01-01-01-01-25.wav"]
    assert "modality 02" in reasons["02-01-01-01-01-01-01.wav"]
    assert "emotion code 09" in reasons["03-01-09-01-01-01-01.wav"]
    assert "does not parse" in reasons["notes.wav"]
    _, song_skips = run("ravdess_song", tmp_path)
    assert any("'disgust' is dropped" in s.reason for s in song_skips)


def test_ravdess_clips_of_a_domain_are_what_the_loaders_read(tmp_path):
    """The demo and the app pick clips with `_ravdess.clips`: the same files the loaders keep."""
    from dataset_scripts import _ravdess

    corpora.make_ravdess(tmp_path, actors=(1, 2), intensities=(1, 2), seconds=0.01)
    corpora.tone(tmp_path / "Actor_01" / "notes.wav", seconds=0.01)
    for domain, corpus in (("speech", "ravdess_speech"), ("music", "ravdess_song")):
        clips = _ravdess.clips(tmp_path, domain)
        assert sorted(path.stem for path, _ in clips) == sorted(run(corpus, tmp_path)[0])
        assert [path for path, _ in clips] == sorted(path for path, _ in clips)
    fields = dict(_ravdess.clips(tmp_path, "music"))[tmp_path / "Actor_02" / "03-02-05-02-01-01-02.wav"]
    assert (fields["channel"], fields["emotion"], fields["intensity"], fields["actor"]) == ("song", "05", "02", "02")
    with pytest.raises(ValueError, match="no 'noise' clips"):
        _ravdess.clips(tmp_path, "noise")


def test_crema_d(tmp_path):
    corpora.make_crema_d(tmp_path)
    corpora.tone(tmp_path / "AudioWAV" / "1001_DFA_XYZ_XX.wav")
    corpora.tone(tmp_path / "AudioWAV" / "0999_DFA_ANG_XX.wav")
    records, skips = run("crema_d", tmp_path)
    published = {"ANG": "angry", "DIS": "disgust", "FEA": "fearful", "HAP": "happy", "NEU": "neutral", "SAD": "sad"}
    assert len(records) == 12
    for rid, rec in records.items():
        actor, _, emotion, _ = rid.split("_")
        assert rec["label"] == published[emotion] and rec["speaker"] == actor and rec["fold"] is None
    assert sorted(s.reason for s in skips) == ["actor 0999 is not 1001-1091", "label 'XYZ' is outside the label map"]


def test_tess_parses_file_names_not_folders(tmp_path):
    corpora.make_tess(tmp_path)
    records, skips = run("tess", tmp_path)
    assert not skips
    assert {rid: r["label"] for rid, r in records.items()} == corpora.TESS_FILES
    assert records["OAF_bite_ps"]["native_label"] == "ps"
    assert {r["speaker"] for r in records.values()} == {"OAF", "YAF"}


@pytest.mark.parametrize("flat", [False, True])
def test_savee_both_layouts_give_speaker_prefixed_ids(tmp_path, flat):
    corpora.make_savee(tmp_path, flat=flat)
    records, skips = run("savee", tmp_path)
    assert not skips
    assert {rid: r["label"] for rid, r in records.items()} == corpora.SAVEE_FILES
    assert records["JE_sa01"]["native_label"] == "sa" and records["JE_sa01"]["speaker"] == "JE"


def test_emodb(tmp_path):
    corpora.make_emodb(tmp_path)
    corpora.tone(tmp_path / "wav" / "03a01Xa.wav")
    corpora.tone(tmp_path / "wav" / "05a01Wa.wav")
    records, skips = run("emodb", tmp_path)
    assert {rid: r["label"] for rid, r in records.items()} == corpora.EMODB_FILES
    assert records["08a02La"]["speaker"] == "08"
    assert sorted(s.reason for s in skips) == ["label 'X' is outside the label map", "speaker 05 is not one of EmoDB's 10"]


def test_iemocap_merges_excited_keeps_unlabelled_and_folds_by_session(tmp_path):
    corpora.make_iemocap(tmp_path)
    corpora.tone(tmp_path / "Session2" / "sentences" / "wav" / "Ses02F_impro02" / "Ses02F_impro02_F009.wav")
    (tmp_path / "Session1" / "sentences" / "wav" / "Ses01F_impro01" / "Ses01F_impro01_F000.wav").unlink()
    records, skips = run("iemocap", tmp_path)
    assert {rid: r["label"] for rid, r in records.items()} == {
        "Ses01F_impro01_F002": None,  # fru: no canonical class, kept
        "Ses01F_impro01_M001": "happy",  # exc -> happy
        "Ses01F_impro01_M003": None,  # xxx (no agreement): kept
        "Ses01M_script01_1_F000": "angry",
        "Ses01M_script01_1_M001": "happy",
        "Ses02F_impro02_F000": "sad",
        "Ses02F_impro02_M001": "surprised",
    }
    rec = records["Ses01M_script01_1_F000"]
    assert (rec["valence"], rec["arousal"], rec["fold"], rec["speaker"]) == (-1.0, 1.0, "1", "Ses01F")
    assert records["Ses02F_impro02_M001"]["speaker"] == "Ses02M" and records["Ses02F_impro02_M001"]["fold"] == "2"
    reasons = sorted(s.reason for s in skips)
    assert reasons == [
        "audio without metadata",
        "metadata without audio (Ses01F_impro01_F000.wav is missing)",
    ]


def test_esd_transcript_labels_split_folders_and_mismatches(tmp_path):
    corpora.make_esd(tmp_path)
    wrong = tmp_path / "ESD" / "0011" / "Happy" / "train" / "0011_000352.wav"
    corpora.tone(wrong)
    with open(tmp_path / "ESD" / "0011" / "0011.txt", "a", encoding="utf-8") as f:
        f.write("0011_000352\ttext\tSad\n0011_009999\ttext\tSad\n")
    records, skips = run("esd", tmp_path)
    assert {rid: (r["label"], r["fold"]) for rid, r in records.items()} == {
        "0001_000001": ("neutral", None), "0001_000351": ("angry", None),
        "0011_000001": ("neutral", "evaluation"), "0011_000351": ("angry", "train"),
        "0011_000701": ("happy", "test"), "0011_001051": ("sad", "train"),
        "0011_001401": ("surprised", "train"),
    }
    assert records["0001_000001"]["native_label"] == "中立"
    assert sorted(s.reason for s in skips) == [
        "folder says Happy, transcript says Sad", "metadata without audio (0011_009999.wav is missing)"]


def test_msp_podcast(tmp_path):
    corpora.make_msp_podcast(tmp_path)
    corpora.tone(tmp_path / "Audios" / "MSP-PODCAST_9999_0001.wav")
    records, skips = run("msp_podcast", tmp_path)
    assert {rid: r["label"] for rid, r in records.items()} == {
        "MSP-PODCAST_0001_0008": "neutral", "MSP-PODCAST_0001_0019": "angry",
        "MSP-PODCAST_0002_0001": "happy", "MSP-PODCAST_0003_0004": "contempt",
        "MSP-PODCAST_0004_0001": "surprised", "MSP-PODCAST_0003_0005": None,  # X: kept, no label
    }
    assert records["MSP-PODCAST_0003_0005"]["native_label"] == "X"
    rec = records["MSP-PODCAST_0001_0019"]
    assert rec["valence"] == pytest.approx((1.8 - 4) / 3) and rec["arousal"] == pytest.approx((6.2 - 4) / 3)
    assert (rec["speaker"], rec["fold"]) == ("127", "Train")
    assert sorted(s.reason for s in skips) == ["audio without metadata"]


QUADRANTS = {"Q1": "happy", "Q2": "angry", "Q3": "sad", "Q4": "calm"}


def test_emopia_song_ids_with_underscores_and_label_csv(tmp_path):
    corpora.make_emopia(tmp_path)
    records, skips = run("emopia", tmp_path)
    assert not skips
    assert {rid: r["label"] for rid, r in records.items()} == {
        c: QUADRANTS[f"Q{q}"] for c, q in corpora.EMOPIA_CLIPS.items()}
    assert records["Q3_-_pfjIZp4YM_0"]["speaker"] == "-_pfjIZp4YM"
    assert records["Q4_a_b_c_3"]["speaker"] == "a_b_c"
    assert records["Q1_0vLPYiPN7qY_1"]["audio"].endswith(".mid")


def test_emopia_with_user_audio(tmp_path):
    corpora.make_emopia(tmp_path / "emopia", audio_dir=tmp_path / "audio")
    (tmp_path / "audio" / "Q2_1Qc15G0ZHIg_2.wav").unlink()
    records, skips = run("emopia", tmp_path / "emopia", audio_dir=tmp_path / "audio")
    assert len(records) == 3 and all(r["audio"].endswith(".wav") for r in records.values())
    assert [s.reason for s in skips] == ["metadata without audio (Q2_1Qc15G0ZHIg_2 is missing)"]


def test_panda_4q(tmp_path):
    corpora.make_panda_4q(tmp_path)
    corpora.mp3(tmp_path / "MER_audio_taffc_dataset" / "Q2" / "MT0000040632.mp3")  # also in Q3
    records, skips = run("panda_4q", tmp_path)
    assert {rid: r["native_label"] for rid, r in records.items()} == {
        k: v for k, v in corpora.PANDA_SONGS.items() if k != "MT0000040632"}
    assert all(r["label"] == QUADRANTS[r["native_label"]] for r in records.values())
    assert records["MT0000004637"]["speaker"] == "Artist 37"
    assert [s.reason for s in skips] == ["folder says Q2, annotations say Q3"]


def test_pmemo_quadrants_at_the_midpoint(tmp_path):
    corpora.make_pmemo(tmp_path)
    records, skips = run("pmemo", tmp_path)
    assert not skips
    # (arousal, valence) on [0, 1]: quadrant by valence/arousal >= 0.5
    expected = {m: QUADRANTS[("Q1" if v >= .5 else "Q2") if a >= .5 else ("Q4" if v >= .5 else "Q3")]
                for m, (a, v) in corpora.PMEMO_ROWS.items()}
    assert {rid: r["label"] for rid, r in records.items()} == expected
    assert records["1"]["valence"] == pytest.approx(0.4) and records["1"]["arousal"] == pytest.approx(0.6)


def test_deam_reads_both_annotation_files(tmp_path):
    corpora.make_deam(tmp_path)
    records, skips = run("deam", tmp_path)
    assert not skips
    expected = {s: QUADRANTS[("Q1" if v >= 5 else "Q2") if a >= 5 else ("Q4" if v >= 5 else "Q3")]
                for s, (v, a) in corpora.DEAM_ROWS.items()}
    assert {rid: r["label"] for rid, r in records.items()} == expected
    assert records["2001"]["valence"] == pytest.approx(0.5) and records["2001"]["arousal"] == pytest.approx(-0.75)


def test_va_ratings_map_a_corpus_scale_and_name_a_bad_column():
    row = {"val": "9", "aro": "3"}
    assert dataset_scripts.va_ratings(row, "val", "aro", (1, 9)) == (1.0, -0.5)
    with pytest.raises(ValueError, match="no Arousal column"):
        dataset_scripts.va_ratings(row, "val", "Arousal", (1, 9))
    with pytest.raises(ValueError, match="aro 'n/a' is not a number"):
        dataset_scripts.va_ratings({"val": "2", "aro": "n/a"}, "val", "aro", (1, 9))


def test_emotify_majority_gems(tmp_path):
    corpora.make_emotify(tmp_path)
    records, skips = run("emotify", tmp_path)
    assert {rid: (r["native_label"], r["label"]) for rid, r in records.items()} == {
        "1": ("tenderness", "tender"), "2": ("sadness", "sad"),
        "101": ("joyful_activation", "happy"), "301": ("amazement", "surprised"),
        "201": ("power", None), "202": ("nostalgia", None), "302": ("solemnity", None)}
    assert records["101"]["audio"].endswith("rock/1.mp3")
    assert not skips  # every clip is kept; those without a canonical class have no label


def test_mtg_jamendo_single_label_view_and_official_split(tmp_path):
    corpora.make_mtg_jamendo_mood(tmp_path)
    records, skips = run("mtg_jamendo_mood", tmp_path)
    assert {rid: (r["label"], r["fold"]) for rid, r in records.items()} == {
        "track_0000214": ("happy", "train"), "track_0000948": ("sad", "test"),
        "track_0001009": ("calm", "train"),
        "track_0001200": (None, "train"), "track_0001300": (None, "train")}  # conflicting; no emotion tag
    assert records["track_0000948"]["native_label"] == "melancholic,sad"
    assert records["track_0000214"]["speaker"] == "artist_0000"
    assert records["track_0001200"]["native_label"] == "happy,sad" and not skips
