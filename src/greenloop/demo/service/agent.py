"""The demo agent: analyses a chat message with a tool and composes an answer.

Pure functions; the WebSocket handler in ``app`` streams their results as events.
"""

from __future__ import annotations

import re
from collections import Counter

TOOL_NAME = "text_analyzer"

_STOPWORDS = frozenset(
    {
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "can",
        "do",
        "for",
        "from",
        "how",
        "i",
        "in",
        "is",
        "it",
        "me",
        "my",
        "of",
        "on",
        "or",
        "please",
        "the",
        "this",
        "to",
        "was",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "you",
        "your",
    }
)


def analyze(message: str) -> dict[str, object]:
    """The tool: word count, characters and the most frequent keywords of ``message``."""
    words = re.findall(r"[A-Za-z0-9']+", message.lower())
    keywords = [w for w in words if w not in _STOPWORDS and len(w) > 2]
    top = [w for w, _ in Counter(keywords).most_common(3)]
    return {"word_count": len(words), "characters": len(message), "keywords": top}


def compose_answer(message: str, results: dict[str, object]) -> str:
    """The agent's answer, quoting the user's message and the tool result."""
    keywords = results.get("keywords")
    listed = keywords if isinstance(keywords, list) else []
    topic = ", ".join(str(k) for k in listed) if listed else "no clear keywords"
    return (
        f'You asked: "{message}". The {TOOL_NAME} tool counted {results["word_count"]} words '
        f"({results['characters']} characters); main keywords: {topic}."
    )


def thought(message: str) -> str:
    """The agent_thinking text."""
    return f"Planning how to answer a {len(message)}-character message; using {TOOL_NAME}."
