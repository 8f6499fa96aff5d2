"""Shipped genotypes (the published cells) and the one way the CLI and app name a genotype.

Presets are plain genotype JSON files in assets/: the file stem is the preset name, so a
new preset (e.g. assets/shrinkrnn.json) is picked up by dropping the file in, with no code
change. A preset file may carry an extra top-level "network" object saying which network
it was published in (e.g. {"config": "imagenet", "activation": "swish"}); Genotype.from_dict
ignores it, `preset_network` returns it.
"""

from __future__ import annotations

from pathlib import Path

from core.cell.genotype import Genotype, GenotypeError, parse_json

ASSETS_DIR: Path = Path(__file__).resolve().parents[2] / "assets"
PRESET_PREFIX = "preset:"


def preset_names() -> list[str]:
    """Every assets/*.json stem, sorted: what `load_preset` accepts."""
    return sorted(p.stem for p in ASSETS_DIR.glob("*.json") if p.is_file())


def load_preset(name: str) -> Genotype:
    """The shipped genotype `name`; an unknown name is a GenotypeError listing the known ones."""
    return Genotype.from_dict(_read_json(_preset_path(name)))


def preset_network(name: str) -> dict:
    """The preset's "network" object ({} if it has none), so callers can rebuild its published net."""
    network = _read_json(_preset_path(name)).get("network", {})
    if not isinstance(network, dict):
        raise GenotypeError(f"preset {name!r} has a 'network' entry that is not an object")
    return network


def load_genotype_arg(arg: str) -> Genotype:
    """A genotype named on a command line or form: "preset:NAME" or a path to a genotype JSON file."""
    arg = arg.strip()
    if arg.startswith(PRESET_PREFIX):
        return load_preset(arg[len(PRESET_PREFIX) :].strip())
    path = Path(arg).expanduser()
    data = _read_json(path)
    try:
        return Genotype.from_dict(data)
    except GenotypeError as exc:
        raise GenotypeError(f"genotype file {str(path)!r} is invalid: {exc}") from None


def _preset_path(name: str) -> Path:
    """Resolve a preset name to its file; only listed stems are accepted, so no path tricks."""
    names = preset_names()
    if name not in names:
        folded = {n.lower(): n for n in names}
        if name.lower() not in folded:
            raise GenotypeError(f"unknown preset {name!r}; known: {', '.join(names) or 'none'}")
        name = folded[name.lower()]
    return ASSETS_DIR / f"{name}.json"


def _read_json(path: Path) -> dict:
    """Parse a genotype file into a dict; every failure is one GenotypeError line naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GenotypeError(f"genotype file {str(path)!r} does not exist") from None
    except IsADirectoryError:
        raise GenotypeError(f"genotype file {str(path)!r} is a directory") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise GenotypeError(f"genotype file {str(path)!r} cannot be read: {reason}") from None
    data = parse_json(text, f"genotype file {str(path)!r}")
    if not isinstance(data, dict):
        raise GenotypeError(f"genotype file {str(path)!r} must hold a JSON object")
    return data
