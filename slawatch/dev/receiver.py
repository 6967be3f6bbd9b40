"""A local alert receiver: the far side of slawatch's HTTP channels, on loopback.

``make demo`` points its webhook, Slack and PagerDuty receivers here to show what would
have paged someone; the tests point senders here to check what was delivered. It answers
the way the real services do:

- ``POST /webhook/{name}``: a slawatch signed webhook
  (:mod:`slawatch.alerting.channels.webhook`). Given a secret for ``name``, the
  ``X-Slawatch-Signature`` must verify (:func:`~slawatch.alerting.channels.webhook.
  verify_signature`, timestamp within five minutes), or the answer is 401 and the request
  is recorded as refused. Without a secret any webhook is accepted (``verified`` None).
- ``POST /slack/{name}``: a Slack incoming webhook: a JSON object with ``text`` or
  ``blocks``; 200 ``ok`` (400 ``invalid_payload`` / ``no_text`` as Slack says).
- ``POST /pagerduty/v2/enqueue``: PagerDuty's Events API v2: 202
  ``{"status": "success", "message": "Event processed", "dedup_key": ...}`` or 400
  ``{"status": "invalid event", "message": "Event object is invalid", "errors": [...]}``.
  Given ``routing_keys`` (key -> name), an unknown key is refused (400) and a known one
  names the delivery; without them, any key is accepted and named by a short hash of it.
- ``GET /-/ready``: 200 ``OK`` once listening.

Every request is an :class:`Attempt` (what was answered and why); an accepted one is also
a :class:`Delivery`, kept in memory, appended as one JSON line to ``log_path`` and
printed as one line with ``echo=True``. Bodies above ``max_body_bytes`` (1 MiB) get 413;
a body that is not JSON gets 400. :meth:`Inbox.fail_next` scripts failures (503, 429
with ``Retry-After``, ...) for the next requests on a path, to test retries.

Two ways to run it: :class:`LocalReceiver` serves on its own event loop in a background
thread (for the demo and the tests, as a context manager), and :func:`serve` runs on the
caller's loop (``python -m slawatch.dev.receiver`` in a separate process).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from aiohttp import web

from slawatch.alerting.channels.common import subject_of
from slawatch.alerting.channels.webhook import IDEMPOTENCY_KEY, SIGNATURE, TIMESTAMP
from slawatch.alerting.channels.webhook import verify_signature as _verify_signature
from slawatch.alerting.escalation import Notification
from slawatch.schemas.sla_events import SlaEventRecord

#: The largest request body read; a larger one is answered 413.
MAX_BODY_BYTES = 1024 * 1024
#: The path of PagerDuty's Events API v2 on this receiver.
PAGERDUTY_PATH = "/pagerduty/v2/enqueue"
#: How long :meth:`LocalReceiver.start` and :meth:`LocalReceiver.stop` wait.
START_TIMEOUT_S = 10.0

Channel = Literal["webhook", "slack", "pagerduty"]
#: ``delivered``: accepted (a :class:`Delivery`); ``failed``: a failure scripted with
#: :meth:`Inbox.fail_next`; ``refused``: a webhook whose signature did not verify (401);
#: ``invalid``: a body that is too large, not JSON or not what the API takes (413, 400).
AttemptOutcome = Literal["delivered", "failed", "refused", "invalid"]

PAGERDUTY_ACTIONS = ("trigger", "acknowledge", "resolve")
PAGERDUTY_SEVERITIES = ("critical", "error", "warning", "info")
_PD_DONE = {"acknowledge": "Acknowledged", "resolve": "Resolved"}
_PD_LIMITS = {"dedup_key": 255, "summary": 1024, "source": 255}


def wall_clock_ms() -> int:
    """Now, in Unix milliseconds (what ``received_at_ms`` holds)."""
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class Delivery:
    """One accepted request: what arrived, where, when, and what it says in one line."""

    channel: Channel
    name: str
    """The receiver's name: ``{name}`` of the path (PagerDuty: the routing key's name)."""
    path: str
    headers: Mapping[str, str] = field(hash=False)
    body: Any = field(hash=False)
    """The parsed JSON body."""
    received_at_ms: int
    """Wall clock (Unix milliseconds) when the request arrived."""
    summary: str
    """What happened to which conversation: ``Breached: ticket 48213, first reply
    (level high)``; a Slack digest gives its count, a PagerDuty resolve its dedup key."""
    verified: bool | None = None
    """A webhook's signature verified (True); None where nothing was checked."""

    @property
    def line(self) -> str:
        """The one line printed with ``echo=True``."""
        return f"alert → {self.channel}/{self.name}: {self.summary}"

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict (one line of the log file)."""
        return {
            "channel": self.channel,
            "name": self.name,
            "path": self.path,
            "headers": dict(self.headers),
            "body": self.body,
            "received_at_ms": self.received_at_ms,
            "summary": self.summary,
            "verified": self.verified,
        }


@dataclass(frozen=True, slots=True)
class Attempt:
    """One request and its answer (every request to a channel's path, accepted or not)."""

    channel: Channel
    name: str
    path: str
    status: int
    outcome: AttemptOutcome
    detail: str
    """Why it was not accepted (empty when delivered)."""
    received_at_ms: int


@dataclass(slots=True)
class _Script:
    """Statuses to answer on a path prefix, in order, instead of handling the request."""

    prefix: str
    statuses: list[int]
    retry_after: int | str | None


class _NotAccepted(Exception):
    """A request answered without a delivery: the answer and the attempt's outcome."""

    def __init__(self, response: web.Response, outcome: AttemptOutcome, detail: str) -> None:
        super().__init__(detail)
        self.response = response
        self.outcome = outcome
        self.detail = detail


class Inbox:
    """What the receiver got: deliveries and attempts (safe to read from any thread),
    and the failures scripted for the next requests."""

    def __init__(self, *, log_path: Path | None = None, echo: bool = False) -> None:
        self.log_path = log_path
        self.echo = echo
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._deliveries: list[Delivery] = []
        self._attempts: list[Attempt] = []
        self._scripts: list[_Script] = []

    @property
    def deliveries(self) -> list[Delivery]:
        """The deliveries so far, oldest first (a copy)."""
        with self._lock:
            return list(self._deliveries)

    @property
    def attempts(self) -> list[Attempt]:
        """Every request so far with its answer, oldest first (a copy)."""
        with self._lock:
            return list(self._attempts)

    def fail_next(
        self,
        path_prefix: str,
        statuses: Sequence[int] = (503, 503),
        retry_after: int | str | None = None,
    ) -> None:
        """Answer the next requests whose path starts with ``path_prefix`` with
        ``statuses``, one each, in order (with ``Retry-After: retry_after`` when given:
        seconds or an HTTP date). They are recorded as ``failed`` attempts, not
        deliveries. Scripts for several prefixes are matched in the order they were made."""
        if not path_prefix.startswith("/"):
            raise ValueError(f"path_prefix {path_prefix!r} must start with /")
        bad = [s for s in statuses if not 400 <= s <= 599]
        if bad:
            raise ValueError(f"not failure statuses (400-599): {bad}")
        with self._lock:
            self._scripts.append(_Script(path_prefix, list(statuses), retry_after))

    def wait_for(self, count: int, timeout_s: float = 10.0) -> list[Delivery]:
        """Block until there are at least ``count`` deliveries (or raise TimeoutError);
        return them all. Blocks the calling thread: not for the receiver's own loop."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._deliveries) >= count, timeout_s):
                raise TimeoutError(
                    f"{len(self._deliveries)} deliveries within {timeout_s} s, "
                    f"not {count}: {[a.detail or a.outcome for a in self._attempts]}"
                )
            return list(self._deliveries)

    def clear(self) -> None:
        """Forget deliveries, attempts and scripted failures."""
        with self._lock:
            self._deliveries.clear()
            self._attempts.clear()
            self._scripts.clear()

    def take_failure(self, path: str) -> tuple[int, int | str | None] | None:
        """The scripted status (and Retry-After) for a request on ``path``, if any."""
        with self._lock:
            for script in self._scripts:
                if path.startswith(script.prefix) and script.statuses:
                    status = script.statuses.pop(0)
                    if not script.statuses:
                        self._scripts.remove(script)
                    return status, script.retry_after
        return None

    def record(self, attempt: Attempt, delivery: Delivery | None = None) -> None:
        """Keep ``attempt`` (and ``delivery``), log and print it."""
        with self._changed:
            self._attempts.append(attempt)
            if delivery is not None:
                self._deliveries.append(delivery)
                if self.log_path is not None:
                    line = json.dumps(delivery.to_json(), ensure_ascii=False)
                    with self.log_path.open("a", encoding="utf-8") as log:
                        log.write(line + "\n")
            self._changed.notify_all()
        if self.echo:
            if delivery is not None:
                print(delivery.line, flush=True)
            else:
                print(
                    f"alert ✗ {attempt.channel}/{attempt.name}: {attempt.status} "
                    f"{attempt.outcome}: {attempt.detail}",
                    flush=True,
                )


# --- What each channel's request says ---------------------------------------------------


def _json_object(raw: bytes) -> dict[str, Any] | None:
    """The body as a JSON object, or None when it is not JSON or not an object."""
    try:
        doc = json.loads(raw)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError both are
        return None
    return doc if isinstance(doc, dict) else None


def _webhook_summary(doc: Mapping[str, Any]) -> str:
    """The notification's subject, in the words of the channels (``common.subject_of``)."""
    notification = doc.get("notification")
    event = doc.get("event")
    if isinstance(notification, dict) and isinstance(event, dict):
        try:
            note = Notification(
                id=str(notification.get("id")),
                cycle_id=str(notification.get("cycle_id")),
                receiver=str(notification.get("receiver")),
                step=str(notification.get("step")),
                kind=notification.get("kind", "trigger"),
                record=SlaEventRecord(**event),
            )
            return subject_of(note)
        except (TypeError, ValueError, AttributeError, KeyError):
            pass
    return f"a webhook of another shape ({len(doc)} fields)"


def _slack_summary(doc: Mapping[str, Any]) -> str:
    text = doc.get("text")
    if not isinstance(text, str) or not text.strip():
        return f"a message of {len(doc.get('blocks') or ())} blocks"
    first = text.strip().splitlines()[0]
    return first.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def pagerduty_errors(doc: Mapping[str, Any], known_keys: Collection[str] | None) -> list[str]:
    """What is wrong with an Events API v2 event (empty when it is valid)."""
    errors: list[str] = []

    def text(value: Any) -> bool:
        return isinstance(value, str) and bool(value.strip())

    key = doc.get("routing_key")
    if not text(key):
        errors.append("'routing_key' is missing or blank")
    elif known_keys is not None and key not in known_keys:
        errors.append("Invalid routing key")
    action = doc.get("event_action")
    if not text(action):
        errors.append("'event_action' is missing or blank")
    elif action not in PAGERDUTY_ACTIONS:
        errors.append(f"'event_action' must be one of {', '.join(PAGERDUTY_ACTIONS)}")
    dedup = doc.get("dedup_key")
    if dedup is not None and not text(dedup):
        errors.append("'dedup_key' must be a non-blank string")
    elif dedup is None and action in _PD_DONE:
        errors.append(f"'dedup_key' is required for event_action {action}")
    elif isinstance(dedup, str) and len(dedup) > _PD_LIMITS["dedup_key"]:
        errors.append("'dedup_key' is longer than 255 characters")
    if action == "trigger":
        payload = doc.get("payload")
        if not isinstance(payload, dict):
            errors.append("'payload' is missing or not an object")
        else:
            for name in ("summary", "source", "severity"):
                if not text(payload.get(name)):
                    errors.append(f"'payload.{name}' is missing or blank")
                elif name in _PD_LIMITS and len(payload[name]) > _PD_LIMITS[name]:
                    errors.append(f"'payload.{name}' is longer than {_PD_LIMITS[name]} characters")
            severity = payload.get("severity")
            if text(severity) and severity not in PAGERDUTY_SEVERITIES:
                errors.append(
                    f"'payload.severity' must be one of {', '.join(PAGERDUTY_SEVERITIES)}"
                )
    return errors


def _key_name(key: str, names: Mapping[str, str] | None) -> str:
    if names is not None and key in names:
        return names[key]
    return "key-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:8]


# --- The application --------------------------------------------------------------------

_Accept = Callable[[web.Request, str, bytes, int], tuple[Delivery, web.Response]]


def receiver_app(
    inbox: Inbox,
    *,
    secrets: Mapping[str, str | bytes] | None = None,
    routing_keys: Mapping[str, str] | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> web.Application:
    """The aiohttp application recording into ``inbox``. ``secrets``: webhook name ->
    the secret its signatures must verify with; ``routing_keys``: PagerDuty routing key
    -> receiver name (when given, other keys are refused)."""
    webhook_secrets = dict(secrets or {})
    key_names = dict(routing_keys) if routing_keys is not None else None

    def endpoint(
        channel: Channel, accept: _Accept
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            name = request.match_info.get("name", channel)
            received = wall_clock_ms()
            try:
                raw = await _read_body(request, max_body_bytes)
                scripted = inbox.take_failure(request.path)
                if scripted is not None:
                    status, retry_after = scripted
                    headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
                    response = web.Response(
                        status=status, text=f"scripted failure {status}", headers=headers
                    )
                    raise _NotAccepted(response, "failed", f"scripted {status}")
                delivery, response = accept(request, name, raw, received)
            except _NotAccepted as no:
                attempt = Attempt(
                    channel, name, request.path, no.response.status, no.outcome, no.detail, received
                )
                inbox.record(attempt)
                return no.response
            inbox.record(
                Attempt(
                    channel, delivery.name, request.path, response.status, "delivered", "", received
                ),
                delivery,
            )
            return response

        return handle

    def webhook(
        request: web.Request, name: str, raw: bytes, received: int
    ) -> tuple[Delivery, web.Response]:
        doc = _json_object(raw)
        if doc is None:
            raise _NotAccepted(
                web.json_response({"error": "the body is not a JSON object"}, status=400),
                "invalid",
                "the body is not a JSON object",
            )
        verified: bool | None = None
        secret = webhook_secrets.get(name)
        if secret is not None:
            timestamp = request.headers.get(TIMESTAMP, "")
            signature = request.headers.get(SIGNATURE, "")
            if not signature or not _verify_signature(secret, timestamp, raw, signature):
                why = "no signature" if not signature else "bad signature or stale timestamp"
                raise _NotAccepted(web.json_response({"error": why}, status=401), "refused", why)
            verified = True
        delivery = Delivery(
            "webhook",
            name,
            request.path,
            dict(request.headers),
            doc,
            received,
            _webhook_summary(doc),
            verified,
        )
        key = request.headers.get(IDEMPOTENCY_KEY)
        return delivery, web.json_response({"status": "accepted", "idempotency_key": key})

    def slack(
        request: web.Request, name: str, raw: bytes, received: int
    ) -> tuple[Delivery, web.Response]:
        doc = _json_object(raw)
        if doc is None:
            raise _NotAccepted(
                web.Response(status=400, text="invalid_payload"), "invalid", "invalid_payload"
            )
        if not doc.get("text") and not doc.get("blocks"):
            raise _NotAccepted(web.Response(status=400, text="no_text"), "invalid", "no_text")
        delivery = Delivery(
            "slack", name, request.path, dict(request.headers), doc, received, _slack_summary(doc)
        )
        return delivery, web.Response(text="ok")

    def pagerduty(
        request: web.Request, name: str, raw: bytes, received: int
    ) -> tuple[Delivery, web.Response]:
        doc = _json_object(raw)
        if doc is None:
            errors = ["Event object is not a JSON object"]
        else:
            errors = pagerduty_errors(doc, None if key_names is None else key_names.keys())
        if doc is None or errors:
            body = {
                "status": "invalid event",
                "message": "Event object is invalid",
                "errors": errors,
            }
            raise _NotAccepted(web.json_response(body, status=400), "invalid", "; ".join(errors))
        action = doc["event_action"]
        dedup_key = doc.get("dedup_key") or uuid.uuid4().hex
        if action == "trigger":
            summary = str(doc["payload"]["summary"])
        else:
            summary = f"{_PD_DONE[action]}: {dedup_key}"
        name = _key_name(doc["routing_key"], key_names)
        # The routing key is a secret: what is kept and logged names it instead.
        kept = {**doc, "routing_key": f"({name})"}
        delivery = Delivery(
            "pagerduty", name, request.path, dict(request.headers), kept, received, summary
        )
        body = {"status": "success", "message": "Event processed", "dedup_key": dedup_key}
        return delivery, web.json_response(body, status=202)

    async def ready(request: web.Request) -> web.StreamResponse:
        return web.Response(text="OK")

    app = web.Application(client_max_size=max_body_bytes)
    app.router.add_post("/webhook/{name}", endpoint("webhook", webhook))
    app.router.add_post("/slack/{name}", endpoint("slack", slack))
    app.router.add_post(PAGERDUTY_PATH, endpoint("pagerduty", pagerduty))
    app.router.add_get("/-/ready", ready)
    return app


async def _read_body(request: web.Request, limit: int) -> bytes:
    """The body, at most ``limit`` bytes (413 above, announced or not)."""
    if request.content_length is not None and request.content_length > limit:
        why = f"body of {request.content_length} bytes, over {limit}"
    else:
        try:
            return await request.read()
        except web.HTTPRequestEntityTooLarge:
            why = f"body over {limit} bytes"
    raise _NotAccepted(web.Response(status=413, text=why), "invalid", why)


def _listening_socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


async def _start(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, str]:
    """Serve ``app`` on ``host:port`` (0: a free port); the runner and the base URL."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    try:
        sock = _listening_socket(host, port)
        try:
            await web.SockSite(runner, sock).start()
        except BaseException:
            sock.close()
            raise
        bound = sock.getsockname()[1]
    except BaseException:
        await runner.cleanup()
        raise
    shown = f"[{host}]" if ":" in host else host
    return runner, f"http://{shown}:{bound}"


# --- Running it -------------------------------------------------------------------------


class LocalReceiver(Inbox):
    """The receiver on 127.0.0.1, served by its own event loop in a background thread.

    ``with LocalReceiver(secrets={"hook": "s3cret"}) as rx:`` then point receivers at
    ``rx.webhook_url("hook")``, ``rx.slack_url("team")`` or ``rx.pagerduty_url`` and read
    ``rx.deliveries``. Start and stop it from one thread.
    """

    host = "127.0.0.1"

    def __init__(
        self,
        *,
        port: int = 0,
        secrets: Mapping[str, str | bytes] | None = None,
        routing_keys: Mapping[str, str] | None = None,
        log_path: Path | None = None,
        echo: bool = False,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        super().__init__(log_path=log_path, echo=echo)
        self.port = port
        self._app_options: dict[str, Any] = {
            "secrets": secrets,
            "routing_keys": routing_keys,
            "max_body_bytes": max_body_bytes,
        }
        self._url: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """The base URL, ``http://127.0.0.1:PORT`` (once started)."""
        if self._url is None:
            raise RuntimeError("the receiver is not started")
        return self._url

    def webhook_url(self, name: str) -> str:
        return f"{self.url}/webhook/{name}"

    def slack_url(self, name: str) -> str:
        return f"{self.url}/slack/{name}"

    @property
    def pagerduty_url(self) -> str:
        return f"{self.url}{PAGERDUTY_PATH}"

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        """Listen (on a free port when ``port`` is 0); return once requests are taken."""
        if self._thread is not None:
            raise RuntimeError("the receiver is already started")
        loop = asyncio.new_event_loop()
        thread = threading.Thread(
            target=_run_loop, args=(loop,), name="slawatch-local-receiver", daemon=True
        )
        thread.start()
        self._loop, self._thread = loop, thread
        try:
            app = receiver_app(self, **self._app_options)
            started = asyncio.run_coroutine_threadsafe(_start(app, self.host, self.port), loop)
            self._runner, self._url = started.result(START_TIMEOUT_S)
        except BaseException:
            self.stop()
            raise
        self.port = int(self._url.rsplit(":", 1)[1])

    def stop(self) -> None:
        """Stop listening, finish the requests in flight (2 s at most), end the thread."""
        loop, thread, runner = self._loop, self._thread, self._runner
        if loop is None or thread is None:
            return
        try:
            if runner is not None:
                asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(START_TIMEOUT_S)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(START_TIMEOUT_S)
            self._loop = self._thread = self._runner = None
            self._url = None

    def __enter__(self) -> LocalReceiver:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
    """The background thread: run ``loop`` until stopped, then close it cleanly."""
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


async def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    inbox: Inbox | None = None,
    secrets: Mapping[str, str | bytes] | None = None,
    routing_keys: Mapping[str, str] | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
    ready: Callable[[str], None] | None = None,
    stop: asyncio.Event | None = None,
) -> Inbox:
    """Serve on ``host:port`` on the running loop until ``stop`` is set (or the task is
    cancelled); ``ready(url)`` is called once listening. Records into ``inbox`` (a new
    one that echoes by default), which is returned."""
    if inbox is None:
        inbox = Inbox(echo=True)
    app = receiver_app(
        inbox, secrets=secrets, routing_keys=routing_keys, max_body_bytes=max_body_bytes
    )
    runner, url = await _start(app, host, port)
    try:
        if ready is not None:
            ready(url)
        await (stop or asyncio.Event()).wait()
    finally:
        await runner.cleanup()
    return inbox


def _pairs(values: Sequence[str], what: str) -> dict[str, str]:
    """``NAME=VAR`` options -> {NAME: value of the environment variable VAR}."""
    out = {}
    for value in values:
        name, sep, var = value.partition("=")
        if not sep or not name or not var:
            raise SystemExit(f"--{what} takes NAME=ENV_VAR, not {value!r}")
        if var not in os.environ:
            raise SystemExit(f"--{what} {value}: the environment variable {var} is not set")
        out[name] = os.environ[var]
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m slawatch.dev.receiver``: serve until Ctrl-C or SIGTERM."""
    parser = argparse.ArgumentParser(
        prog="python -m slawatch.dev.receiver", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 (the default): a free port")
    parser.add_argument(
        "--secret",
        action="append",
        default=[],
        metavar="NAME=ENV_VAR",
        help="verify /webhook/NAME with the secret in the environment variable ENV_VAR",
    )
    parser.add_argument(
        "--routing-key",
        action="append",
        default=[],
        metavar="NAME=ENV_VAR",
        help="accept the PagerDuty routing key in ENV_VAR as receiver NAME (then only those)",
    )
    parser.add_argument("--log", type=Path, help="append each delivery as a JSON line here")
    parser.add_argument("--quiet", action="store_true", help="print no line per delivery")
    args = parser.parse_args(argv)
    secrets = _pairs(args.secret, "secret")
    keys = {key: name for name, key in _pairs(args.routing_key, "routing-key").items()}

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)

        def ready(url: str) -> None:
            print(f"slawatch receiver listening on {url}", flush=True)

        await serve(
            args.host,
            args.port,
            inbox=Inbox(log_path=args.log, echo=not args.quiet),
            secrets=secrets,
            routing_keys=keys or None,
            ready=ready,
            stop=stop,
        )

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
