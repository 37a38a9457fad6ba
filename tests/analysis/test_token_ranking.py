"""Token ranking: pieces merge back into words, every word gets a POS tag, ranking on a tiny model."""
import csv
import random

import pytest
import torch

from analysis.token_ranking import (TokenRankingConfig, load_spacy, merge_pieces, normalize, rank_words,
                                    tags_from_doc, word_tags)
from lightning_agx.explanation import Explanation


def t5_like_pieces(caption: str, rng: random.Random) -> tuple[list[str], list[str]]:
    """Sentencepiece-style split: '▁' opens each word, the word is cut into 1-4 character pieces, a
    trailing punctuation mark becomes its own piece (as T5 does with ','), and '</s>' ends the sequence."""
    words, pieces = caption.split(), []
    for word in words:
        core, tail = word, ""
        while core and core[-1] in ",.;:!?" and len(core) > 1:
            core, tail = core[:-1], core[-1] + tail
        cut = []
        while core:
            k = rng.randint(1, 4)
            cut.append(core[:k])
            core = core[k:]
        pieces += ["▁" + cut[0]] + cut[1:] + list(tail)
    return pieces + ["</s>"], words


def test_merge_pieces_example_and_reductions():
    words = merge_pieces(["▁a", "▁clock", "▁tick", "to", "cks", "</s>"], [0.1, 0.5, 0.2, 0.9, 0.4, 0.7], "max")
    assert words == [("a", 0.1), ("clock", 0.5), ("ticktocks", 0.9)]
    mean = merge_pieces(["▁tick", "to", "cks"], [0.2, 0.9, 0.4], "mean")
    assert mean[0][0] == "ticktocks" and mean[0][1] == pytest.approx(0.5)
    # word-level tokenizers (no '▁'): tokens are words
    assert merge_pieces(["a", "beep", "then"], [1, 2, 3]) == [("a", 1.0), ("beep", 2.0), ("then", 3.0)]
    with pytest.raises(ValueError, match="unknown merge"):
        merge_pieces(["▁a"], [1.0], "median")


def test_pieces_and_pos_on_audiocaps(shared_dir):
    path = shared_dir / "data" / "audiocaps" / "test.csv"
    if not path.is_file():
        pytest.skip("AudioCaps test captions are absent")
    with path.open(newline="") as handle:
        captions = [row["caption"] for row in csv.DictReader(handle)]
    assert len(captions) >= 1000
    rng = random.Random(0)
    nlp = load_spacy()
    split_words = []
    for caption in captions:
        pieces, words = t5_like_pieces(caption, rng)
        merged = merge_pieces(pieces, list(range(len(pieces))))
        assert [w for w, _ in merged] == words, caption  # every piece maps back to its word
        # the word's value is the max over its own pieces: the index of its last piece
        ends = [i - 1 for i, p in enumerate(pieces) if p.startswith("▁") and i > 0] + [len(pieces) - 2]
        assert [v for _, v in merged] == ends, caption
        split_words.append(words)
    docs = nlp.pipe([" ".join(w) for w in split_words], batch_size=128)
    valid = set(nlp.get_pipe("tagger").labels) | {"ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN",
                                                 "NUM", "PART", "PRON", "PROPN", "PUNCT", "SCONJ", "SYM", "VERB", "X"}
    noun_hits = 0
    for words, doc in zip(split_words, docs):
        tags = tags_from_doc(doc, words)
        assert len(tags) == len(words) and all(t in valid for t in tags), (words, tags)
        noun_hits += sum(t in ("NOUN", "PROPN") for t in tags)
    assert noun_hits > len(captions)  # sound captions have at least one noun each on average


def test_tags_follow_their_word():
    nlp = load_spacy()
    words = ["A", "dog's", "bark,", "then", "two", "cars", "pass"]
    tags = word_tags(nlp, words)
    assert len(tags) == len(words)
    assert tags[1] in ("NOUN", "PROPN") and tags[2] in ("NOUN", "VERB") and tags[4] == "NUM"
    assert normalize("Bark,") == "bark" and normalize("...") == ""


def test_rank_words_orders_and_filters():
    nlp = load_spacy()
    exps = []
    for i in range(12):
        tokens = ["▁a", "▁dog", "▁bark", "s", "▁then", "▁x", "</s>"]
        mask = torch.tensor([[0.1, 0.8, 0.3, 0.9, 0.05, 0.5, 0.0]]).repeat(4, 1)
        exps.append(Explanation("a dog barks then x", tokens, mask, 25.0))
    exps.append(Explanation("a rare word", ["▁a", "▁rare", "▁word", "</s>"], torch.ones(4, 4), 25.0))
    rows, pos = rank_words(exps, nlp, "max", min_count=10)
    assert [r["word"] for r in rows] == ["barks", "dog", "then"]  # 'a'/'x' one char, 'rare' seen once
    assert rows[0]["importance"] == pytest.approx(0.9) and rows[0]["count"] == 12
    assert rows[2]["pos"] == "ADV" and rows[1]["pos"] == "NOUN"
    assert "DET" in pos


def test_run_on_debug_model_writes_report(tmp_path):
    from analysis.token_ranking import run
    config = TokenRankingConfig(output_dir=str(tmp_path), num_prompts=6, min_count=2, batch_size=6, top=5)
    config.model.name = "debug"
    config.method = "audiogenx"  # the debug model has no shipped amortised explainer
    config.explainer.epochs = 2
    config.explainer.hidden = 64
    summary = run(config)
    for name in ("README.md", "top_words.csv", "bottom_words.csv", "wordcloud_high.png", "wordcloud_low.png",
                 "pos_importance.png", "summary.json"):
        assert (tmp_path / name).is_file(), name
    assert summary["prompts"] == 6 and summary["words_ranked"] >= 1
    with (tmp_path / "top_words.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["word", "importance", "count", "pos", "role"]
    values = [float(r["importance"]) for r in rows]
    assert values == sorted(values, reverse=True)
