"""A method's options, checked before any work: each method class declares ``Options``, a dataclass of its
keyword options whose ``__post_init__`` checks their values (one-line `UserError`); a key it does not declare
is refused, with the method's options listed. A method that reads the explainer config (`ExplainerConfig`:
AudioGenX per prompt and amortised) also accepts that key."""
from __future__ import annotations

from dataclasses import dataclass, fields

from ..errors import UserError


@dataclass
class NoOptions:
    """The options of a method that has none."""


def option_names(options_class) -> list[str]:
    return [f.name for f in fields(options_class) if f.init and f.name not in getattr(options_class, "FIXED", ())]


def check_options(method: str, takes_config: bool, options_class, options: dict | None) -> dict:
    """`options` of `method` checked against its `options_class` (unknown keys refused, values by the class's
    own rules) and, where it `takes_config`, its ``config``; returns them as given (a dict)."""
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise UserError(f"options of method '{method}' must be a mapping of option names to values; "
                        f"got {type(options).__name__}")
    options = dict(options)
    config = options.pop("config", None) if takes_config else None
    allowed = option_names(options_class)
    unknown = sorted(str(k) for k in options if k not in allowed)
    if unknown:
        known = ", ".join(allowed + (["config"] if takes_config else [])) or "none"
        raise UserError(f"method '{method}' has no option {', '.join(unknown)}; its options: {known}")
    options_class(**options)  # each value checked by the class (one-line UserError)
    if config is not None:
        from ..explainer import ExplainerConfig
        if isinstance(config, dict):
            config = _explainer_config(method, config)
        elif not isinstance(config, ExplainerConfig):
            raise UserError(f"option config of method '{method}' must be an ExplainerConfig or a mapping of its "
                            f"fields; got {type(config).__name__}")
        options["config"] = config
    return options


def _explainer_config(method: str, values: dict):
    from ..explainer import ExplainerConfig
    allowed = [f.name for f in fields(ExplainerConfig)]
    unknown = sorted(str(k) for k in values if k not in allowed)
    if unknown:
        raise UserError(f"config of method '{method}' has no field {', '.join(unknown)}; its fields: "
                        f"{', '.join(allowed)}")
    return ExplainerConfig(**values)


__all__ = ["NoOptions", "check_options", "option_names"]
