"""The interactive explorer: type a prompt, hear it, see and edit what each word did.

    python -m lightning_agx.app [--model toysounds] [--method NAME] [--port 7860] [--listen 127.0.0.1] [--share]

`Explorer` (`explorer.py`) does the work and is usable without a page; `build_app` (`ui.py`) is the Gradio page
over it; `main` (`__main__.py`) is the command line. Everything loads on first use, so the command line
answers a bad option before torch and Gradio load.
"""
__all__ = ["Edit", "Explorer", "Result", "build_app", "launch", "main"]


def __getattr__(name):
    if name in ("Edit", "Explorer", "Result"):
        from . import explorer
        return getattr(explorer, name)
    if name in ("build_app", "launch"):  # gradio loads only when the page is asked for
        from . import ui
        return getattr(ui, name)
    if name == "main":
        from .__main__ import main
        return main
    raise AttributeError(name)
