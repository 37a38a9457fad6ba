"""Run configuration: defaults here, YAML files say what differs, the command line overrides both."""
from __future__ import annotations

from dataclasses import dataclass, field

from .explainer import ExplainerConfig


@dataclass
class ModelConfig:
    name: str = "toysounds"  # toysounds | debug | facebook/audiogen-medium | facebook/musicgen-* | local folder
    duration: float | None = None  # seconds of audio to generate; None: the model's default
    device: str = "auto"  # where the model is loaded before Lightning moves it (auto: cuda when present)
    top_k: int = 250  # sampling of the generated audio (METHOD.md)
    temperature: float = 1.0
    cfg_coef: float = 3.0

    def generation(self) -> dict:
        return {"top_k": self.top_k, "temp": self.temperature, "cfg_coef": self.cfg_coef}


@dataclass
class PromptsConfig:
    file: str | None = None  # .txt (one prompt per line) or .csv (caption/prompt/text/description column)
    texts: list[str] = field(default_factory=list)  # prompts given on the command line
    batch_size: int = 8  # prompts explained at once per device


@dataclass
class TrainerConfig:
    accelerator: str = "auto"
    devices: int | str = 1
    num_nodes: int = 1
    strategy: str = "auto"  # 'ddp' splits prompts across devices
    precision: str = "32-true"


@dataclass
class LoggerConfig:
    wandb: bool = True
    offline: bool = True  # W&B stays offline unless asked: `wandb sync` the run folder later
    project: str = "lightning_agx"
    name: str | None = None


@dataclass
class RunConfig:
    task: str = "explain"
    seed: int = 0
    output_dir: str = "outputs/explain"
    figures: bool = True  # heatmap.png and bars.png next to each explanation
    save_audio: bool = True  # audio.wav and the waveform in the safetensors file
    model: ModelConfig = field(default_factory=ModelConfig)
    prompts: PromptsConfig = field(default_factory=PromptsConfig)
    explainer: ExplainerConfig = field(default_factory=ExplainerConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
