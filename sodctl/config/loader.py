"""Compose a run's configuration from the schema, a preset, a method, an experiment file and overrides.

Merge order (later wins)::

    schema defaults  <-  experiments/presets/<preset>.yaml
                     <-  the method's switches from sodctl.methods
                     <-  the experiment file's body
                     <-  the explicit model argument (--model)
                     <-  key=value overrides

An experiment file is YAML whose top-level ``preset:``, ``method:`` and
``model:`` (a size) *select* the layers above; every other key is a config key.
The selectors themselves are taken from the most specific source: an override
(``preset=tiny``, ``method=opd``, ``model=0.6b``), then the explicit argument,
then the file, then the schema default.

Where the experiment files live: the source of truth is ``experiments/`` at the
repository root. ``sodctl/_experiments`` is a symlink to it, declared as package
data, so a wheel carries a real copy and the loader has one place to look; a
checkout where the symlink is not followed (e.g. Windows without symlinks)
falls back to ``<package parent>/experiments``. A name that is not shipped is
then looked up in ``./experiments``, and any YAML file can be passed by path.
"""

from __future__ import annotations

import copy
import difflib
import enum
import functools
import typing
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import (
    ConfigAttributeError,
    ConfigKeyError,
    InterpolationResolutionError,
    OmegaConfBaseException,
    ValidationError,
)

from sodctl.config.schema import (
    METHOD_SWITCHES,
    PRESETS,
    SIZES,
    SodctlConfig,
    validate,
)
from sodctl.errors import SodctlUsageError
from sodctl.methods import canonical_name, get_method

_PACKAGE_DIR = Path(__file__).resolve().parents[1]
_SELECTORS = ("preset", "method", "model")


# --- locating files --------------------------------------------------------------------------


def experiments_dir() -> Path:
    """The directory holding the shipped experiment files."""
    for candidate in (_PACKAGE_DIR / "_experiments", _PACKAGE_DIR.parent / "experiments"):
        if (candidate / "presets").is_dir():
            return candidate
    raise SodctlUsageError(
        f"cannot find the shipped experiment files (looked in {_PACKAGE_DIR / '_experiments'} and "
        f"{_PACKAGE_DIR.parent / 'experiments'}); reinstall sodctl or pass an experiment file by path"
    )


def available_presets() -> list[str]:
    return sorted(p.stem for p in (experiments_dir() / "presets").glob("*.yaml"))


def available_experiments() -> list[str]:
    """Shipped experiment names (``table1/sod-1.7b``), presets excluded."""
    root = experiments_dir()
    names = [p.relative_to(root).with_suffix("").as_posix() for p in root.rglob("*.yaml")]
    return sorted(n for n in names if not n.startswith("presets/"))


def preset_path(name: str) -> Path:
    path = experiments_dir() / "presets" / f"{name}.yaml"
    if name not in PRESETS or not path.is_file():
        raise SodctlUsageError(
            f"unknown preset {name!r}{_suggest(name, available_presets())}; "
            f"available presets: {', '.join(available_presets())}"
        )
    return path


def _name_roots() -> list[Path]:
    """Where experiment *names* are looked up: the shipped files, then ./experiments."""
    roots = [experiments_dir().resolve()]
    local = (Path.cwd() / "experiments").resolve()
    return roots if local == roots[0] else [*roots, local]


def find_experiment(experiment: str) -> tuple[Path, str]:
    """Resolve a path or an experiment name to ``(file, experiment name)``.

    A name (``table1/sod-1.7b``) is looked up in the shipped experiments first,
    then in ``./experiments``; anything that exists as a file is used as is.
    """
    given = Path(experiment)
    for candidate in (given, given.with_name(given.name + ".yaml")):
        if candidate.is_file():
            return candidate, _experiment_name(candidate)
    name = experiment.removesuffix(".yaml").removeprefix("experiments/")
    for root in _name_roots():
        if (root / f"{name}.yaml").is_file():
            return root / f"{name}.yaml", name
    if given.is_absolute() or experiment.startswith("."):
        raise SodctlUsageError(f"no such experiment file: {experiment}")
    known = available_experiments()
    folder = name.rpartition("/")[0]
    listed = [n for n in known if n.startswith(folder + "/")] if folder else []
    raise SodctlUsageError(
        f"no experiment {experiment!r}: neither a file nor experiments/{name}.yaml"
        f"{_suggest(name, known)}; available: {', '.join(listed or known)}"
    )


