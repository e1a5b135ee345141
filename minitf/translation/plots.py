"""Pictures of a run and of a model: learning curves (`minitf plot`) and cross-attention heatmaps
(`minitf translate --attention-png`).

Reading a run's log (read_curves) and computing attention (attention_maps) need only NumPy;
drawing needs matplotlib, the `plot` extra, imported only when a picture is drawn (with the
object-oriented Figure, never pyplot, so that no global backend or state is touched).
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..atomic_file import atomic_write
from ..errors import ConfigError, InputError, UserError
from .decode import _host, _inference, _on_model_device, length_limits, translate_ids
from .run import LOG_NAME

__all__ = ["Curves", "read_curves", "plot_curves", "AttentionMap", "cross_attention", "attention_maps",
           "draw_attention", "check_png_output", "prepare_attention_dir", "write_attention_pngs",
           "MatplotlibMissing", "METRICS"]

PLOT_EXTRA = 'pip install "minitf[plot]"'
METRICS = {"bleu": "BLEU", "chrf": "chrF", "exact_match": "exact match (%)"}
"""The validation metrics of an evaluation record, and their names in the pictures (0-100 scale)."""


class MatplotlibMissing(UserError, ImportError):
    """Drawing was asked for, but matplotlib (the `plot` extra) is not installed."""


def _figure_class(what: str) -> Any:
    """matplotlib's Figure class; MatplotlibMissing naming `what` needs it and how to install it."""
    try:
        from matplotlib.figure import Figure  # noqa: PLC0415 (an optional dependency)
    except ImportError:
        raise MatplotlibMissing(f"{what} needs matplotlib, which is not installed: {PLOT_EXTRA}") from None
    return Figure


def check_png_output(path: str | os.PathLike, flag: str) -> Path:
    """`path` as a Path if a PNG can be written there; ConfigError naming `flag` if it does not end
    in .png, is a folder, or its folder does not exist."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ConfigError(f"{flag} {path}: the picture is written as PNG; give a file name ending in .png")
    if path.is_dir():
        raise ConfigError(f"{flag} {path} is a folder; give a file name ending in .png")
    if not path.parent.is_dir():
        raise ConfigError(f"{flag} {path}: folder {path.parent} does not exist")
    return path


def _printable(text: str) -> str:
    """`text` on one line: line breaks, tabs and other control characters escaped (\\n, \\t, \\x1b)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _shorten(text: str, limit: int = 90) -> str:
    """_printable(`text`), cut to `limit` characters."""
    text = _printable(text)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _save_png(figure: Any, path: Path, dpi: int) -> Path:
    return atomic_write(path, lambda tmp: figure.savefig(tmp, format="png", dpi=dpi))


# ---- learning curves ------------------------------------------------------------------------

@dataclass
class Curves:
    """The learning curves in a run's log: training records by step, evaluation records by step
    (each sorted by step; a step logged twice, as a resumed run replays the steps after its last
    checkpoint, counts once, with its latest record)."""
    run: str
    steps: list[int] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    lrs: list[float] = field(default_factory=list)
    evals: list[dict[str, float]] = field(default_factory=list)
    """epoch, step, val_loss, and where logged train_seconds and the METRICS."""

    def series(self, key: str, by: str) -> tuple[list[float], list[float]]:
        """(x, y) of evaluation value `key` against `by` (epoch, step, train_seconds), where both are logged."""
        pairs = [(e[by], e[key]) for e in self.evals if by in e and key in e]
        return [x for x, _ in pairs], [y for _, y in pairs]


_STEP_FIELDS = {"step": True, "epoch": True, "loss": True, "lr": False}
_EVAL_FIELDS = {"step": True, "epoch": True, "val_loss": True, "train_seconds": False} | dict.fromkeys(METRICS, False)


