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
        return (f"valid ppl {metrics['perplexity']:.1f}" + (f", test ppl {test:.1f}" if test else "")
                + f", {metrics.get('tokens_per_s', 0):,.0f} tokens/s")
    if metrics.get("accuracy") is not None:
        return (f"val acc {metrics['accuracy']:.4f} (best {metrics['best_accuracy']:.4f}), "
                f"{metrics.get('images_per_s', 0):,.0f} images/s")
    return "no completed epoch"
