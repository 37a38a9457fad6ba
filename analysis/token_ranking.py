"""Token ranking (paper, "Analyses"): which words matter to the model, over a whole prompt set.

Audio-level importances (Eq. 7) are merged from text-encoder pieces back to words, tagged with spaCy POS,
and averaged per word over every prompt where the word occurs; words seen at least ``min_count`` times
and longer than one character are ranked.

Pieces -> words (T5 / sentencepiece convention): a piece starting with '▁' opens a new word, any other
piece continues the current one ('▁tick', 'to', 'cks' -> 'ticktocks'); special tokens ('</s>', '<pad>')
are dropped. A word's importance is the MAX over its pieces (``merge: max``, default): a word counts as
important when any of its pieces carries it, and words split into many pieces (rare words) are not
diluted by their uninformative tail pieces, as a mean would do. ``merge: mean`` is available.
Word-level tokenizers (the embedded world) have no '▁': every token is a word.

    python -m analysis.token_ranking --config configs/analysis_token_ranking.yaml
"""
from __future__ import annotations

import string
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from analysis.common import (analysis_prompts, Common, check_choice, check_prompt_fields,  # noqa: E402
                             explanations_or_explain, load_tag, command, save_figure, saved_explanations, setup,
                             write_summary, write_table)
from lightning_agx.errors import UserError  # noqa: E402
from lightning_agx.inputs import check_int  # noqa: E402
from lightning_agx.toyworld.truth import role  # noqa: E402

WORD_START = "▁"  # sentencepiece's word-boundary marker (U+2581)
SPECIAL = {"</s>", "<s>", "<pad>", "<unk>"}
MERGES = ("max", "mean")


@dataclass
class TokenRankingConfig(Common):
    """Rank words by audio-level importance over a prompt set, with POS tags, word clouds and POS bars."""

    output_dir: str = "outputs/analysis/token_ranking"
    prompts_file: str | None = None  # .txt/.csv prompts; none: captions of the embedded world's `split`
    prompts: list[str] = field(default_factory=list)
    num_prompts: int = 2000  # embedded world: how many captions to draw (a file: every caption in it)
    split: str = "val"
    min_count: int = 10  # keep words seen at least this often
    top: int = 50  # rows of the top and bottom tables
    merge: str = "max"  # word importance from its pieces: max | mean
    spacy_model: str = "en_core_web_sm"

    def __post_init__(self) -> None:
        from lightning_agx.toyworld.grammar import SPLITS
        super().__post_init__()
        check_prompt_fields(self)
        check_choice(self.split, "split", SPLITS)
        check_int(self.min_count, "min_count", low=1)
        check_int(self.top, "top", low=1)
        check_choice(self.merge, "merge", MERGES)
        if not isinstance(self.spacy_model, str) or not self.spacy_model.strip():
            raise UserError("spacy_model must name an installed spaCy pipeline, e.g. en_core_web_sm")


# ---------------------------------------------------------------------------------------------- words
def merge_pieces(tokens: list[str], values: list[float], merge: str = "max") -> list[tuple[str, float]]:
    """Sub-word pieces and their values -> ``[(word, value)]`` in order (see the module doc)."""
    if merge not in MERGES:
        raise UserError(f"unknown merge '{merge}'; available: {', '.join(MERGES)}")
    if len(tokens) != len(values):
        raise ValueError(f"{len(tokens)} tokens but {len(values)} values")
    pieces = any(t.startswith(WORD_START) for t in tokens)
    words: list[tuple[str, list[float]]] = []
    for token, value in zip(tokens, values):
        if token in SPECIAL:
            continue
        if not pieces or token.startswith(WORD_START) or not words:
            words.append((token.removeprefix(WORD_START) if pieces else token, [float(value)]))
        else:
            text, vals = words[-1]
            words[-1] = (text + token, vals + [float(value)])
    reduce = max if merge == "max" else (lambda v: sum(v) / len(v))
    return [(w, reduce(v)) for w, v in words if w]