def read_curves(run_dir: str | os.PathLike) -> Curves:
    """The curves of the run in `run_dir` (its log.jsonl). InputError if the folder or its log is
    missing, the log holds no training step or evaluation, or a line is not a JSON object of the
    fields its event needs (finite numbers), naming the file and the line. Records of other events
    are skipped."""
    folder = Path(run_dir)
    if not folder.is_dir():
        raise InputError(f"run folder {run_dir} " + ("is not a folder" if folder.exists() else "does not exist"))
    log = folder / LOG_NAME
    if not log.is_file():
        raise InputError(f"{run_dir} holds no {LOG_NAME}: not a run folder of `minitf train` (give the --out-dir "
                         "of a run)")
    steps: dict[int, dict] = {}
    evals: dict[int, dict] = {}
    with open(log, "rb") as f:
        for number, raw in enumerate(f, 1):
            record = _record(log, number, raw)
            if record is None:
                continue
            event = record.get("event")
            if event in ("step", "eval"):
                kept = _fields(log, number, record, _STEP_FIELDS if event == "step" else _EVAL_FIELDS)
                (steps if event == "step" else evals)[int(kept["step"])] = kept
    if not steps and not evals:
        raise InputError(f"{log} holds no training step or evaluation yet: nothing to plot")
    curves = Curves(run=str(run_dir))
    for step in sorted(steps):
        curves.steps.append(step)
        curves.losses.append(steps[step]["loss"])
        curves.lrs.append(steps[step].get("lr", math.nan))
    curves.evals = [evals[step] for step in sorted(evals)]
    return curves


def _record(log: Path, number: int, raw: bytes) -> dict | None:
    """Line `number` of the log as a dict; None for a blank line."""
    where = f"{log}, line {number}"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise InputError(f"{where}: not UTF-8 text (byte 0x{raw[err.start]:02x}); the log is corrupt") from None
    if not text.strip():
        return None
    try:
        record = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise InputError(f"{where}: not valid JSON ({str(exc)[:120]}); the log is corrupt") from None
    if not isinstance(record, dict):
        raise InputError(f"{where}: expected a JSON object, got {type(record).__name__}; the log is corrupt")
    return record


def _fields(log: Path, number: int, record: dict, fields: dict[str, bool]) -> dict[str, float]:
    """The `fields` of a record (True: required) as finite numbers; InputError naming the line."""
    kept = {}
    for name, required in fields.items():
        value = record.get(name)
        if value is None:
            if required:
                raise InputError(f"{log}, line {number}: a {record['event']!r} record without {name!r}; "
                                 "the log is corrupt")
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise InputError(f"{log}, line {number}: {name} is {str(value)[:40]!r}, not a finite number; "
                             "the log is corrupt")
        kept[name] = value
    return kept


def _time_axis(seconds: list[float]) -> tuple[float, str]:
    """(divisor, unit) that shows training times up to max(seconds) readably."""
    longest = max(seconds, default=0.0)
    return (1.0, "s") if longest < 180 else (60.0, "min") if longest < 3 * 3600 else (3600.0, "h")


def plot_curves(curves: Curves, output: str | os.PathLike) -> Path:
    """Draw the curves into a PNG at `output` (four panels: loss by step, learning rate by step,
    the validation metrics by epoch and by training time); returns its path."""
    path = check_png_output(output, "--output")
    figure = _figure_class("minitf plot")(figsize=(12, 8), layout="constrained")
    loss, lr, by_epoch, by_time = figure.subplots(2, 2).flat
    figure.suptitle(f"Learning curves of the run in {_shorten(curves.run, 80)}", fontsize=14, parse_math=False)

    _line(loss, curves.steps, curves.losses, "-", color="tab:blue", lw=1, label="training batches (label-smoothed if set)")
    _line(loss, *curves.series("val_loss", "step"), "o-", color="tab:orange", ms=4, label="validation (cross-entropy)")
    values = [v for v in curves.losses + curves.series("val_loss", "step")[1] if v > 0]
    if values and max(values) / min(values) > 30:
        loss.set_yscale("log")
    _panel(loss, "Loss", "training step", "loss per target token (nats)")

    logged = [i for i, v in enumerate(curves.lrs) if math.isfinite(v)]  # (an old log may lack lr)
    _line(lr, [curves.steps[i] for i in logged], [curves.lrs[i] for i in logged], "-", color="tab:green")
    _panel(lr, "Learning rate", "training step", "learning rate", legend=False)

    divisor, unit = _time_axis(curves.series("val_loss", "train_seconds")[0])
    for axes, by, scale, xlabel in ((by_epoch, "epoch", 1.0, "epoch"),
                                    (by_time, "train_seconds", divisor, f"training time ({unit}, excluding evaluation)")):
        for (key, name), color in zip(METRICS.items(), ("tab:red", "tab:purple", "tab:gray")):
            x, y = curves.series(key, by)
            factor = 100.0 if key == "exact_match" else 1.0
            _line(axes, [v / scale for v in x], [v * factor for v in y], "o-", ms=4, color=color, label=name)
        axes.set_ylim(-2, 102)
        _panel(axes, f"Validation scores by {xlabel.split(' (')[0]}", xlabel, "score (0-100)", legend=False)
    handles, labels = by_epoch.get_legend_handles_labels()
    if handles:  # once for both panels, below them: inside, it would hide points at 0 or 100
        figure.legend(handles, labels, loc="outside lower center", ncols=len(handles), title="validation scores")
    epochs = [e["epoch"] for e in curves.evals]
    if epochs and max(epochs) - min(epochs) < 4:  # a few epochs: whole numbers only
        by_epoch.set_xticks(range(int(min(epochs)), int(max(epochs)) + 1))
        by_epoch.set_xlim(min(epochs) - 0.5, max(epochs) + 0.5)
    return _save_png(figure, path, dpi=100)


