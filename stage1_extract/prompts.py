"""The instructions the MLLM answers for every temporal image.

The defaults (data/default_prompts.yaml) follow the paper: three yes/no questions (are the people
holding objects, does a hand touch the head, does a hand touch a foot) and one request for a
one-sentence description. A user's YAML file with the same keys replaces them as a whole.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from shared.errors import MMCLError

DEFAULT_PROMPTS_RESOURCE = "default_prompts.yaml"
# Beside the module rather than importlib.resources: works the same for regular and namespace installs.
DEFAULT_PROMPTS_PATH = Path(__file__).with_name("data") / DEFAULT_PROMPTS_RESOURCE
_REQUIRED = ("questions", "describe")
_OPTIONAL = ("system",)


@dataclass(frozen=True)
class Prompts:
    """Yes/no `questions` (answered as P(yes)), the `describe` instruction, an optional `system` message."""

    questions: list[str]
    describe: str
    system: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain data, for cache attributes and for comparing two extractions' prompts."""
        return asdict(self)


def _text(value: Any, where: str, key: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise MMCLError(f"{where}: '{key}' must be a non-empty string, got {value!r}")
    return value.strip()


def parse_prompts(data: Any, where: str) -> Prompts:
    """Validate already-parsed YAML; `where` names its origin in error messages."""
    if not isinstance(data, dict):
        raise MMCLError(f"{where}: expected a mapping with keys {', '.join(_REQUIRED + _OPTIONAL)}")
    allowed = ", ".join(_REQUIRED + _OPTIONAL)
    unknown = sorted(str(key) for key in set(data) - set(_REQUIRED + _OPTIONAL))
    if unknown:
        raise MMCLError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {allowed}")
    missing = [key for key in _REQUIRED if key not in data]
    if missing:
        raise MMCLError(
            f"{where}: missing key(s) {', '.join(missing)} (a prompts file replaces the defaults as a whole)"
        )
    questions = data["questions"]
    if not isinstance(questions, list) or not questions:
        raise MMCLError(f"{where}: 'questions' must be a non-empty list of yes/no questions")
    questions = [_text(q, where, f"questions[{i}]") for i, q in enumerate(questions)]
    repeated = sorted({q for q in questions if questions.count(q) > 1})
    if repeated:
        raise MMCLError(f"{where}: repeated question(s): {'; '.join(repeated)}")
    system = data.get("system")
    return Prompts(
        questions=questions,
        describe=_text(data["describe"], where, "describe"),
        system=None if system is None else _text(system, where, "system"),
    )


def load_prompts(path: str | Path | None = None) -> Prompts:
    """The prompts from a YAML file, or the packaged defaults when `path` is None."""
    if path is None:
        text = DEFAULT_PROMPTS_PATH.read_text("utf-8")
        return parse_prompts(yaml.safe_load(text), f"default prompts ({DEFAULT_PROMPTS_RESOURCE})")
    path = Path(path)
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError as exc:
        raise MMCLError(f"{path}: prompts file not found") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise MMCLError(f"{path}: cannot read the prompts file ({exc})") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise MMCLError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from exc
    return parse_prompts(data, str(path))