def normalize(word: str) -> str:
    """Lower case, surrounding punctuation stripped ('Dog,' -> 'dog'); '' for pure punctuation."""
    return word.lower().strip(string.punctuation + "“”‘’…")


def word_tags(nlp, words: list[str]) -> list[str]:
    """One POS tag per whitespace word of ``' '.join(words)``: the tag of its first non-punctuation
    spaCy token (spaCy may split a word, e.g. "dog's" -> 'dog', "'s"), else PUNCT."""
    return tags_from_doc(nlp(" ".join(words)), words)


def tags_from_doc(doc, words: list[str]) -> list[str]:
    starts, pos = [], 0
    for w in words:
        starts.append(pos)
        pos += len(w) + 1
    tags: list[str | None] = [None] * len(words)
    fallback: list[str | None] = [None] * len(words)
    w = 0
    for token in doc:
        while w + 1 < len(words) and token.idx >= starts[w + 1]:
            w += 1
        if fallback[w] is None:
            fallback[w] = token.pos_
        if tags[w] is None and token.pos_ not in ("PUNCT", "SPACE"):
            tags[w] = token.pos_
    return [t or f or "X" for t, f in zip(tags, fallback)]


def load_spacy(name: str = "en_core_web_sm"):
    import spacy
    try:
        return spacy.load(name, disable=["ner", "lemmatizer"])
    except OSError as error:
        raise UserError(f"spaCy pipeline '{name}' is not installed; install it with the project's set-up "
                        "(scripts/setup.sh installs en_core_web_sm from the package registry)") from error


# ---------------------------------------------------------------------------------------------- ranking
def rank_words(explanations, nlp, merge: str = "max", min_count: int = 10) -> tuple[list[dict], dict]:
    """Per-word statistics over `explanations`: rows sorted by mean importance (most important first), and
    the mean importance per POS tag over every word occurrence."""
    values: dict[str, list[float]] = defaultdict(list)
    tags: dict[str, Counter] = defaultdict(Counter)
    by_pos: dict[str, list[float]] = defaultdict(list)
    merged = [merge_pieces(e.tokens, e.audio_level().tolist(), merge) for e in explanations]
    docs = nlp.pipe([" ".join(w for w, _ in m) for m in merged], batch_size=64)
    for words, doc in zip(merged, docs):
        pos = tags_from_doc(doc, [w for w, _ in words])
        for (raw, value), tag in zip(words, pos):
            word = normalize(raw)
            if not word:
                continue
            values[word].append(value)
            tags[word][tag] += 1
            by_pos[tag].append(value)
    rows = [{"word": w, "importance": sum(v) / len(v), "count": len(v), "pos": tags[w].most_common(1)[0][0]}
            for w, v in values.items() if len(v) >= min_count and len(w) > 1]
    rows.sort(key=lambda r: (-r["importance"], r["word"]))
    pos_means = {t: (sum(v) / len(v), len(v)) for t, v in by_pos.items()}
    return rows, pos_means


def word_cloud(weights: dict[str, float], path: Path, colormap: str) -> None:
    from wordcloud import WordCloud
    cloud = WordCloud(width=900, height=450, background_color="white", colormap=colormap, random_state=0,
                      prefer_horizontal=1.0).generate_from_frequencies({w: max(v, 1e-6) for w, v in weights.items()})
    cloud.to_file(str(path))


def bar_chart(means: dict[str, tuple[float, int]], path: Path, title: str, xlabel: str) -> None:
    items = sorted(means.items(), key=lambda kv: -kv[1][0])
    fig, ax = plt.subplots(figsize=(max(5.5, 0.6 * len(items) + 1.5), 3.4))
    ax.bar(range(len(items)), [m for _, (m, _) in items], color="#3b6ea8")
    ax.set_xticks(range(len(items)), [f"{k}\n(n={n})" for k, (_, n) in items], fontsize=8)
    ax.set_ylabel("mean audio-level importance")
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10)
    save_figure(fig, path)