def _line(axes: Any, x: Sequence[float], y: Sequence[float], style: str, **options: Any) -> None:
    """Plot a series that has points (an empty one would still count as data and in the legend)."""
    if len(x):
        axes.plot(x, y, style, **options)


def _panel(axes: Any, title: str, xlabel: str, ylabel: str, legend: bool = True) -> None:
    axes.set_title(title)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.grid(True, alpha=0.3)
    if not axes.lines:
        axes.text(0.5, 0.5, "not in the log", ha="center", va="center", transform=axes.transAxes, color="gray")
    elif legend:
        axes.legend(loc="best", fontsize=9)


# ---- cross-attention ------------------------------------------------------------------------

@dataclass(frozen=True)
class AttentionMap:
    """Where the model looked while translating one sentence: `weights[t, s]` is the attention of
    output token t (`target[t]`; the last one EOS when the output ended with it rather than at the
    length limit) on source token s (`source[s]`). Each row sums to 1."""
    sentence: str
    translation: str
    source: list[str]
    target: list[str]
    weights: np.ndarray  # (len(target), len(source))


def cross_attention(model: Any, src_ids: Sequence[int], out_ids: Sequence[int], bos_id: int) -> np.ndarray:
    """The cross-attention weights of the model's last decoder layer, averaged over its heads, when
    its decoder reads BOS + `out_ids` (one teacher-forced pass, as decoding saw them):
    float (len(out_ids) + 1, len(src_ids)); row t is the attention while predicting the token after
    the first t of `out_ids` (the last row: while predicting what ends the output)."""
    attention = model.decoder_layers[len(model.decoder_layers) - 1].cross_attn
    original, captured = attention.forward, []

    def capture(*args: Any, **kwargs: Any) -> Any:  # FusedMultiHeadAttention's own weights, kept
        out, weights = original(*args, **kwargs, return_weights=True)
        captured.append(weights)
        return out

    src = _on_model_device(np.array([list(src_ids)], dtype=np.int64), model)
    mask = _on_model_device(np.ones((1, len(src_ids)), dtype=bool), model)
    tgt = _on_model_device(np.array([[bos_id, *out_ids]], dtype=np.int64), model)
    attention.forward = capture
    try:
        with _inference(model):
            model.decode(tgt, model.encode(src, mask), mask)
    finally:
        del attention.forward  # the class's method again
    weights = captured[0]
    return _host(getattr(weights, "data", weights))[0].astype(np.float64).mean(axis=0)


def token_label(tokenizer: Any, token_id: int) -> str:
    """A token as readable text: its bytes as UTF-8 (a byte that is not shown as <0xHH>), a space
    as "␣", other whitespace and control characters escaped."""
    return _printable(tokenizer.id_to_token(token_id).replace(" ", "␣"))


