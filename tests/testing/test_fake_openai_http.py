"""The fake Chat Completions server: scripted replies, schema-made answers, the API's checks."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest
from openai import AsyncOpenAI

from callbridge.structured_outputs import strict, validate
from callbridge.testing.fake_openai_http import ChatReply, FakeOpenAIHTTP, example

SCHEMA = strict({"type": "object", "properties": {
    "score": {"type": "integer", "minimum": 0, "maximum": 100},
    "mood": {"type": "number", "minimum": -1, "maximum": 1},
    "tags": {"type": "array", "items": {"type": "string"}},
    "kind": {"type": "string", "enum": ["x", "y"]},
    "maybe": {"type": ["null", "boolean"]},
    "inner": {"type": "object", "properties": {"n": {"type": "integer"}}},
}})


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAIHTTP]:
    async with FakeOpenAIHTTP(api_key="sk-test") as server:
        yield server


async def ask(fake: FakeOpenAIHTTP, schema: dict[str, Any] = SCHEMA,
              key: str = "sk-test") -> str | None:
    async with AsyncOpenAI(api_key=key, base_url=fake.url, max_retries=0) as client:
        completion = await client.chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": "hi"}],
            response_format={"type": "json_schema", "json_schema": {
                "name": "t", "strict": True, "schema": schema}})
    return completion.choices[0].message.content


async def test_unscripted_requests_get_a_valid_answer_made_from_their_schema(
        fake: FakeOpenAIHTTP) -> None:
    """With no script, the answer conforms to whatever schema the request carries."""
    content = await ask(fake)
    assert content is not None
    assert validate(json.loads(content), SCHEMA) == []
    assert example(SCHEMA)["score"] == 50
    [request] = fake.requests
    assert (request.body["model"], request.authorization) == ("gpt-test", "Bearer sk-test")


async def test_scripted_replies_come_in_order_then_errors_are_raised_by_the_sdk(
        fake: FakeOpenAIHTTP) -> None:
    """Valid, malformed and 500 replies reach the SDK as the real API would send them."""
    fake.script(ChatReply.json({"any": "thing"}), ChatReply.malformed(), ChatReply.error(500))
    assert await ask(fake) == '{"any": "thing"}'
    assert await ask(fake) == '{"summary": "The caller asked about'
    with pytest.raises(openai.InternalServerError):
        await ask(fake)


async def test_a_schema_strict_mode_would_refuse_is_a_400_and_a_violation(
        fake: FakeOpenAIHTTP) -> None:
    """An object that does not require all its properties is refused, like the real API."""
    loose = {"type": "object", "properties": {"a": {"type": "string"}}, "required": [],
             "additionalProperties": False}
    with pytest.raises(openai.BadRequestError, match="must list every property in required"):
        await ask(fake, loose)
    assert fake.violations == ["Invalid schema: schema must list every property in required"]


async def test_a_wrong_key_is_refused(fake: FakeOpenAIHTTP) -> None:
    """The fake checks the bearer key when it is given one."""
    with pytest.raises(openai.AuthenticationError, match="Incorrect API key"):
        await ask(fake, key="sk-wrong")
