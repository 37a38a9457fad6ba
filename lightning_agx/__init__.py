"""lightning_agx: explain text-to-audio generative models (AudioGenX) with PyTorch Lightning."""
__version__ = "0.1.0"
