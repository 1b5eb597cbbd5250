"""The post-call settings: environment defaults and the agent file's per-agent part."""

from __future__ import annotations

import pytest

from callbridge.agents import load_directory
from callbridge.config import load_settings
from callbridge.errors import ConfigError


def test_the_defaults_are_a_small_openai_model_and_five_attempts() -> None:
    """Without overrides the worker asks OpenAI's small model and gives up after 5 attempts."""
    settings = load_settings({}, serving=False)
    assert (settings.analysis_model, settings.analysis_url, settings.job_attempts) == (
        "gpt-5.4-mini", "https://api.openai.com/v1", 5)


def test_the_environment_sets_the_model_the_url_and_the_attempts() -> None:
    """CALLBRIDGE_ANALYSIS_MODEL, CALLBRIDGE_ANALYSIS_URL and CALLBRIDGE_JOB_ATTEMPTS."""
    settings = load_settings({"CALLBRIDGE_ANALYSIS_MODEL": "gpt-x", "CALLBRIDGE_JOB_ATTEMPTS": "9",
                              "CALLBRIDGE_ANALYSIS_URL": "http://127.0.0.1:9/v1/"}, serving=False)
    assert (settings.analysis_model, settings.analysis_url, settings.job_attempts) == (
        "gpt-x", "http://127.0.0.1:9/v1", 9)


def test_each_agent_has_its_webhook_and_custom_fields() -> None:
    """Per-agent settings; the environment's secret signs for agents without their own."""
    directory = load_directory({"agents": {
        "sales": {"webhook_url": "https://crm.example.test/hook",
                  "analysis_fields": {"budget": {"type": "number"}}},
        "support": {"webhook_url": "https://desk.example.test/hook", "webhook_secret": "own"},
        "quiet": {},
    }}, {"CALLBRIDGE_WEBHOOK_SECRET": "shared"})
    sales, support, quiet = (directory.agents[n] for n in ("sales", "support", "quiet"))
    assert (sales.webhook_secret, support.webhook_secret) == ("shared", "own")
    assert sales.analysis_fields == {"budget": {"type": "number"}}
    assert (quiet.webhook_url, quiet.analysis_fields) == (None, {})
    assert "shared" not in repr(sales)  # secrets stay out of logs


@pytest.mark.parametrize(("table", "message"), [
    ({"webhook_url": "https://x.example.test/h"}, "webhook_url needs a webhook_secret"),
    ({"webhook_url": "ftp://x", "webhook_secret": "s"}, "is not an http or https URL"),
    ({"analysis_fields": ["budget"]}, "analysis_fields must be a table"),
    ({"analysis_fields": {"the budget": {"type": "number"}}}, "must be letters, digits"),
    ({"analysis_fields": {"budget": {"type": "money"}}},
     "analysis_fields.budget: unknown type(s) money"),
])
def test_bad_post_call_settings_are_one_line_errors(table: dict[str, object],
                                                    message: str) -> None:
    """A webhook without a secret, a bad URL or a schema strict mode refuses stops start-up."""
    with pytest.raises(ConfigError, match=r"^agent 'default': ") as error:
        load_directory(table, {})
    assert message in str(error.value)
    assert "\n" not in str(error.value)