def attention_maps(translator: Any, sentences: Sequence[str], beam_size: int = 1, batch_size: int = 64,
                   length_penalty: float = 0.6, max_len_a: float = 1.5, max_len_b: float = 10,
                   **search: Any) -> list[AttentionMap]:
    """Translate `sentences` as Translator.translate does with these options (the same tokens; `search`:
    its others, e.g. no_repeat_ngram_size) and return each one's AttentionMap. A sentence that cannot be translated raises InputError naming it."""
    tokenizer, model = translator.tokenizer, translator.model
    ids = []
    for number, sentence in enumerate(sentences, 1):
        problem = translator.problem(sentence)
        if problem:
            raise InputError(f"sentence {number} {problem}")
        ids.append(tokenizer.encode(sentence))
    outputs = translate_ids(model, ids, bos_id=translator.bos_id, eos_id=translator.eos_id, pad_id=translator.pad_id,
                            banned_ids=translator.banned_ids, beam_size=beam_size, batch_size=batch_size,
                            length_penalty=length_penalty, max_len_a=max_len_a, max_len_b=max_len_b, **search)
    maps = []
    for sentence, src, out in zip(sentences, ids, outputs):
        weights = cross_attention(model, src, out, translator.bos_id)
        limit = length_limits(model, np.ones((1, len(src)), dtype=bool), max_len_a, max_len_b)[0]
        target = out + [translator.eos_id] if len(out) < limit else list(out)  # else cut at the limit: no EOS
        maps.append(AttentionMap(sentence, tokenizer.decode(out, errors="replace"),
                                 [token_label(tokenizer, i) for i in src], [token_label(tokenizer, i) for i in target],
                                 weights[:len(target)]))
    return maps


def draw_attention(attention: AttentionMap, output: str | os.PathLike, flag: str = "--output") -> Path:
    """Draw `attention` as a heatmap PNG at `output`: source tokens along the x axis, output tokens
    down the y axis, the sentence and its translation in the title; returns its path."""
    path = check_png_output(output, flag)
    rows, columns = attention.weights.shape
    width = min(max(4.8, 2.4 + 0.34 * columns), 40.0)
    height = min(max(3.6, 1.9 + 0.3 * rows), 40.0)
    figure = _figure_class("an attention heatmap")(figsize=(width, height), layout="constrained")
    axes = figure.subplots()
    shown = attention.weights if rows else np.full((1, columns), np.nan)  # no output token: an empty row
    image = axes.imshow(shown, cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto", interpolation="nearest")
    axes.set_xticks(range(columns), attention.source, rotation=50, ha="right", rotation_mode="anchor", parse_math=False)
    axes.set_yticks(range(rows), attention.target, parse_math=False)
    axes.set_xlabel("source token")
    axes.set_ylabel("output token")
    axes.tick_params(length=0)
    figure.colorbar(image, ax=axes, shrink=min(0.9, 4.0 / height), label="attention weight")
    title = f"{_shorten(attention.sentence)}\n→ {_shorten(attention.translation)}"
    axes.set_title(title, fontsize=10, loc="left", parse_math=False)
    return _save_png(figure, path, dpi=100)


def prepare_attention_dir(folder: str | os.PathLike) -> Path:
    """Check, before any decoding, that heatmaps can be drawn into `folder` (created if missing;
    ConfigError if it is a file), and that matplotlib is installed (MatplotlibMissing)."""
    path = Path(folder)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"--attention-png {folder} is a file; give a folder (it is created if missing)")
    _figure_class("--attention-png")
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_attention_pngs(translator: Any, lines: Sequence[str], folder: str | os.PathLike, options: dict) -> list[Path]:
    """For each line that can be translated, its heatmap as `folder`/<line number>.png (numbered from
    1; a line that cannot be translated, which translate warns about, gets none); returns the paths."""
    folder = prepare_attention_dir(folder)
    numbers = [n for n, line in enumerate(lines, 1) if translator.problem(line) is None]
    maps = attention_maps(translator, [lines[n - 1] for n in numbers], **options)
    return [draw_attention(m, folder / f"{n}.png", "--attention-png") for n, m in zip(numbers, maps)]
