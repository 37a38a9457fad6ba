"""Difference sentences from label changes; negation study helpers and a tiny end-to-end run."""
import math

import pytest
import torch

from analysis.difference import describe_difference
from analysis.negation import NegationConfig, verdict_text, word_importance
from lightning_agx.explanation import Explanation

LABELS = ["beep", "hiss", "knock", "siren"]


def test_sentence_names_lost_gained_weaker_in_order_of_change():
    before = torch.tensor([0.93, 0.02, 0.60, 0.30])
    after = torch.tensor([0.04, 0.61, 0.52, 0.45])
    sentence = describe_difference(before, after, LABELS, threshold=0.1)
    assert sentence == ("Without the important tokens the beep is lost (0.93 -> 0.04), a hiss appears (0.02 -> 0.61) "
                        "and the siren is stronger (0.30 -> 0.45).")  # knock moved 0.08 < 0.1: not mentioned


def test_sentence_when_nothing_changes_lists_what_is_heard():
    p = torch.tensor([0.9, 0.1, 0.55, 0.0])
    sentence = describe_difference(p, p + 0.05, LABELS, threshold=0.1, subject="With only the important tokens")
    assert sentence.startswith("With only the important tokens the classifier hears the same (beep, knock;")


def test_word_importance_uses_merged_words_and_last_occurrence():
    e = Explanation("a beep without a beep", ["▁a", "▁be", "ep", "▁without", "▁a", "▁be", "ep", "</s>"],
                    torch.tensor([[0.1, 0.2, 0.3, 0.05, 0.1, 0.7, 0.4, 0.0]]), 25.0)
    assert word_importance(e, "beep") == pytest.approx(0.7)
    assert word_importance(e, "beep", last=False) == pytest.approx(0.3)
    assert word_importance(e, "without") == pytest.approx(0.05)
    assert word_importance(e, "no") is None


def test_verdict_distinguishes_ignored_honoured_and_inconclusive():
    def v(px, floor, neg):
        row = lambda p: {"p_x": p, "imp_without": 0.1, "imp_x": 0.8}  # noqa: E731
        return {"X": row(px), "Y": row(floor), "Y without X": row(neg), "Y without no X": row(neg)}
    assert "ignores" in verdict_text(v(0.9, 0.05, 0.85))
    assert "honours the negation" in verdict_text(v(0.9, 0.05, 0.08))
    assert verdict_text(v(0.1, 0.05, 0.08)).startswith("Inconclusive")


def test_negation_run_on_debug_model(tmp_path):
    from analysis.negation import run
    config = NegationConfig(output_dir=str(tmp_path), pairs=[["beep", "hiss"]], samples=1, batch_size=4)
    config.model.name = "debug"
    config.method = "audiogenx"  # the debug model has no shipped amortised explainer
    config.explainer.epochs = 1
    config.explainer.hidden = 64
    summary = run(config)
    variants = [r["variant"] for r in summary["by_variant"]]
    assert variants == ["X", "Y", "Y without X", "Y without no X"]
    for r in summary["by_variant"]:
        assert 0.0 <= r["p_x"] <= 1.0 and 0.0 <= r["x_heard"] <= 1.0
    assert math.isnan(summary["by_variant"][1]["imp_x"])  # "a hiss" does not mention beep
    assert (tmp_path / "negation.png").is_file() and (tmp_path / "negation_prompts.csv").is_file()
