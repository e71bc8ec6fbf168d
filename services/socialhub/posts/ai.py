"""AI assist for a draft post: a caption, hashtags and a moderation verdict.

Gemini (`google-generativeai`, REST transport, endpoint configurable) answers when
GEMINI_API_KEY is set; otherwise, and whenever Gemini fails, a deterministic offline engine
does: hashtags from the most frequent meaningful words, a caption from the first sentence, and
a word-list moderation check. Every answer names the engine that produced it.
"""

import asyncio
import json
import logging
import re
import unicodedata
import warnings
from collections import Counter
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from socialhub.posts.schemas import Moderation, SuggestResponse
from socialhub.posts.settings import PostsSettings

log = logging.getLogger(__name__)

MAX_HASHTAGS = 5
CAPTION_MAX_CHARS = 100

_STOPWORDS = """
a about above after again against all also am an and any are as at be because been before being
below between both but by can could did do does doing down during each even ever every few for
from further get got had has have having he her here hers herself him himself his how i if in
into is it its itself just let like made make many me more most much must my myself no nor not
now of off on once one only or other our ours ourselves out over own really same say see she
should so some still such than that the their theirs them themselves then there these they this
those through to today too under until up us very was way we well were what when where which
while who whom why will with would yet you your yours yourself yourselves first new post posts
im ive dont cant wont thats its lets
"""
STOPWORDS = frozenset(_STOPWORDS.split())

