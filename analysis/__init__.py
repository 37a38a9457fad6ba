"""The paper's analyses on top of explanations: token ranking, negation, sanity check, editing (Eq. 15),
differences in words, and the self-contained HTML report. Each is ``python -m analysis.<name> --config ...``."""
