"""The MLLM instructions: packaged defaults and validated user files."""

from __future__ import annotations

import pytest

from shared.errors import MMCLError
from stage1_extract.prompts import Prompts, load_prompts


def test_defaults_follow_the_paper():
    prompts = load_prompts()
    assert len(prompts.questions) == 3
    for topic in ("holding", "head", "foot"):
        assert sum(topic in q for q in prompts.questions) == 1
    assert all(q.split("?")[0].split()[0] in ("Are", "Does", "Is") for q in prompts.questions)  # yes/no form
    assert all("yes or no" in q for q in prompts.questions)
    assert prompts.describe == "Describe the person's action in one sentence."
    assert prompts.system is None


def test_a_user_file_replaces_the_defaults(tmp_path):
    path = tmp_path / "prompts.yaml"
    path.write_text(
        'questions: ["Is anyone sitting? Answer yes or no."]\ndescribe: "What happens?"\nsystem: Be brief.\n'
    )
    assert load_prompts(path) == Prompts(["Is anyone sitting? Answer yes or no."], "What happens?", "Be brief.")
    assert load_prompts(path).as_dict()["system"] == "Be brief."


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("describe: x\n", "missing key\\(s\\) questions"),
        ("questions: []\ndescribe: x\n", "non-empty list"),
        ("questions: [a, '']\ndescribe: x\n", "questions\\[1\\]"),
        ("questions: [a, a]\ndescribe: x\n", "repeated question"),
        ("questions: [a]\ndescribe: x\nextra: 1\n", "unknown key\\(s\\) extra"),
        ("questions: [a]\ndescribe: 3\n", "'describe' must be a non-empty string"),
        ("- just a list\n", "expected a mapping"),
        ("questions: [a\n", "not valid YAML"),
    ],
)
def test_bad_files_name_the_file_and_the_problem(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(MMCLError, match=message) as caught:
        load_prompts(path)
    assert str(path) in str(caught.value)


def test_missing_file(tmp_path):
    with pytest.raises(MMCLError, match="prompts file not found"):
        load_prompts(tmp_path / "nope.yaml")
