"""Lightning callbacks of an explanation run: write results as they finish, show prompts and epochs."""
from __future__ import annotations

from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.loggers import WandbLogger

from .explanation import Explanation, prompt_folder_name, write_audio
from .figures import bars_figure, heatmap_figure, save_figures


class ExplanationWriter(L.Callback):
    """Saves each explanation (tensors, JSON, audio.wav, figures) as soon as its chunk finishes, on the rank
    that computed it, and logs it to W&B (``index.json`` is the runner's: lightning_agx.resume.write_index)."""

    def __init__(self, output_dir: str | Path | None, figures: bool = True, audio: bool = True):
        self.output_dir = None if output_dir is None else Path(output_dir)
        self.extras = tuple(fn for fn, on in ((write_audio, audio), (save_figures, figures)) if on)
        self.kept: list[tuple[int, Explanation]] = []  # when no output folder is given
        self.logged: list[Explanation] = []  # explained in this fit, for the W&B table

    def folder(self, index: int, prompt: str) -> Path:
        return self.output_dir / prompt_folder_name(index, prompt)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        for index, explanation in pl_module.pop_finished():
            if self.output_dir is None:
                self.kept.append((index, explanation))
            else:
                explanation.save(self.folder(index, explanation.prompt), self.extras)
            self._log(trainer, index, explanation)

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self.on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)  # a one-pass method's chunk

    def on_predict_end(self, trainer, pl_module) -> None:
        self.on_fit_end(trainer, pl_module)

    def on_fit_end(self, trainer, pl_module) -> None:
        trainer.strategy.barrier("explanations-written")
        logger = _wandb(trainer)
        if logger is not None and self.logged:
            rows = [[e.prompt, t, round(float(v), 4)] for e in self.logged for t, v in zip(e.tokens, e.audio_level())]
            logger.log_table("audio_level_importance", columns=["prompt", "token", "importance"], data=rows)

    def _log(self, trainer, index: int, explanation: Explanation) -> None:
        logger = _wandb(trainer)
        if logger is None:
            return
        self.logged.append(explanation)
        import matplotlib.pyplot as plt
        import wandb

        for name, make in (("heatmap", heatmap_figure), ("audio_level", bars_figure)):
            fig = make(explanation)
            logger.log_image(f"{name}/{index:04d}", images=[fig], caption=[explanation.prompt])
            plt.close(fig)
        if explanation.audio is not None:
            logger.experiment.log({f"audio/{index:04d}": wandb.Audio(
                explanation.audio.float().mean(0).numpy(), sample_rate=explanation.sample_rate,
                caption=explanation.prompt)})


def _wandb(trainer) -> WandbLogger | None:
    if trainer.global_rank != 0:
        return None
    return next((lg for lg in trainer.loggers if isinstance(lg, WandbLogger)), None)


class ExplanationProgressBar(TQDMProgressBar):
    """The training bar shows how many prompts are explained and the epoch within the current chunk."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        chunk, epoch = (int(x) for x in batch)
        chunks = pl_module.chunks
        steps = pl_module.steps_per_chunk
        done = sum(len(s) for c in chunks[:chunk + (epoch == steps - 1)] for s in c)
        self.train_progress_bar.set_description(
            f"prompts {done}/{pl_module.num_prompts_todo} | step {epoch + 1}/{steps}")

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        super().on_predict_batch_end(trainer, pl_module, outputs, batch, batch_idx, dataloader_idx)
        chunk = int(batch[0])
        done = sum(len(s) for c in pl_module.chunks[:chunk + 1] for s in c)
        self.predict_progress_bar.set_description(f"prompts {done}/{pl_module.num_prompts_todo}")
