"""A client of an OpenAI-compatible chat-completions server (OpenAI, a local ``vllm serve``, ...): the engine of the
LLM judges.

It sends ``{"model", "messages", <decoding fields>, <extra_body>}`` and returns the first choice's message text. A
server error is retried (the wait grows by ``backoff`` seconds per try); an answer that no retry can heal (400,
401, 403, 404: a wrong model name, key or request) stops at once. Failing, it raises :class:`ChatError` naming the
endpoint and the last failure, never an empty reply.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

CHAT_PATH = "/chat/completions"
FINAL_HTTP_CODES = (400, 401, 403, 404)  # a wrong model name or key does not heal by retrying


class ChatError(RuntimeError):
    """The server could not be asked, or did not answer with a chat completion."""

    def __init__(self, endpoint: str, model: str, tries: int, last: str) -> None:
        super().__init__(f"chat model {model!r} at {endpoint} failed after {tries} tries: {last}")
        self.endpoint, self.model, self.tries, self.last = endpoint, model, tries, last


def chat_url(url: str) -> str:
    """The chat-completions endpoint of ``url``: kept if it already is one, else ``/chat/completions`` appended."""
    url = url.rstrip("/")
    return url if url.endswith(CHAT_PATH) else url + CHAT_PATH


@dataclass
class ChatClient:
    """``POST <url>/chat/completions``; ``extra_body`` is merged into every request (server-specific options)."""

    url: str
    model: str
    api_key: str | None = None
    timeout: float = 120.0
    retries: int = 3
    backoff: float = 2.0
    extra_body: dict = field(default_factory=dict)

    def endpoint(self) -> str:
        return chat_url(self.url)

    def request_body(self, messages: list[dict], **decoding) -> dict:
        """The JSON body sent: the model, the messages, the decoding fields, then ``extra_body``."""
        return {"model": self.model, "messages": messages, **decoding, **(self.extra_body or {})}

    def complete(self, messages: list[dict], **decoding) -> str:
        """The reply text to ``messages`` (``decoding``: temperature, top_p, max_tokens, ... as the API names
        them)."""
        body = json.dumps(self.request_body(messages, **decoding)).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        last, tries = "", 0
        for attempt in range(max(1, self.retries)):
            if attempt:
                time.sleep(self.backoff * attempt)
            tries += 1
            try:
                request = urllib.request.Request(self.endpoint(), data=body, headers=headers, method="POST")
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    payload = json.loads(response.read().decode("utf-8"))
                content = payload["choices"][0]["message"]["content"]
                if not isinstance(content, str):
                    raise TypeError(f"message content is {type(content).__name__}")
                return content
            except urllib.error.HTTPError as exc:
                detail = exc.read().decode("utf-8", "replace")[:300]
                last = f"HTTP {exc.code} from {self.endpoint()}: {detail}"
                if exc.code in FINAL_HTTP_CODES:
                    break
            except (urllib.error.URLError, OSError, TimeoutError) as exc:
                last = f"cannot reach {self.endpoint()}: {exc}"
            except (KeyError, IndexError, TypeError, ValueError) as exc:
                last = f"{self.endpoint()} answered something that is not a chat completion ({exc})"
        raise ChatError(self.endpoint(), self.model, tries, last)
