"""Procedural synthesisers for the ten ToySounds events (16 kHz, numpy only).

Every synthesiser has the signature ``synth(rng, n, pitch=1.0) -> float64[n]``: it fills ``n`` samples
with its event (random timing, pitch within a range and texture drawn from ``rng``). ``pitch`` is the
"high"/"low" modifier's frequency factor (only tonal events use it). Levels are set afterwards by
:func:`render_event`, which scales the event to a target RMS in dBFS.
"""
from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16000
EVENTS = ("beep", "buzz", "chirp", "click", "hiss", "rumble", "whistle", "knock", "siren", "drip")
TONAL_EVENTS = ("beep", "buzz", "chirp", "whistle", "siren", "drip")
PITCH_FACTOR = {"high": 1.6, "low": 0.6, None: 1.0}  # "high"/"low" shift tonal events by ~ +8 / -9 semitones
LEVEL_DB = {"loud": 10.0, "quiet": -10.0, None: 0.0}  # relative to the base level
BASE_LEVEL_DBFS = -22.0  # RMS of an unmodified event over its active region (+- 2 dB random)


def _t(n: int) -> np.ndarray:
    return np.arange(n) / SAMPLE_RATE


def _bandpass_noise(rng: np.random.Generator, n: int, lo: float, hi: float) -> np.ndarray:
    """White noise keeping only the rfft bins in [lo, hi) Hz."""
    spec = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE)
    spec[(freqs < lo) | (freqs >= hi)] = 0.0
    return np.fft.irfft(spec, n)


