"""How numbers and durations are written for people, the same on every page and in the CLI."""

from __future__ import annotations


def fmt_duration(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds < 0:
        return "?"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


def quality_text(metrics: dict) -> str:
    """One-line summary of a job's measured quality and pace (CLI and page tables)."""
    if metrics.get("perplexity") is not None:
        test = metrics.get("test_perplexity")
        return (
            f"valid ppl {metrics['perplexity']:.1f}"
            + (f", test ppl {test:.1f}" if test else "")
            + f", {metrics.get('tokens_per_s', 0):,.0f} tokens/s"
        )
    if metrics.get("accuracy") is not None:
        return (
            f"val acc {100 * metrics['accuracy']:.2f}% (best {100 * metrics['best_accuracy']:.2f}%), "
            f"{metrics.get('images_per_s', 0):,.0f} images/s"
        )
    return "no completed epoch"


def fmt_si(value: float | int | None) -> str:
    """Short human number with three significant digits: 170442 -> '170k', 3.64e6 -> '3.64M',
    383678673 -> '384M'; None/NaN -> '-'. One writer for params, MACs and FLOPs on every page."""
    if value is None or (isinstance(value, float) and value != value) or value in (float("inf"), float("-inf")):
        return "-"
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= div:
            return f"{value / div:.3g}{suffix}"
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def fmt_pct(fraction: float | None, digits: int = 1) -> str:
    """Accuracy is stored as a fraction and shown as a percentage, everywhere."""
    if fraction is None or fraction != fraction:
        return "-"
    return f"{100 * fraction:.{digits}f}%"


# What decides each shrink step, written where a score is shown (core/search/tasks.py computes it).
SCORE_FORMULA = {
    "cnn": "score = accuracy - 0.1 x (log10(MACs) - 6), accuracy as a fraction, MACs of the proxy net per image",
    "rnn": "score = 0.25 x (200 - perplexity) - (log10(FLOPs) - 6), FLOPs = edges x h²",
}
