"""Loading a YAML file into a pydantic model, with errors that name the file, the line and the field."""

from __future__ import annotations

from pathlib import Path
import re
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

Model = TypeVar("Model", bound=BaseModel)


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2's integers: `0412345` and `410_512` stay text, so a student id
    with a leading zero is not read as an octal number."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:int"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver("tag:yaml.org,2002:int", re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$"),
                              list("-+0123456789"))


class ConfigError(ValueError):
    """A YAML file that is missing, unreadable or does not fit its schema.

    `problems` holds one line per problem, each `file:line: field: what is wrong`.
    """

    def __init__(self, path: str | Path, problems: list[str]) -> None:
        self.path = str(path)
        self.problems = problems
        super().__init__("\n".join(problems))


def load_yaml_model(path: str | Path, model: type[Model]) -> Model:
    """Read `path` and validate it as `model`; every problem is reported at once, with its line."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(path, [f"{path}: file not found"])
    return parse_yaml_model(path.read_bytes(), path, model)


def parse_yaml_model(data: bytes, path: str | Path, model: type[Model]) -> Model:
    """Validate the YAML text `data` (read from `path`, which messages name) as `model`."""
    path = Path(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(path, [f"{path}: not UTF-8 text ({error.reason} at byte {error.start})"]) from None
    try:
        node = yaml.compose(text, Loader=_Loader)
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 (_Loader is a SafeLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        reason = getattr(error, "problem", None) or str(error)
        raise ConfigError(path, [f"{where}: not valid YAML: {reason}"]) from None
    except RecursionError:
        # PyYAML composes nested collections recursively: thousands of [ or { levels exhaust the stack.
        raise ConfigError(path, [f"{path}: nested too deeply to read (thousands of levels of [ or {{); "
                                 "write the fields described in the README"]) from None
    if data is None:
        raise ConfigError(path, [f"{path}:1: the file is empty; it needs the fields described in the README"])
    if not isinstance(data, dict):
        raise ConfigError(path, [f"{path}:1: expected a mapping of fields (key: value), got {type(data).__name__}"])
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise ConfigError(path, [_describe(path, node, problem) for problem in error.errors()]) from None
    except RecursionError:
        raise ConfigError(path, [f"{path}: nested too deeply to validate; write the fields described in the "
                                 "README"]) from None


def _describe(path: Path, root: yaml.Node | None, problem: dict) -> str:
    location = tuple(part for part in problem["loc"] if not str(part).startswith("function-"))
    field = ".".join(str(part) for part in location) or "(top level)"
    line = _line_of(root, location)
    message = problem["msg"].removeprefix("Value error, ")
    if problem["type"] == "missing":
        message = "missing: this field is required"
    elif problem["type"] == "extra_forbidden":
        message = "unknown field (check its spelling)"
    return f"{path}:{line}: {field}: {message}"


def _line_of(node: yaml.Node | None, location: tuple) -> int:
    """The 1-based line of the deepest node on `location` that exists in the file."""
    line = node.start_mark.line + 1 if node is not None else 1
    for key in location:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if k.value == str(key)), None)
            if match is None:
                break
            line, node = match[0].start_mark.line + 1, match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
            line = node.start_mark.line + 1
        else:
            break
    return line
