"""AI assist: the offline engine, and Gemini's REST API through a local double."""

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from socialhub.posts.ai import caption_of, hashtags_of, moderate
from socialhub.posts.settings import PostsSettings
from tests.posts.conftest import api_instance
from tests.posts.doubles import GeminiDouble, serving
from tests.posts.helpers import as_user, assert_error, someone
from tests.unit import unit_fixture

DRAFT = (
    "Sunset hike with friends! The mountain trail was steep, but the mountain views "
    "were worth it. #nature"
)


async def suggest(client: httpx.AsyncClient, content: str) -> dict[str, Any]:
    response = await client.post(
        "/posts/ai/suggest", headers=as_user(someone()), json={"content": content}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_hashtags_are_the_authors_then_the_most_frequent_words() -> None:
    assert hashtags_of(DRAFT) == ["#nature", "#mountain", "#sunset", "#hike", "#friends"]
    assert hashtags_of("the and of to") == []
    assert hashtags_of("Café au lait, café crème") == ["#café", "#lait", "#crème"]


def test_caption_is_the_first_sentence_cut_at_a_word() -> None:
    assert caption_of(DRAFT) == "Sunset hike with friends!"
    long = "word " * 40
    caption = caption_of(long)
    assert caption.endswith("…")
    assert len(caption) <= 100
    assert caption.startswith("Word word")


@pytest.mark.parametrize(
    ("text", "categories"),
    [
        ("What a lovely day", []),
        ("this is fucking great", ["profanity"]),
        ("sh1t happens", ["profanity"]),
        ("fuuuuck", ["profanity"]),
        ("you are an idiot", ["harassment"]),
        ("I will kill you", ["violence"]),
        ("Click here for free money", ["spam"]),
        ("Scunthorpe is a town", []),
    ],
)
def test_word_list_moderation(text: str, categories: list[str]) -> None:
    verdict = moderate(text)
    assert verdict.categories == categories
    assert verdict.verdict == ("flag" if categories else "allow")


async def test_without_a_key_the_offline_engine_answers(posts: httpx.AsyncClient) -> None:
    body = await suggest(posts, DRAFT)
    assert body == {
        "engine": "offline",
        "caption": "Sunset hike with friends!",
        "hashtags": ["#nature", "#mountain", "#sunset", "#hike", "#friends"],
        "moderation": {"verdict": "allow", "categories": []},
        "fallbackReason": None,
    }
    assert body == await suggest(posts, DRAFT)  # deterministic
    flagged = await suggest(posts, "click here, you idiot")
    assert flagged["moderation"] == {"verdict": "flag", "categories": ["harassment", "spam"]}


async def test_suggestions_are_rate_limited_per_user(posts_settings: PostsSettings) -> None:
    user = someone()
    async with api_instance(posts_settings, ai_suggest_limit_per_minute=2) as limited:
        for _ in range(2):
            ok = await limited.post(
                "/posts/ai/suggest", headers=as_user(user), json={"content": "hello world"}
            )
            assert ok.status_code == 200
        refused = await limited.post(
            "/posts/ai/suggest", headers=as_user(user), json={"content": "hello world"}
        )
        assert_error(refused, 429, "rate_limited")
        assert int(refused.headers["Retry-After"]) > 0
        other = await limited.post(
            "/posts/ai/suggest", headers=as_user(someone()), json={"content": "hello world"}
        )
        assert other.status_code == 200


@pytest.fixture(scope="module")
def gemini() -> Iterator[GeminiDouble]:
    double = GeminiDouble()
    with serving(double):
        yield double


@pytest.fixture(scope="module")
async def with_gemini(
    posts_settings: PostsSettings, gemini: GeminiDouble
) -> AsyncIterator[httpx.AsyncClient]:
    async with api_instance(
        posts_settings,
        gemini_api_key="test-gemini-key",
        gemini_api_endpoint=gemini.url,
        gemini_model="gemini-test",
        gemini_timeout_seconds=10,
    ) as client:
        yield client


@pytest.fixture(autouse=True)
@unit_fixture
def answering(request: pytest.FixtureRequest) -> None:
    if "gemini" in request.fixturenames:
        double: GeminiDouble = request.getfixturevalue("gemini")
        double.mode = "ok"
        double.requests.clear()


async def test_gemini_answers_when_configured(
    with_gemini: httpx.AsyncClient, gemini: GeminiDouble
) -> None:
    body = await suggest(with_gemini, DRAFT)
    assert body == {
        "engine": "gemini",
        "caption": "Golden hour at the beach",
        "hashtags": ["#beach", "#sunset", "#summer"],
        "moderation": {"verdict": "allow", "categories": []},
        "fallbackReason": None,
    }
    [call] = gemini.requests
    assert call["path"] == "/v1beta/models/gemini-test:generateContent"
    assert call["headers"]["x-goog-api-key"] == "test-gemini-key"
    prompt = call["body"]["contents"][0]["parts"][0]["text"]
    assert DRAFT in prompt
    assert call["body"]["generationConfig"]["responseMimeType"] == "application/json"


@pytest.mark.parametrize(
    ("mode", "reason"),
    [("error", "Gemini is unavailable"), ("garbage", "Gemini gave an unusable answer")],
)
async def test_gemini_failures_fall_back_to_offline(
    with_gemini: httpx.AsyncClient, gemini: GeminiDouble, mode: str, reason: str
) -> None:
    gemini.mode = mode
    body = await suggest(with_gemini, DRAFT)
    assert body["engine"] == "offline"
    assert body["fallbackReason"] == reason
    assert body["hashtags"] == hashtags_of(DRAFT)
    assert gemini.requests
