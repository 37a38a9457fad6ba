"""``python -m lightning_agx.toyworld.build``: see the package docstring."""
from lightning_agx.toyworld.build import main

main()
