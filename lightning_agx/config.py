"""Run configuration: defaults here, YAML files say what differs, the command line overrides both."""
from __future__ import annotations

from dataclasses import dataclass, field

from .errors import UserError
from .explainer import ExplainerConfig
from .inputs import check_batch_size, check_duration_value


@dataclass
class ModelConfig:
    name: str = "toysounds"  # toysounds | debug | facebook/audiogen-medium | facebook/musicgen-* | local folder
    duration: float | None = None  # seconds of audio to generate; None: the model's default
    device: str = "auto"  # where the model is loaded before Lightning moves it (auto: cuda when present)
    top_k: int = 250  # sampling of the generated audio (the paper's setting)
    temperature: float = 1.0
    cfg_coef: float = 3.0

    def __post_init__(self) -> None:
        check_duration_value(self.duration)
        if self.top_k < 0 or self.temperature < 0:
            raise UserError(f"model.top_k and model.temperature must be >= 0; got {self.top_k}, {self.temperature}")

    def generation(self) -> dict:
        return {"top_k": self.top_k, "temp": self.temperature, "cfg_coef": self.cfg_coef}

    def load(self):
        """The TAG model this section names, on its device (auto: cuda when present), frozen."""
        import torch

        from .models import load_model
        device = self.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        return load_model(self.name, device=device, duration=self.duration)


@dataclass
class PromptsConfig:
    file: str | None = None  # .txt (one prompt per line) or .csv (caption/prompt/text/description column)
    texts: list[str] = field(default_factory=list)  # prompts given on the command line
    batch_size: int = 8  # prompts explained at once per device (results do not depend on it)

    def __post_init__(self) -> None:
        check_batch_size(self.batch_size)


@dataclass
class TrainerConfig:
    accelerator: str = "auto"
    devices: int | str = 1
    num_nodes: int = 1
    strategy: str = "auto"  # 'ddp' splits prompts across devices
    precision: str = "32-true"
    progress_bar: bool = True


@dataclass
class LoggerConfig:
    wandb: bool = True
    offline: bool = True  # W&B stays offline unless asked: `wandb sync` the run folder later
    project: str = "lightning_agx"
    name: str | None = None


@dataclass
class EvaluationConfig:
    """The faithfulness evaluation (task 'evaluate', lightning_agx/evaluation): the paper's Eq. 8-12."""

    methods: list[str] = field(default_factory=lambda: [
        "audiogenx", "audiogenx_factual", "audiogenx_counterfactual", "random", "gradcam_a", "gradcam_e",
        "atman", "chefer", "attention"])
    method_options: dict = field(default_factory=dict)  # per method name, keyword options (e.g. atman: {chunk: 64})
    classifier: str = "toysounds"  # toysounds | passt
    heldout_prompts: int = 40  # with no prompt file/texts and the toysounds model: this many held-out prompts
    repeats: int = 3  # factual and counterfactual generations per prompt and method
    ori_repeats: int = 5  # unmasked regenerations for the "Ori" lower bound
    kl_direction: str = "authors"  # authors: KL(p(x') || p(x)); forward: KL(p(x) || p(x'))


@dataclass
class RunConfig:
    task: str = "explain"
    seed: int = 0  # the run's seed; prompt i gets its own seed from it and i (lightning_agx.seeding)
    output_dir: str = "outputs/explain"
    overwrite: bool = False  # replace results of another run identity in output_dir (else the run stops)
    figures: bool = True  # heatmap.png and bars.png next to each explanation
    save_audio: bool = True  # audio.wav and the waveform in the safetensors file
    model: ModelConfig = field(default_factory=ModelConfig)
    prompts: PromptsConfig = field(default_factory=PromptsConfig)
    explainer: ExplainerConfig = field(default_factory=ExplainerConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