# Offline moderation: whole words or phrases, matched after lowercasing, undoing common
# character swaps (leetspeak) and squeezing letters repeated 3+ times.
MODERATION_TERMS: dict[str, tuple[str, ...]] = {
    "profanity": (
        "fuck",
        "fucking",
        "fucker",
        "shit",
        "bullshit",
        "bitch",
        "asshole",
        "bastard",
        "dickhead",
        "motherfucker",
        "cunt",
        "wanker",
        "crap",
    ),
    "harassment": (
        "kill yourself",
        "kys",
        "you are worthless",
        "youre worthless",
        "loser",
        "idiot",
        "moron",
        "nobody likes you",
        "go die",
    ),
    "violence": (
        "i will kill you",
        "ill kill you",
        "shoot you",
        "stab you",
        "beat you up",
        "bomb threat",
        "murder you",
    ),
    "spam": (
        "buy now",
        "click here",
        "free money",
        "limited offer",
        "act now",
        "earn money fast",
        "crypto giveaway",
        "dm me to earn",
        "work from home and earn",
    ),
}
_LEET = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i"}
)
_WORD = re.compile(r"#?[^\W\d_][\w']*", re.UNICODE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")


class SuggestionEngine(Protocol):
    async def suggest(self, content: str) -> SuggestResponse: ...


class OfflineEngine:
    """Deterministic: the same text always gets the same answer."""

    async def suggest(self, content: str) -> SuggestResponse:
        return SuggestResponse(
            engine="offline",
            caption=caption_of(content),
            hashtags=hashtags_of(content),
            moderation=moderate(content),
        )


def hashtags_of(content: str) -> list[str]:
    """The author's own hashtags first, then the most frequent meaningful words (ties: the
    word that appears first), as #lowercase."""
    own: list[str] = []
    counts: Counter[str] = Counter()
    first_seen: dict[str, int] = {}
    for position, match in enumerate(_WORD.finditer(content)):
        token = match.group().lower().replace("'", "")
        if token.startswith("#"):
            tag = _tag(token[1:])
            if tag and tag not in own:
                own.append(tag)
            continue
        if len(token) < 3 or token in STOPWORDS:
            continue
        counts[token] += 1
        first_seen.setdefault(token, position)
    ranked = sorted(counts, key=lambda word: (-counts[word], first_seen[word]))
    tags = own + [tag for word in ranked if (tag := _tag(word)) and tag not in own]
    return tags[:MAX_HASHTAGS]


def _tag(word: str) -> str:
    cleaned = "".join(ch for ch in word if ch.isalnum() or ch == "_")
    return f"#{cleaned}" if cleaned else ""


def caption_of(content: str) -> str:
    """The first sentence, at most CAPTION_MAX_CHARS (cut at a word), capitalised."""
    text = " ".join(_without_hashtags(content).split())
    sentence = _SENTENCE_END.split(text, maxsplit=1)[0].strip() or text
    if len(sentence) > CAPTION_MAX_CHARS:
        cut = sentence[: CAPTION_MAX_CHARS - 1].rsplit(" ", 1)[0].rstrip(",;:-")
        sentence = f"{cut}…"
    return sentence[:1].upper() + sentence[1:]


def _without_hashtags(content: str) -> str:
    """Hashtags are suggested separately, not repeated in the caption."""
    return re.sub(r"(^|\s)#\w+", " ", content)


def moderate(content: str) -> Moderation:
    normalised = unicodedata.normalize("NFKC", content).lower().translate(_LEET)
    normalised = re.sub(r"(\w)\1{2,}", r"\1", normalised)  # "fuuuuck" -> "fuck"
    words = " ".join(re.findall(r"[a-z]+", normalised.replace("'", "")))
    padded = f" {words} "
    categories = [
        category
        for category, terms in MODERATION_TERMS.items()
        if any(f" {term} " in padded for term in terms)
    ]
    return Moderation(verdict="flag" if categories else "allow", categories=categories)


class _GeminiModeration(BaseModel):
    model_config = ConfigDict(extra="ignore")
    verdict: str = Field(pattern="^(allow|flag)$")
    categories: list[str] = Field(default_factory=list, max_length=10)


class _GeminiAnswer(BaseModel):
    model_config = ConfigDict(extra="ignore")
    caption: str = Field(min_length=1, max_length=300)
    hashtags: list[str] = Field(max_length=20)
    moderation: _GeminiModeration


PROMPT = """You help people publish on a social network. For the draft post between the markers,
answer only with JSON of this shape:
{{"caption": "<a short, catchy caption, at most {caption_chars} characters>",
  "hashtags": ["#tag", ... 3 to {tags} relevant hashtags],
  "moderation": {{"verdict": "allow" or "flag", "categories": [zero or more of "profanity",
  "harassment", "hate", "violence", "sexual", "spam"]}}}}
Flag the post when it breaks common community guidelines.
<<<DRAFT
{content}
DRAFT>>>"""


class GeminiEngine:
    """Gemini through `google-generativeai` (REST), with the offline engine as the fallback."""

    def __init__(
        self,
        api_key: str,
        *,
        model: str,
        endpoint: str,
        timeout_seconds: float,
        fallback: SuggestionEngine,
    ) -> None:
        # Heavy imports, made only when Gemini is configured. The SDK announces its end of
        # support (its successor is `google-genai`) on import: known, see README.md.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            from google.generativeai.client import configure
            from google.generativeai.generative_models import GenerativeModel

        # The SDK keeps one process-wide client configuration.
        configure(api_key=api_key, transport="rest", client_options={"api_endpoint": endpoint})
        self.model = GenerativeModel(
            model, generation_config={"response_mime_type": "application/json", "temperature": 0.4}
        )
        self.timeout = timeout_seconds
        self.fallback = fallback

    async def suggest(self, content: str) -> SuggestResponse:
        prompt = PROMPT.format(content=content, caption_chars=CAPTION_MAX_CHARS, tags=MAX_HASHTAGS)
        try:
            async with asyncio.timeout(self.timeout):
                # The REST transport is synchronous.
                response = await asyncio.to_thread(
                    self.model.generate_content, prompt, request_options={"timeout": self.timeout}
                )
            return _from_gemini(response)
        except Exception as exc:  # an API or parsing failure must not fail the request
            log.warning("Gemini suggestion failed, answering offline: %r", exc)
            offline = await self.fallback.suggest(content)
            return offline.model_copy(update={"fallback_reason": _reason(exc)})


def _from_gemini(response: Any) -> SuggestResponse:
    feedback = getattr(response, "prompt_feedback", None)
    if feedback is not None and getattr(feedback, "block_reason", None):
        # Gemini refused the draft itself: that is a moderation verdict too.
        return SuggestResponse(
            engine="gemini",
            caption="",
            hashtags=[],
            moderation=Moderation(verdict="flag", categories=["blocked"]),
        )
    answer = _GeminiAnswer.model_validate(json.loads(response.text))
    tags = [t for tag in answer.hashtags if (t := _tag(tag.lstrip("#").lower()))]
    return SuggestResponse(
        engine="gemini",
        caption=answer.caption[: CAPTION_MAX_CHARS * 2],
        hashtags=list(dict.fromkeys(tags))[:MAX_HASHTAGS],
        moderation=Moderation(
            verdict="flag" if answer.moderation.verdict == "flag" else "allow",
            categories=[c[:30] for c in answer.moderation.categories],
        ),
    )


def _reason(exc: Exception) -> str:
    if isinstance(exc, TimeoutError):
        return "Gemini timed out"
    if isinstance(exc, ValueError):  # JSON or validation errors included
        return "Gemini gave an unusable answer"
    return "Gemini is unavailable"


def create_engine(settings: PostsSettings) -> SuggestionEngine:
    offline = OfflineEngine()
    if settings.gemini_api_key is None:
        return offline
    return GeminiEngine(
        settings.gemini_api_key.get_secret_value(),
        model=settings.gemini_model,
        endpoint=settings.gemini_api_endpoint,
        timeout_seconds=settings.gemini_timeout_seconds,
        fallback=offline,
    )
