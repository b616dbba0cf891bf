"""``--log-format json``: one JSON object per record, with extras and exceptions."""

from __future__ import annotations

import json
import logging

from swarm_ray.core import logs
from swarm_ray.core.logs import ENV_LOG_FORMAT, JsonFormatter, configure_logging, log_format


def test_json_records_carry_time_level_logger_message_extras_and_exception() -> None:
    try:
        raise ValueError("bad bar")
    except ValueError:
        import sys

        record = logging.LogRecord(
            "swarm_ray.run", logging.ERROR, __file__, 1, "cycle %d failed", (7,), sys.exc_info()
        )
    record.symbol = "BTCUSDT"
    out = json.loads(JsonFormatter().format(record))
    assert out["level"] == "ERROR" and out["logger"] == "swarm_ray.run"
    assert out["message"] == "cycle 7 failed" and out["symbol"] == "BTCUSDT"
    assert out["time"].endswith("Z") and "ValueError: bad bar" in out["exception"]


def test_the_cli_option_sets_the_root_handler_and_the_environment(monkeypatch, capsys) -> None:
    monkeypatch.delenv(ENV_LOG_FORMAT, raising=False)
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging("text", "info")
        first = logs._handler
        configure_logging("json", "info")  # replaces its own handler, keeps everyone else's
        assert first not in root.handlers and root.handlers.count(logs._handler) == 1
        sentinel = logging.NullHandler()
        root.addHandler(sentinel)  # someone else's handler survives a reconfiguration
        configure_logging("json", "info")
        assert sentinel in root.handlers
        root.removeHandler(sentinel)
        assert log_format() == "json"
        logging.getLogger("swarm_ray.test").info("hello %s", "world")
        line = capsys.readouterr().err.strip().splitlines()[-1]
        assert json.loads(line)["message"] == "hello world"
    finally:
        root.handlers[:], _ = saved[0], root.setLevel(saved[1])
        monkeypatch.delenv(ENV_LOG_FORMAT, raising=False)
