"""Explanation methods behind one interface: ``get_method(name)(tag, generation, seed=0, **options) -> [B, T, N]``."""
from .registry import (METHODS, available_methods, check_method_options, check_methods, get_method, is_audiogenx,
                       options_class, run_method)

__all__ = ["METHODS", "available_methods", "check_method_options", "check_methods", "get_method", "is_audiogenx",
           "options_class", "run_method"]