def run(config: TokenRankingConfig) -> dict:
    prompts, saved = analysis_prompts(config, config.split), saved_explanations(config)  # before the model loads
    nlp = load_spacy(config.spacy_model)
    tag = None if saved is not None else load_tag(config.model)
    out = setup(config)
    explanations = explanations_or_explain(tag, prompts, config, saved)
    rows, pos_means = rank_words(explanations, nlp, config.merge, config.min_count)
    if not rows:
        raise UserError(f"no word is seen {config.min_count} times in {len(explanations)} prompts; "
                        "give more prompts or lower --min_count")
    world = config.model.name in ("toysounds", "debug") and not config.prompts_file and not config.prompts
    if world:
        for r in rows:
            r["role"] = role(r["word"])
    top, bottom = rows[:config.top], rows[::-1][:config.top]
    md_top = write_table(top, out, "top_words")
    md_bottom = write_table(bottom, out, "bottom_words")
    write_table(rows, out, "all_words")
    word_cloud({r["word"]: r["importance"] for r in top}, out / "wordcloud_high.png", "viridis")
    high = max(r["importance"] for r in rows)
    word_cloud({r["word"]: high - r["importance"] + 1e-3 for r in bottom}, out / "wordcloud_low.png", "magma")
    bar_chart(pos_means, out / "pos_importance.png", "mean importance per POS tag (all word occurrences)", "POS")
    pos_rows = [{"pos": k, "importance": m, "count": n} for k, (m, n) in sorted(pos_means.items(), key=lambda kv: -kv[1][0])]
    md_pos = write_table(pos_rows, out, "pos_importance")
    role_md = ""
    summary = {"analysis": "token_ranking", "prompts": len(explanations), "words_ranked": len(rows),
               "merge": config.merge, "min_count": config.min_count, "method": explanations[0].method,
               "top": [(r["word"], r["pos"], round(r["importance"], 4)) for r in rows[:10]],
               "bottom": [(r["word"], r["pos"], round(r["importance"], 4)) for r in rows[::-1][:10]],
               "pos_means": {k: round(m, 4) for k, (m, _) in pos_means.items()}}
    if world:
        roles: dict[str, list[float]] = defaultdict(list)
        for r in rows:
            roles[r["role"]].append(r["importance"])
        role_means = {k: (sum(v) / len(v), len(v)) for k, v in roles.items()}
        bar_chart(role_means, out / "role_importance.png", "mean importance per ground-truth role",
                  "role (n = distinct words)")
        role_md = write_table([{"role": k, "importance": m, "words": n} for k, (m, n) in
                               sorted(role_means.items(), key=lambda kv: -kv[1][0])], out, "role_importance")
        summary["role_means"] = {k: round(m, 4) for k, (m, _) in role_means.items()}
    text = [f"# Token ranking ({explanations[0].method}, {len(explanations)} prompts)\n",
            f"Words seen at least {config.min_count} times and longer than one character ({len(rows)} words); "
            f"word importance = {config.merge} over its sub-word pieces, averaged over occurrences.\n",
            f"## Top {len(top)}\n", md_top, f"\n## Bottom {len(bottom)}\n", md_bottom,
            "\n## Mean importance per POS tag\n", md_pos, "\n![POS](pos_importance.png)\n"]
    if role_md:
        text += ["\n## Mean importance per ground-truth role (embedded world)\n", role_md, "\n![roles](role_importance.png)\n"]
    text += ["\n## Word clouds (left: high importance, right: low importance)\n",
             "![high](wordcloud_high.png)\n![low](wordcloud_low.png)\n"]
    return write_summary(out, summary, "\n".join(text))


main = command(TokenRankingConfig, run)


if __name__ == "__main__":
    main()
