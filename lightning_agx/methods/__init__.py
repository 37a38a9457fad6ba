"""Explanation methods behind one interface: `Method` classes by name (``make_method(name, options).run(tag,
generation, seeds) -> [B, T, N]``)."""
from .base import Method
from .registry import (METHODS, available_methods, check_method_options, check_methods, get_method, make_method,
                       options_class, run_method)

__all__ = ["METHODS", "Method", "available_methods", "check_method_options", "check_methods", "get_method",
           "make_method", "options_class", "run_method"]
