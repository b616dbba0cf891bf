"""A fake Groq (OpenAI-compatible chat completions) on loopback, for the real ``groq`` SDK.

Answers are queued with ``queue(...)``: ``good(score, confidence)``, ``("garbage", text)``,
``("slow", seconds)``, ``("429", retry_after)``, ``("500", None)``. With an empty queue it
answers a fixed good sentiment. It checks the bearer key and records every request body.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections import deque
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.fakes.loopback import LoopbackServer

FAKE_GROQ_KEY = "gsk_fake_test_key_0123456789"


def good(score: float = 0.4, confidence: float = 0.7) -> tuple[str, str]:
    body = {
        "score": score,
        "confidence": confidence,
        "reasoning": "Bids outweigh asks; tight spread.",
        "key_factors": ["book imbalance", "tight spread"],
        "recommended_action": "buy" if score > 0 else "sell" if score < 0 else "hold",
    }
    return ("content", json.dumps(body))


class FakeGroq(LoopbackServer):
    def __init__(self, api_key: str = FAKE_GROQ_KEY) -> None:
        self.api_key = api_key
        self.answers: deque[tuple[str, Any]] = deque()
        self.requests: list[dict[str, Any]] = []

    def queue(self, *answers: tuple[str, Any]) -> None:
        self.answers.extend(answers)

    def start(self) -> str:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                fake._handle(self)

        return self.serve(Handler)

    def _send(
        self,
        h: BaseHTTPRequestHandler,
        status: int,
        body: bytes,
        headers: dict[str, str] | None = None,
    ) -> None:
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        with contextlib.suppress(OSError):  # the client may have given up (timeout test)
            h.wfile.write(body)

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length)
        if h.path != "/openai/v1/chat/completions":
            self._send(h, 404, b'{"error": {"message": "not found"}}')
            return
        if h.headers.get("Authorization") != f"Bearer {self.api_key}":
            self._send(h, 401, b'{"error": {"message": "Invalid API Key"}}')
            return
        req = json.loads(raw)
        self.requests.append(req)
        kind, arg = self.answers.popleft() if self.answers else good()
        if kind == "429":
            err = b'{"error": {"message": "Rate limit reached", "type": "rate_limit"}}'
            self._send(h, 429, err, {"retry-after": str(arg)})
            return
        if kind == "500":
            self._send(h, 500, b'{"error": {"message": "internal"}}')
            return
        if kind == "slow":
            time.sleep(float(arg))
            kind, arg = good()
        content = arg  # "content" or "garbage": the text the model said
        body = {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": req.get("model"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
        }
        self._send(h, 200, json.dumps(body).encode())