def _experiment_name(path: Path) -> str:
    for root in _name_roots():
        try:
            return path.resolve().relative_to(root).with_suffix("").as_posix()
        except ValueError:
            continue
    return path.stem


def _display(path: Path) -> str:
    """A shipped file as ``experiments/<name>.yaml``; any other file as given."""
    try:
        return "experiments/" + path.resolve().relative_to(experiments_dir().resolve()).as_posix()
    except ValueError:
        return str(path)


def header_comment(path: Path) -> list[str]:
    """The leading ``#`` comment lines of a YAML file, without the ``#``."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    return lines


def describe(path: Path) -> str:
    """A file's one-line description: the first line of its header comment."""
    header = [line for line in header_comment(path) if line]
    return header[0] if header else ""


# --- schema introspection (for error messages) ----------------------------------------------


# Mappings keyed by model size. Sizes contain a dot, so their entries are written
# ``zoo[0.6b]`` (``zoo.0.6b`` is accepted too).
_SIZE_MAPS = (
    "zoo",
    "data.sft_path_by_size",
    "train.max_steps_by_size",
    "sft.max_steps_by_size",
    "pretrain.max_steps_by_size",
)


def _schema_keys(cls: type = SodctlConfig, prefix: str = "") -> dict[str, Any]:
    """Every dotted key of the schema mapped to its type annotation (size maps as ``zoo[size]``)."""
    out: dict[str, Any] = {}
    hints = typing.get_type_hints(cls)
    for f in fields(cls):
        key, hint = f"{prefix}{f.name}", hints[f.name]
        if is_dataclass(hint):
            out.update(_schema_keys(hint, key + "."))  # type: ignore[arg-type]
        elif key in _SIZE_MAPS:
            value = typing.get_args(hint)[1]
            out.update({f"{key}[{s}]": value for s in SIZES})
        else:
            out[key] = hint
    return out


_KEYS = _schema_keys()
_SECTIONS = {k.split(".")[0] for k in _KEYS if "." in k} | {"zoo"}


def _normalise_key(key: str) -> str:
    for base in _SIZE_MAPS:
        if key.startswith(base + ".") and key[len(base) + 1 :] in SIZES:
            return f"{base}[{key[len(base) + 1 :]}]"
    return key


def _is_choice(hint: Any) -> bool:
    return isinstance(hint, type) and issubclass(hint, enum.Enum)


