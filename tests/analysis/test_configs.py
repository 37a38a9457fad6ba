"""Every analysis YAML parses into its dataclass; the command line overrides the YAML."""
import argparse
from pathlib import Path

import pytest

from lightning_agx.config import parse as parse_config
from analysis.editing import EditingConfig
from analysis.negation import NegationConfig
from analysis.report import ReportConfig
from analysis.sanity import SanityConfig
from analysis.token_ranking import TokenRankingConfig
from analysis.difference import DifferenceConfig

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.mark.parametrize("name, cls", [("analysis_token_ranking", TokenRankingConfig), ("analysis_negation", NegationConfig),
                                       ("analysis_sanity", SanityConfig), ("analysis_editing", EditingConfig),
                                       ("analysis_difference", DifferenceConfig), ("report_toysounds", ReportConfig)])
def test_yaml_parses_and_cli_overrides(name, cls):
    config = parse_config(cls, ["--config", str(CONFIGS / f"{name}.yaml"), "--model.name", "debug",
                                "--explainer.epochs", "3", "--seed", "7"])
    assert isinstance(config, cls)
    assert config.model.name == "debug" and config.explainer.epochs == 3 and config.seed == 7
    assert config.output_dir.startswith("outputs/")
    assert type(config.explainer).__name__ == "ExplainerConfig"  # nested sections become dataclasses


def test_unknown_key_is_rejected():
    with pytest.raises(argparse.ArgumentError, match="unrecognized arguments: --min_cnt"):  # the door's one line
        parse_config(TokenRankingConfig, ["--min_cnt", "3"])