def _impulses(rng: np.random.Generator, n: int, times: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Place ``kernel`` at each sample index in ``times`` (truncated at the end)."""
    out = np.zeros(n + len(kernel))
    for t0 in times.astype(int):
        out[t0:t0 + len(kernel)] += kernel
    return out[:n]


def beep(rng, n, pitch=1.0):
    f = 1000.0 * pitch * rng.uniform(0.9, 1.1)
    period = rng.uniform(0.25, 0.4)
    dur = rng.uniform(0.08, 0.15)
    t = _t(n)
    phase = (t - rng.uniform(0, 0.05)) % period
    gate = (phase < dur) & (t >= 0)
    ramp = np.clip(np.minimum(phase, dur - phase) / 0.005, 0, 1)  # 5 ms fades, no clicks
    return np.sin(2 * np.pi * f * t) * gate * ramp


def buzz(rng, n, pitch=1.0):
    f = 120.0 * pitch * rng.uniform(0.9, 1.1)
    t = _t(n)
    saw = 2.0 * ((f * t + rng.uniform()) % 1.0) - 1.0
    return saw * (1.0 + 0.1 * np.sin(2 * np.pi * rng.uniform(3, 6) * t))


def chirp(rng, n, pitch=1.0):
    f0 = 500.0 * pitch * rng.uniform(0.9, 1.1)
    f1 = f0 * rng.uniform(3.0, 4.0)
    sweep = rng.uniform(0.3, 0.5)
    t = _t(n)
    u = (t % sweep) / sweep  # position inside the current sweep, 0 -> 1
    inst_f = f0 * (f1 / f0) ** u  # exponential rise
    phase = 2 * np.pi * np.cumsum(inst_f) / SAMPLE_RATE
    env = np.clip(np.minimum(u, 1 - u) * sweep / 0.01, 0, 1)
    return np.sin(phase) * env


def click(rng, n, pitch=1.0):
    rate = rng.uniform(8.0, 14.0)
    times = np.arange(rng.uniform(0, 1 / rate), n / SAMPLE_RATE, 1 / rate) * SAMPLE_RATE
    k = int(0.003 * SAMPLE_RATE)
    kernel = rng.standard_normal(k) * np.exp(-np.arange(k) / (0.0006 * SAMPLE_RATE))
    return _impulses(rng, n, times, kernel)


def hiss(rng, n, pitch=1.0):
    return _bandpass_noise(rng, n, rng.uniform(4000, 5000), 8000)


def rumble(rng, n, pitch=1.0):
    x = _bandpass_noise(rng, n, 20, rng.uniform(120, 180))
    return x * (1.0 + 0.3 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * _t(n)))


def whistle(rng, n, pitch=1.0):
    f = 2500.0 * pitch * rng.uniform(0.9, 1.1)
    t = _t(n)
    inst_f = f * (1.0 + 0.03 * np.sin(2 * np.pi * rng.uniform(5, 7) * t))
    return np.sin(2 * np.pi * np.cumsum(inst_f) / SAMPLE_RATE)


def knock(rng, n, pitch=1.0):
    gap = rng.uniform(0.18, 0.3)
    times = np.arange(rng.uniform(0, 0.05), n / SAMPLE_RATE, gap) * SAMPLE_RATE
    k = int(0.12 * SAMPLE_RATE)
    tk = np.arange(k) / SAMPLE_RATE
    f = rng.uniform(90, 130)
    kernel = (np.sin(2 * np.pi * f * tk) + 0.3 * rng.standard_normal(k) * np.exp(-tk / 0.005)) * np.exp(-tk / 0.03)
    return _impulses(rng, n, times, kernel)


def siren(rng, n, pitch=1.0):
    f_lo = 600.0 * pitch * rng.uniform(0.9, 1.1)
    f_hi = f_lo * rng.uniform(1.3, 1.45)
    half = rng.uniform(0.25, 0.4)
    t = _t(n)
    inst_f = np.where((t // half) % 2 == 0, f_lo, f_hi)
    return np.sin(2 * np.pi * np.cumsum(inst_f) / SAMPLE_RATE)


def drip(rng, n, pitch=1.0):
    dur_s = n / SAMPLE_RATE
    n_drips = max(2, rng.poisson(5.0 * dur_s))
    times = np.sort(rng.uniform(0, max(dur_s - 0.05, 0.01), n_drips)) * SAMPLE_RATE
    k = int(0.06 * SAMPLE_RATE)
    tk = np.arange(k) / SAMPLE_RATE
    f0 = 800.0 * pitch * rng.uniform(0.9, 1.1)
    inst_f = f0 * (1.0 + 0.8 * tk / tk[-1])  # the "plop": pitch rises while it decays
    kernel = np.sin(2 * np.pi * np.cumsum(inst_f) / SAMPLE_RATE) * np.exp(-tk / 0.015)
    return _impulses(rng, n, times, kernel)


SYNTHS = {name: globals()[name] for name in EVENTS}


def render_event(rng: np.random.Generator, event: str, n_total: int, start: int, stop: int,
                 pitch: str | None = None, level: str | None = None) -> np.ndarray:
    """The event ``event`` active in samples [start, stop) of a clip of ``n_total`` samples.

    ``pitch`` in {None, "high", "low"} (ignored by non-tonal events), ``level`` in {None, "loud", "quiet"}.
    Returns float64[n_total], zero outside [start, stop), RMS over the region = base level + modifier.
    """
    if event not in SYNTHS:
        raise ValueError(f"unknown event {event!r}; available: {', '.join(EVENTS)}")
    factor = PITCH_FACTOR[pitch] if event in TONAL_EVENTS else 1.0
    seg = SYNTHS[event](rng, stop - start, factor)
    fade = min(int(0.01 * SAMPLE_RATE), len(seg) // 2)  # 10 ms fades at the region edges
    if fade > 0:
        ramp = np.linspace(0.0, 1.0, fade)
        seg[:fade] *= ramp
        seg[-fade:] *= ramp[::-1]
    target_db = BASE_LEVEL_DBFS + rng.uniform(-2.0, 2.0) + LEVEL_DB[level]
    rms = np.sqrt(np.mean(seg ** 2)) + 1e-12
    out = np.zeros(n_total)
    out[start:stop] = seg * (10 ** (target_db / 20) / rms)
    return out
