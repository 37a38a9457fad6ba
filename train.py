"""Entry point: ``python train.py --config configs/NAME.yaml [--section.key value ...]``.

Composes the run from the dataclasses in lightning_agx/config.py (defaults), the YAML file (what differs)
and command-line overrides, then runs the task named by ``task``.
"""
from lightning_agx.cli import main

if __name__ == "__main__":
    main()
