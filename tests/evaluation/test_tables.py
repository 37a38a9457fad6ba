"""Table 1's summary cells: means with standard errors, and the paired differences against the Ori floor."""
import math

import pytest

from lightning_agx.evaluation.tables import TABLE1, paired_with_ori, summarise


def test_paired_difference_against_ori_cancels_the_prompt_spread():
    """Two prompts far apart (an easy and a hard one): FidF's own standard error is large, but the method is
    0.02 above Ori on both, so FidF-Ori is 0.02 with no spread."""
    ori = [{"fid_f": 0.1, "kl_f": 1.0}, {"fid_f": 0.9, "kl_f": 5.0}]
    method = [{"fid_f": 0.12, "kl_f": 1.5, "size": 0.3}, {"fid_f": 0.92, "kl_f": 5.5, "size": 0.4}]
    rows = summarise({"ori": ori, "m": [paired_with_ori(r, o) for r, o in zip(method, ori)]}, TABLE1)
    ori_row, row = rows
    assert row["FidF"] == pytest.approx(0.52) and row["FidF_se"] == pytest.approx(0.4)
    assert row["FidF-Ori"] == pytest.approx(0.02) and row["FidF-Ori_se"] == pytest.approx(0.0, abs=1e-12)
    assert row["KLF-Ori"] == pytest.approx(0.5)
    assert math.isnan(ori_row["FidF-Ori"]) and ori_row["n"] == 2
    assert paired_with_ori(method[0], None) == method[0], "a prompt without its Ori values stays unpaired"
