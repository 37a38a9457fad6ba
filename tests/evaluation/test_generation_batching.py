"""The evaluation's regenerations are batched into one generate call each, and every row is what it was alone."""
import json

import torch
from safetensors.torch import load_file

from lightning_agx.classifiers import DebugClassifier
from lightning_agx.evaluation import evaluate
from lightning_agx.evaluation.run import ORI_OFFSET, original_and_ori
from lightning_agx.metrics.functional import fidelity, kl
from lightning_agx.seeding import derived_seeds, prompt_seed

PROMPTS = ["a dog barks loudly near a river", "rain"]  # of different lengths: padding in the batch


def test_original_and_ori_in_one_call_equal_separate_calls(debug_tag):
    seeds, repeats = [11, 12], 3
    original, ori_codes = original_and_ori(debug_tag, PROMPTS, seeds, None, {}, repeats)
    alone = debug_tag.generate(PROMPTS, seed=seeds)  # how x was made before: a call of its own
    assert torch.equal(original.codes, alone.codes) and original.text.tokens == alone.text.tokens
    for r in range(repeats):  # and each Ori regeneration in a call of its own
        ori = debug_tag.generate(PROMPTS, seed=derived_seeds(seeds, ORI_OFFSET + r))
        assert torch.equal(ori_codes[r * 2:(r + 1) * 2], ori.codes)
    assert not torch.equal(ori_codes[:2], original.codes)  # the Ori rows are other samples


def test_the_evaluation_stores_what_separate_calls_give(tmp_path, debug_tag):
    classifier = DebugClassifier()
    evaluate(debug_tag, PROMPTS, classifier, tmp_path, methods=["random"], batch_size=2, repeats=1, ori_repeats=2)
    seeds = [prompt_seed(0, i) for i in range(2)]
    original = debug_tag.generate(PROMPTS, seed=seeds)
    ori = [debug_tag.generate(PROMPTS, seed=derived_seeds(seeds, ORI_OFFSET + r)) for r in range(2)]

    def logits(codes):
        wav = debug_tag.decode(codes)[:, 0]
        return classifier.logits(wav, debug_tag.sample_rate).float()

    x = logits(original.codes)
    ori_logits = torch.stack([logits(o.codes) for o in ori], dim=1)  # [b, R, C]
    fid_f, kl_f = fidelity(x, ori_logits), kl(x, ori_logits, direction="authors")
    for j, folder in enumerate(sorted((tmp_path / "prompts").iterdir())):
        assert torch.equal(load_file(str(folder / "original.safetensors"))["codes"], original.codes[j])
        info = json.loads((folder / "original.json").read_text())
        assert abs(info["ori"]["fid_f"] - float(fid_f[j])) < 1e-6 and abs(info["ori"]["kl_f"] - float(kl_f[j])) < 1e-5