def _describe_type(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if _is_choice(hint):
        return "one of " + ", ".join(repr(str(m.value)) for m in hint)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if type(None) in args:  # X | None
        (inner,) = [a for a in args if a is not type(None)]
        return f"{_describe_type(inner)} or null"
    if origin is list:
        return f"a list of {_describe_type(args[0]).removeprefix('a ').removeprefix('an ')}s"
    names = {float: "a float", int: "an integer", bool: "a boolean", str: "a string"}
    return names.get(hint, "a config section" if is_dataclass(hint) else str(hint))


def _suggest(key: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(key, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _show(value: Any) -> str:
    return "null" if value is None else repr(value)


# --- applying layers -------------------------------------------------------------------------


@contextmanager
def _translating(key: str, value: Any, source: str) -> Iterator[None]:
    """Turn OmegaConf's multi-line errors into one-line ``SodctlUsageError``s."""
    where = f" in {source}" if source else ""
    try:
        yield
    except (ConfigKeyError, ConfigAttributeError):
        raise SodctlUsageError(
            f"unknown config key {key!r}{_suggest(key, list(_KEYS))}{where}; "
            "see 'sodctl inspect config' for every key"
        ) from None
    except ValidationError:
        hint = _KEYS.get(key)
        if hint is None:  # e.g. "train.lr.x": a key below a value
            raise SodctlUsageError(
                f"unknown config key {key!r}{_suggest(key, list(_KEYS))}{where}; "
                "see 'sodctl inspect config' for every key"
            ) from None
        raise SodctlUsageError(
            f"config key {key!r} expects {_describe_type(hint)}, got {_show(value)}{where}"
        ) from None
    except OmegaConfBaseException as e:
        first = str(e).splitlines()[0]
        raise SodctlUsageError(f"config key {key!r}: {first}{where}") from None


def _apply(cfg: DictConfig, key: str, value: Any, source: str) -> None:
    key = _normalise_key(key)
    if key in _SECTIONS and not isinstance(value, dict):
        where = f" in {source}" if source else ""
        raise SodctlUsageError(
            f"config key {key!r} is a section: set its keys instead (e.g. {key}.<key>=...){where}"
        )
    with _translating(key, value, source):
        if key.partition("[")[0] in _SIZE_MAPS and key in _KEYS:
            with open_dict(cfg):  # a size map may gain entries (its keys are checked above)
                OmegaConf.update(cfg, key, value, merge=True)
        else:
            OmegaConf.update(cfg, key, value, merge=True)


def _flatten(body: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for k, v in body.items():
        key = f"{prefix}[{k}]" if prefix in _SIZE_MAPS else (f"{prefix}.{k}" if prefix else str(k))
        if isinstance(v, dict) and v:
            yield from _flatten(v, key)
        else:
            yield key, v


def _apply_body(cfg: DictConfig, body: dict[str, Any], source: str) -> None:
    for key, value in _flatten(body):
        _apply(cfg, key, value, source)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark is not None else ""
        raise SodctlUsageError(
            f"{_display(path)}: not valid YAML{line}: {getattr(e, 'problem', e)}"
        ) from None
    except OSError as e:
        raise SodctlUsageError(f"{_display(path)}: cannot read: {e.strerror}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise SodctlUsageError(f"{_display(path)}: must be a YAML mapping of config keys")
    return raw  # type: ignore[return-value]


def parse_override(text: str) -> tuple[str, Any]:
    """Split ``"key=value"`` and parse the value as YAML.

    PyYAML reads ``1e-5`` as a string; the typed schema converts it when the
    key is a float, so ``train.lr=1e-5`` works as users expect.
    """
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise SodctlUsageError(f"malformed override {text!r}: write key=value (e.g. train.lr=1e-5)")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        raise SodctlUsageError(f"override {text!r}: the value is not valid YAML") from None
    return key, value


# --- the loader ------------------------------------------------------------------------------


def load_config(
    experiment: str | None = None,
    *,
    preset: str | None = None,
    model: str | None = None,
    method: str | None = None,
    overrides: Sequence[str] = (),
) -> DictConfig:
    """Compose, resolve and validate a configuration; every bad input is a ``SodctlUsageError``.

    experiment  a shipped name (``table1/sod-1.7b``) or a path to a YAML file.
    preset      ``smoke``, ``tiny`` or ``paper`` (default: the file's, else ``paper``).
    model       a student size (``1.7b``) or a model path / hub id.
    method      a method name or alias from ``sodctl.methods``.
    overrides   ``key=value`` strings, applied last.
    """
    parsed = [(*parse_override(o), o) for o in overrides]
    selected = {k: v for k, v, _ in parsed if k in _SELECTORS}
    rest = [(k, v, o) for k, v, o in parsed if k not in _SELECTORS]

    body: dict[str, Any] = {}
    name: str | None = None
    source = ""
    if experiment is not None:
        path, name = find_experiment(experiment)
        body = _read_yaml(path)
        source = _display(path)
    file_method = body.pop("method", None)
    file_model = body.pop("model", None)
    file_preset = body.pop("preset", None)
    if file_model is not None and not isinstance(file_model, (str, dict)):
        raise SodctlUsageError(
            f"{source}: 'model' must be a size (model: 1.7b), a path, or a mapping of model keys"
        )

    preset_name = _pick("preset", selected, preset, file_preset, "paper")
    method_name = _pick("method", selected, method, _method_name(file_method, source), None)
    model_choice = _pick(
        "model", selected, model, file_model if isinstance(file_model, str) else None, None
    )

    cfg = copy.deepcopy(_schema_defaults())

    ppath = preset_path(str(preset_name))
    pbody = _read_yaml(ppath)
    for selector in ("preset", "method"):
        if selector in pbody:
            raise SodctlUsageError(f"{_display(ppath)}: a preset must not set {selector!r}")
    _apply_body(cfg, pbody, _display(ppath))
    OmegaConf.update(cfg, "preset", preset_name)

    _apply_method(cfg, method_name if method_name is not None else cfg.method.name)
    if name is not None:
        cfg.experiment = name
    if isinstance(file_method, dict) and method_name == _method_name(file_method, source):
        # the file's own switch overrides; dropped when --method/method= picked another method
        _apply_body(cfg, {"method": {k: v for k, v in file_method.items() if k != "name"}}, source)
    if isinstance(file_model, dict):
        _apply_body(cfg, {"model": file_model}, source)
    _apply_body(cfg, body, source)

    if model_choice is not None:
        _apply_model(cfg, str(model_choice))
    for key, value, text in rest:
        _apply(cfg, key, _keep_text(key, value, text), f"override {text!r}")

    if cfg.experiment is None:
        cfg.experiment = f"{cfg.method.name}-{cfg.model.size}"
    _resolve(cfg)
    validate(cfg)
    return cfg


def _keep_text(key: str, value: Any, text: str) -> Any:
    """For string-typed keys, keep what the user typed: YAML 1.1 would turn ``off`` into False."""
    hint = _KEYS.get(_normalise_key(key))
    args = typing.get_args(hint)
    stringy = (
        hint is str
        or _is_choice(hint)
        or (args and all(a is str or a is type(None) or isinstance(a, str) for a in args))
    )
    if stringy and isinstance(value, (bool, int, float)):
        return text.partition("=")[2].strip()
    return value


@functools.cache
def _schema_defaults() -> DictConfig:
    # Building a structured config is ~6x slower than copying one: build it once.
    cfg = OmegaConf.structured(SodctlConfig)
    OmegaConf.set_struct(cfg, True)
    return cfg


def _pick(selector: str, selected: dict[str, Any], arg: Any, from_file: Any, default: Any) -> Any:
    for value in (selected.get(selector), arg, from_file):
        if value is not None:
            if not isinstance(value, str):
                raise SodctlUsageError(f"{selector!r} must be a name, got {_show(value)}")
            return value
    return default


def _method_name(file_method: Any, source: str) -> str | None:
    if file_method is None or isinstance(file_method, str):
        return file_method
    if isinstance(file_method, dict) and isinstance(file_method.get("name"), str):
        return file_method["name"]
    raise SodctlUsageError(
        f"{source}: 'method' must be a method name (method: sod) or a mapping with a 'name'"
    )


def _apply_method(cfg: DictConfig, name: str) -> None:
    try:
        spec = get_method(canonical_name(name))
    except KeyError as e:  # UnknownMethodError: its message lists the known methods
        raise SodctlUsageError(str(e)) from None
    cfg.method.name = spec.name
    for switch in METHOD_SWITCHES:
        OmegaConf.update(cfg, f"method.{switch}", getattr(spec, switch))


def _apply_model(cfg: DictConfig, choice: str) -> None:
    if choice in SIZES:
        OmegaConf.update(cfg, "model.size", choice)
    else:  # a path or hub id: the weights to use, whatever the size slot says
        cfg.model.path = choice


def _unresolvable_key(cfg: DictConfig) -> str | None:
    """The first schema key whose value does not resolve (OmegaConf 2.3 does not name it)."""
    for key in _KEYS:
        try:
            OmegaConf.select(cfg, key, throw_on_resolution_failure=True)
        except OmegaConfBaseException:
            return key
    return None


def _resolve(cfg: DictConfig) -> None:
    """Resolve ${...} interpolations, then fill null model paths from the zoo."""
    try:
        OmegaConf.resolve(cfg)
    except InterpolationResolutionError as e:
        key = getattr(e, "full_key", None) or _unresolvable_key(cfg) or "?"
        first = str(e).splitlines()[0]
        raise SodctlUsageError(f"config key {key!r}: {first}") from None
    for section in ("model", "teacher"):
        if cfg[section].path is None:
            cfg[section].path = cfg.zoo[str(cfg[section].size)]


# --- output ----------------------------------------------------------------------------------


def resolved_dict(cfg: DictConfig) -> dict[str, Any]:
    """The config as plain Python containers (interpolations resolved, choices as strings)."""
    return OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)  # type: ignore[return-value]


def to_yaml(cfg: DictConfig) -> str:
    """The resolved config as YAML: what every run writes next to its outputs."""
    return OmegaConf.to_yaml(cfg, resolve=True)
