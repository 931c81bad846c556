"""Layerwise probing: the planted layer is found; the whole run, its report and its CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hub_emo.analysis.probing import probe_scores, layer_summary
from test_analysis_data import make_backbone_folder, make_dataset


def _planted(layer=2, layers=4, clips=120, dims=12, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, clips)
    domains = np.where(np.arange(clips) % 2 == 0, "speech", "music")
    folds = np.array([str((i // 2) % 3) for i in range(clips)])
    features = rng.normal(size=(layers, clips, dims))
    features[layer, :, :classes] += 6.0 * np.eye(classes)[labels]
    return features, labels, domains, folds


@pytest.mark.parametrize("probe", ["mlp", "logistic"])
def test_probing_finds_the_planted_layer(probe):
    features, labels, domains, folds = _planted(layer=2)
    rows = probe_scores(features, labels, domains, folds, num_classes=3, layer_ids=[0, 3, 6, 9],
                        probe=probe, epochs=30, model="synthetic")
    _, best = layer_summary(rows)
    assert {(b["train_domain"], b["domain"]) for b in best} == {
        ("speech", "speech"), ("music", "music"), ("speech", "music"), ("music", "speech")}
    for entry in best:
        assert entry["layer"] == 6 and entry["layers"] == "6,6,6"  # position 2 of layer_ids, every fold
        assert entry["UA"] > 0.9 and entry["folds"] == 3 and "inner folds" in entry["chosen_by"]
    test = [r for r in rows if r["split"] == "test"]
    chance = [r["UA"] for r in test if r["layer"] == 0]
    assert np.mean(chance) < 0.6
    assert {r["fold"] for r in rows} == {"0", "1", "2"}
    assert all(r["n_train"] + r["n_test"] == 60 for r in test if r["train_domain"] == r["domain"])
    validation = [r for r in rows if r["split"] == "validation"]
    # nested: each validation fit leaves out the outer test fold and the inner one (20 + 20 of 60 clips)
    assert validation and all(r["inner_fold"] != r["fold"] for r in validation)
    assert all(r["n_train"] == 20 and r["n_test"] == 20 for r in validation if r["train_domain"] == r["domain"])


def _row(fold, layer, split, ua, inner=""):
    return {"model": "m", "probe": "mlp", "train_domain": "speech", "domain": "speech", "layer": layer,
            "fold": fold, "split": split, "inner_fold": inner, "WA": ua, "UA": ua, "macro_F1": ua}


def test_layer_is_chosen_on_validation_when_test_disagrees():
    """Constructed so that validation favours layer 1 in every outer fold and test favours layer 2:
    the chosen layer is 1 and the reported score is layer 1's test mean ± std, never layer 2's."""
    rows = []
    test_ua = {("a", 1): 0.50, ("b", 1): 0.60, ("c", 1): 0.70, ("a", 2): 0.90, ("b", 2): 0.95, ("c", 2): 0.99}
    for fold in "abc":
        for inner in set("abc") - {fold}:
            rows += [_row(fold, 1, "validation", 0.80, inner), _row(fold, 2, "validation", 0.40, inner)]
        rows += [_row(fold, layer, "test", test_ua[fold, layer]) for layer in (1, 2)]
    means, (best,) = layer_summary(rows)
    assert best["layer"] == 1 and best["layers"] == "1,1,1"
    assert best["UA"] == pytest.approx(0.60) and best["UA_std"] == pytest.approx(0.10)
    assert {m["layer"]: m["UA"] for m in means} == pytest.approx({1: 0.60, 2: (0.90 + 0.95 + 0.99) / 3})
    # one fold's validation flips to layer 2: that fold alone reports layer 2's test score
    flipped = [dict(r, UA=0.9) if r["split"] == "validation" and r["fold"] == "c" and r["layer"] == 2 else r
               for r in rows]
    _, (best,) = layer_summary(flipped)
    assert best["layers"] == "1,1,2" and best["layer"] == 1
    assert best["UA"] == pytest.approx((0.50 + 0.60 + 0.99) / 3)


def test_probing_is_deterministic_and_reports_skips():
    features, labels, domains, folds = _planted()
    first = probe_scores(features, labels, domains, folds, num_classes=3, epochs=5, seed=3)
    again = probe_scores(features, labels, domains, folds, num_classes=3, epochs=5, seed=3)
    assert first == again
    problems = []
    one_fold = np.where(domains == "music", "0", folds)
    rows = probe_scores(features, labels, domains, one_fold, num_classes=3, epochs=2, problems=problems)
    assert not any(r["train_domain"] == r["domain"] == "music" for r in rows)
    assert any("'music' has 1 fold(s)" in p for p in problems)
    with pytest.raises(ValueError, match="unknown probe"):
        probe_scores(features, labels, domains, folds, num_classes=3, probe="svm")


def test_a_domain_scored_on_both_domains_shares_its_fits_without_changing_a_score():
    """speech→speech and speech→music train on the same clips: one fit serves both, and the
    same-domain rows equal those of a run that fits no cross-domain pair."""
    features, labels, domains, folds = _planted()
    both = probe_scores(features, labels, domains, folds, num_classes=3, epochs=5, seed=3)
    alone = probe_scores(features, labels, domains, folds, num_classes=3, epochs=5, seed=3, cross_domain=False)
    same_domain = [r for r in both if r["train_domain"] == r["domain"]]
    assert same_domain == alone
    assert {(r["train_domain"], r["domain"]) for r in both} == {
        ("speech", "speech"), ("music", "music"), ("speech", "music"), ("music", "speech")}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("probe")
    dataset = make_dataset(root / "wavs", folds=("1", "2", "3"), per_cell=2)
    return root, dataset, make_backbone_folder(root / "w2v"), make_backbone_folder(root / "hubert", "hubert", seed=1)


def test_run_probing_report_and_cached_second_run(corpus, tmp_path):
    from hub_emo.analysis import run_probing
    from hub_emo.features import load_backbone

    _, dataset, w2v, hubert = corpus
    backbone = load_backbone(str(w2v), name="w2v")
    calls = []
    backbone.model.register_forward_hook(lambda _module, args, _out: calls.append(args[0].shape[0]))
    models = {"w2v": backbone, "hubert": str(hubert)}
    result = run_probing(models, dataset, "4class", tmp_path / "a", epochs=3, progress=False)
    assert sum(calls) == len(dataset)  # each clip once for all three layers
    assert {r["layer"] for r in result.rows} == {0, 1, 2}
    assert {r["model"] for r in result.rows} == {"w2v", "hubert"}
    assert len(result.best) == 2 * 4  # 2 models × (2 within + 2 cross-domain)
    columns = json.loads(result.json.read_text())[0].keys()
    assert {"model", "domain", "layer", "fold", "WA", "UA", "macro_F1"} <= set(columns)
    assert result.csv.read_text().startswith("model,probe,train_domain,domain,layer,fold")
    text = result.report.read_text()
    assert "![UA per layer](probing_layers.png)" in text and "Best layer" in text
    assert "chosen on validation folds" in text and "UA_std" in text
    assert (tmp_path / "a" / "probing_layers.png").stat().st_size > 1000
    assert (tmp_path / "a" / "probing_cross_domain.png").stat().st_size > 1000
    # other probe settings and another label set: features come from the cache
    again = run_probing({"w2v": backbone}, dataset, ["happy", "sad"], tmp_path / "b",
                        probe="logistic", layers=[-1], progress=False)
    assert sum(calls) == len(dataset)
    assert {r["layer"] for r in again.rows} == {2}


def test_cli_probe_and_fad(corpus, tmp_path, capsys):
    from hub_emo.cli import main

    root, dataset, w2v, _ = corpus
    folder = root / "prepared"
    if not folder.exists():
        dataset.save_to_disk(str(folder))
    code = main(["probe", "-m", f"tiny={w2v}", "-d", str(folder), "--label-set", "happy,sad,angry",
                 "--epochs", "2", "--out", str(tmp_path / "p"), "--quiet"])
    out = capsys.readouterr().out
    assert code == 0 and "best layer" in out and (tmp_path / "p" / "report.md").is_file()
    assert "layer chosen per outer fold" in out and "over inner folds" in out and "test UA" in out
    code = main(["fad", "-m", f"tiny={w2v}", "-d", str(folder), "--label-set", "happy,sad,angry",
                 "--bootstrap", "5", "--out", str(tmp_path / "f"), "--quiet"])
    out = capsys.readouterr().out
    assert code == 0 and "most alike" in out and (tmp_path / "f" / "report.md").is_file()
    code = main(["probe", "-m", str(w2v), "-d", str(tmp_path / "nowhere"), "--quiet"])
    assert code == 1 and "nowhere" in capsys.readouterr().err


def test_cli_reads_model_and_dataset_from_the_hub(corpus, hub, tmp_path, capsys):
    """Hub ids for both inputs; the features of the Hub copy are the local folder's."""
    from transformers import AutoModel, Wav2Vec2FeatureExtractor

    from hub_emo.features import extract_features
    from hub_emo.cli import main

    _, dataset, w2v, _ = corpus
    AutoModel.from_pretrained(w2v).push_to_hub("hub-emo/analysis-tiny-w2v")
    Wav2Vec2FeatureExtractor.from_pretrained(w2v).push_to_hub("hub-emo/analysis-tiny-w2v")
    dataset.push_to_hub("hub-emo/analysis-tiny-corpus", config_name="both")
    code = main(["probe", "-m", "hub-emo/analysis-tiny-w2v", "-d", "hub-emo/analysis-tiny-corpus",
                 "--config", "both", "--label-set", "happy,sad,angry", "--probe", "logistic",
                 "--out", str(tmp_path), "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert "analysis-tiny-w2v" in capsys.readouterr().out
    local = extract_features(str(w2v), dataset, frames_per_clip=0, progress=False)
    remote = extract_features("hub-emo/analysis-tiny-w2v", dataset, frames_per_clip=0, progress=False)
    assert remote.cache_dir == local.cache_dir  # same weights, same data: one cache entry


@pytest.mark.slow
def test_chosen_layer_score_is_unbiased_when_no_layer_carries_emotion():
    """13 layers of pure noise (true UA 1/3). Picking the layer by mean test UA reports ~0.44
    (the maximum of 13 noisy means); the nested choice reports chance, within sampling error."""
    chosen, by_test = [], []
    for seed in range(8):
        rng = np.random.default_rng(seed)
        labels = rng.integers(0, 3, 96)
        features = rng.normal(size=(13, 96, 8))
        rows = probe_scores(features, labels, ["speech"] * 96, [str(i % 4) for i in range(96)], num_classes=3,
                            probe="logistic", cross_domain=False)
        means, (best,) = layer_summary(rows)
        chosen.append(best["UA"])
        by_test.append(max(m["UA"] for m in means))
    assert abs(np.mean(chosen) - 1 / 3) < 0.05  # sd of the mean ≈ 0.011
    assert np.mean(by_test) > np.mean(chosen) + 0.05
