"""Compatibility check: the official `openai` Python package, unmodified, against a running gateway.

Usage:
    python test/python/sdk_check.py [BASE_URL] [API_KEY] [--video-bytes N]

BASE_URL is the gateway's root (``/v1`` is appended when missing); API_KEY a client key. Either may come
from the environment instead: GATEWAY_URL (or OPENAI_BASE_URL) and GATEWAY_API_KEY (or OPENAI_API_KEY).
--video-bytes (or EXPECT_VIDEO_BYTES) is the size every generated video has; the simulated upstream fills
byte i with i % 251. Prints one line per check; exits 1 on the first failure, 2 on bad usage.

Only the openai package and the standard library are used.
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import signal
import sys
import time
import warnings
from typing import Any, Callable, NoReturn

import openai

# openai marks the Videos API as deprecated (Sora's shutdown); the warning is noise here.
warnings.filterwarnings("ignore", category=DeprecationWarning)

# A real 1x1 PNG: the gateway sniffs magic numbers, the upstream wants an image part.
PNG_1X1 = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
VIDEO_ID = re.compile(r"^video_[0-9a-f]{32}$")
ALIASES = {"sora-2": "grok-video-3"}
POLL_INTERVAL_S = 0.05
POLL_DEADLINE_S = 20.0
OVERALL_DEADLINE_S = 90


def video_byte(i: int) -> int:
    return i % 251


class CheckFailed(Exception):
    pass


def ok(label: str) -> None:
    print(f"ok   {label}", flush=True)


def fail(label: str, detail: str) -> NoReturn:
    raise CheckFailed(f"{label}: {detail}")


def expect(cond: bool, label: str, detail: str) -> None:
    if not cond:
        fail(label, detail)


def describe_error(e: BaseException) -> str:
    if isinstance(e, openai.APIStatusError):
        return f"{type(e).__name__} status={e.status_code} request_id={e.request_id} body={e.body!r}"
    return f"{type(e).__name__}: {e}"


def call(label: str, fn: Callable[[], Any]) -> Any:
    """Runs an SDK call; any exception becomes a failure of `label` that says what the SDK raised."""
    try:
        return fn()
    except CheckFailed:
        raise
    except Exception as e:  # noqa: BLE001 - every SDK error is a failed check
        fail(label, f"raised {describe_error(e)}")


def check_video_object(label: str, v: Any, *, model: str, seconds: str, size: str) -> None:
    expect(isinstance(v, openai.types.Video), label, f"expected a Video, got {type(v).__name__}")
    expect(bool(VIDEO_ID.match(v.id)), label, f"id {v.id!r} is not video_<32 hex>")
    expect(v.object == "video", label, f"object is {v.object!r}")
    # An alias may be answered under its own name or its target's.
    models = (model, ALIASES[model]) if model in ALIASES else (model,)
    expect(v.model in models, label, f"model is {v.model!r}, expected one of {models!r}")
    expect(v.seconds == seconds, label, f"seconds is {v.seconds!r} ({type(v.seconds).__name__}), expected the string {seconds!r}")
    expect(v.size == size, label, f"size is {v.size!r}, expected {size!r}")
    expect(v.status in ("queued", "in_progress", "completed", "failed"), label, f"status {v.status!r} is not an OpenAI status")


def wait_completed(client: openai.OpenAI, label: str, video_id: str) -> Any:
    deadline = time.monotonic() + POLL_DEADLINE_S
    while True:
        v = call(label, lambda: client.videos.retrieve(video_id))
        if v.status == "completed":
            return v
        expect(v.status in ("queued", "in_progress"), label, f"status became {v.status!r} (error={v.error!r})")
        expect(time.monotonic() < deadline, label, f"still {v.status!r} after {POLL_DEADLINE_S}s")
        time.sleep(POLL_INTERVAL_S)


def check_completed(label: str, v: Any, video_id: str) -> None:
    expect(v.id == video_id, label, f"id is {v.id!r}")
    expect(v.status == "completed", label, f"status is {v.status!r} (error={v.error!r})")
    expect(v.progress == 100, label, f"progress is {v.progress!r}")
    expect(isinstance(v.completed_at, int) and v.completed_at > 0, label, f"completed_at is {v.completed_at!r}")
    expect(v.error is None, label, f"error is {v.error!r}")


def check_content(label: str, data: bytes, video_bytes: int | None) -> None:
    if video_bytes is not None:
        expect(len(data) == video_bytes, label, f"got {len(data)} bytes, expected {video_bytes}")
    expect(len(data) > 0, label, "empty body")
    n = len(data)
    for i in sorted({0, 1, 250, 251, 252, n // 3, n // 2, 12_345 % n, n - 1}):
        expect(data[i] == video_byte(i), label, f"byte {i} is {data[i]}, expected {video_byte(i)}")


def listed_ids(client: openai.OpenAI, label: str) -> list[str]:
    """Every id the list endpoint yields, following the SDK's own auto-pagination (`after=last_id`)."""
    ids: list[str] = []
    page = call(label, lambda: client.videos.list(limit=100))
    for _ in range(100):
        ids.extend(v.id for v in page.data)
        if not page.has_next_page():
            return ids
        page = call(label, page.get_next_page)
    fail(label, "more than 100 pages: has_more/last_id never end")


def run_case(
    client: openai.OpenAI, *, model: str, reference: Any, ref_label: str, poll_helper: bool, video_bytes: int | None, size: str = "1280x720"
) -> None:
    tag = f"{model} [{ref_label}]"
    seconds = "8"
    kwargs: dict[str, Any] = {"model": model, "prompt": "a lighthouse at dawn", "seconds": seconds, "size": size}
    if reference is not None:
        kwargs["input_reference"] = reference

    if poll_helper:
        label = f"{tag} videos.create_and_poll"
        v = call(label, lambda: client.videos.create_and_poll(**kwargs, poll_interval_ms=int(POLL_INTERVAL_S * 1000)))
        check_video_object(label, v, model=model, seconds=seconds, size=size)
        check_completed(label, v, v.id)
        video_id = v.id
        ok(f"{label} -> {video_id} completed (model {v.model!r})")
    else:
        label = f"{tag} videos.create"
        v = call(label, lambda: client.videos.create(**kwargs))
        check_video_object(label, v, model=model, seconds=seconds, size=size)
        expect(v.status in ("queued", "in_progress"), label, f"a fresh job is {v.status!r}")
        video_id = v.id
        ok(f"{label} -> {video_id} {v.status} (model {v.model!r})")

        label = f"{tag} videos.retrieve until completed"
        done = wait_completed(client, label, video_id)
        check_video_object(label, done, model=model, seconds=seconds, size=size)
        check_completed(label, done, video_id)
        ok(label)

    label = f"{tag} videos.download_content"
    content = call(label, lambda: client.videos.download_content(video_id))
    check_content(label, content.content, video_bytes)
    ok(f"{label} ({len(content.content)} bytes, pattern i % 251)")

    label = f"{tag} videos.list"
    ids = listed_ids(client, label)
    expect(video_id in ids, label, f"{video_id} not among {len(ids)} listed ids")
    ok(f"{label} contains {video_id}")

    label = f"{tag} videos.delete"
    deleted = call(label, lambda: client.videos.delete(video_id))
    expect(deleted.deleted is True, label, f"deleted is {deleted.deleted!r}")
    expect(deleted.id == video_id, label, f"id is {deleted.id!r}")
    expect(deleted.object == "video.deleted", label, f"object is {deleted.object!r}")
    ok(label)

    label = f"{tag} videos.retrieve after delete"
    try:
        gone = client.videos.retrieve(video_id)
    except openai.NotFoundError as e:
        expect(e.status_code == 404, label, f"status {e.status_code}")
        ok(f"{label} raises NotFoundError")
    except Exception as e:  # noqa: BLE001
        fail(label, f"expected NotFoundError, got {describe_error(e)}")
    else:
        fail(label, f"expected NotFoundError, got a video with status {gone.status!r}")


def derived_byte(prompt: str, i: int) -> int:
    """A derived video's bytes: the pattern shifted by a seed from its prompt (the simulator's derivedSeed)."""
    return (i + sum(prompt.encode("utf-8")) % 250 + 1) % 251


def derive(client: openai.OpenAI, op: str, source_id: str, prompt: str) -> Any:
    if op == "remix":
        return client.videos.remix(source_id, prompt=prompt)
    method = client.videos.extend if op == "extend" else client.videos.edit
    args: dict[str, Any] = {"prompt": prompt, **({"seconds": "4"} if op == "extend" else {})}
    try:
        return method(**args, video={"id": source_id})
    except RuntimeError as e:
        # These SDKs take `video` for a file part only and refuse `{"id": ...}` before sending anything (their
        # own bug); the same request goes out with the reference in extra_body, as `video[id]` in the form.
        if "Expected entry at `video`" not in str(e):
            raise
        print(f"note: videos.{op}(video={{'id': ...}}) raised in the SDK itself; sent via extra_body", flush=True)
        return method(**args, video=openai.NOT_GIVEN, extra_body={"video": {"id": source_id}})


def run_derived(client: openai.OpenAI, *, model: str, ops: list[str], unsupported: list[str], video_bytes: int | None) -> None:
    """Remix, extend and edit a completed video (§9); the new video completes and downloads with its own bytes."""
    label = f"{model} source for derived videos"
    src = call(label, lambda: client.videos.create(model=model, prompt="a harbour at night", seconds="8", size="1280x720"))
    wait_completed(client, label, src.id)
    ok(f"{label} -> {src.id} completed")
    for op in ops:
        if not hasattr(client.videos, op):
            print(f"note: this openai has no videos.{op}; skipped", flush=True)
            continue
        tag = f"{model} videos.{op}"
        prompt = f"{op}: the harbour at dawn"
        v = call(tag, lambda: derive(client, op, src.id, prompt))
        seconds = "4" if op == "extend" else "8"
        check_video_object(tag, v, model=model, seconds=seconds, size="1280x720")
        expected_from = src.id if op == "remix" else None
        expect(v.remixed_from_video_id == expected_from, tag, f"remixed_from_video_id is {v.remixed_from_video_id!r}, expected {expected_from!r}")
        done = wait_completed(client, tag, v.id)
        check_completed(tag, done, v.id)
        data = call(tag, lambda: client.videos.download_content(v.id)).content
        if video_bytes is not None:
            expect(len(data) == video_bytes, tag, f"got {len(data)} bytes, expected {video_bytes}")
        for i in sorted({0, 1, 250, len(data) // 2, len(data) - 1}):
            expect(data[i] == derived_byte(prompt, i), tag, f"byte {i} is {data[i]}, expected {derived_byte(prompt, i)}")
        ok(f"{tag} -> {v.id} completed and downloaded ({len(data)} bytes of its own)")
    for op in unsupported:
        if not hasattr(client.videos, op):
            continue
        tag = f"{model} videos.{op} (unsupported here)"
        try:
            v = derive(client, op, src.id, "p")
        except openai.BadRequestError as e:
            body = e.body if isinstance(e.body, dict) else {}
            expect(body.get("code") == "unsupported_operation", tag, f"code is {body.get('code')!r}; body={e.body!r}")
            expect(e.param == "video", tag, f"param is {e.param!r}")
            ok(f"{tag} raises BadRequestError unsupported_operation")
        except Exception as e:  # noqa: BLE001
            fail(tag, f"expected BadRequestError, got {describe_error(e)}")
        else:
            fail(tag, f"expected BadRequestError, got a video {v.id!r}")


def check_bad_model(client: openai.OpenAI) -> None:
    label = "videos.create(model='no-such-model')"
    try:
        v = client.videos.create(model="no-such-model", prompt="x", seconds="8", size="1280x720")
    except openai.BadRequestError as e:
        body = e.body if isinstance(e.body, dict) else {}
        expect(body.get("param") == "model", label, f"body.param is {body.get('param')!r}; body={e.body!r}")
        expect(e.param == "model", label, f"error.param is {e.param!r}")
        expect(isinstance(body.get("message"), str) and body["message"] != "", label, f"no message in {e.body!r}")
        expect(bool(e.request_id), label, "no x-request-id header on the error")
        ok(f"{label} raises BadRequestError param='model' ({body.get('code')!r})")
    except Exception as e:  # noqa: BLE001
        fail(label, f"expected BadRequestError, got {describe_error(e)}")
    else:
        fail(label, f"expected BadRequestError, got a video {v.id!r}")


def check_idempotency_key(client: openai.OpenAI, model: str, reference: Any) -> None:
    """The SDK sends no key of its own; one passed per request (extra_headers) makes a repeat answer the first video."""
    key = f"sdk-check-{os.getpid()}-{time.time_ns()}"
    headers = {"Idempotency-Key": key}
    label = f"videos.create({model!r}, Idempotency-Key) twice"
    # A reference file: multipart in 3.x, so the repeat goes out with another boundary.
    first = call(label, lambda: client.videos.with_raw_response.create(model=model, prompt="idempotent", seconds="8", input_reference=reference, extra_headers=headers))
    again = call(label, lambda: client.videos.with_raw_response.create(model=model, prompt="idempotent", seconds="8", input_reference=reference, extra_headers=headers))
    expect(first.parse().id == again.parse().id, label, f"two videos: {first.parse().id!r} and {again.parse().id!r}")
    expect(again.headers.get("idempotent-replayed") == "true", label, f"idempotent-replayed is {again.headers.get('idempotent-replayed')!r}")
    ok(f"{label}: one video {first.parse().id!r}, the repeat marked as replayed")
    label = f"videos.create({model!r}, same Idempotency-Key, another prompt)"
    try:
        v = client.videos.create(model=model, prompt="another", seconds="8", input_reference=reference, extra_headers=headers)
    except openai.ConflictError as e:
        body = e.body if isinstance(e.body, dict) else {}
        expect(body.get("code") == "idempotency_key_reused", label, f"body={e.body!r}")
        ok(f"{label} raises ConflictError idempotency_key_reused")
    except Exception as e:  # noqa: BLE001
        fail(label, f"expected ConflictError, got {describe_error(e)}")
    else:
        fail(label, f"expected ConflictError, got a video {v.id!r}")


def check_budget_refusal(base_url: str, key: str) -> None:
    """A key whose dollar budget covers one video and not two (§10): the second create is a RateLimitError with
    code insufficient_quota and x-should-retry: false, which the SDK must not retry though it may (max_retries=3);
    the caller counts the requests the gateway saw."""
    client = openai.OpenAI(base_url=base_url, api_key=key, max_retries=3, timeout=30.0)
    kwargs: dict[str, Any] = {"model": "grok-imagine-video", "prompt": "a budget", "seconds": "8", "size": "1280x720"}
    label = "videos.create within a dollar budget"
    call(label, lambda: client.videos.create(**kwargs))
    ok(label)
    label = "videos.create past a dollar budget"
    try:
        v = client.videos.create(**kwargs)
    except openai.RateLimitError as e:
        body = e.body if isinstance(e.body, dict) else {}
        expect(body.get("code") == "insufficient_quota", label, f"code is {body.get('code')!r}; body={e.body!r}")
        expect(e.response.headers.get("x-should-retry") == "false", label, f"x-should-retry is {e.response.headers.get('x-should-retry')!r}")
        expect("estimated at $" in str(body.get("message")), label, f"the message names no estimate: {body.get('message')!r}")
        ok(f"{label} raises RateLimitError insufficient_quota, x-should-retry: false")
    except Exception as e:  # noqa: BLE001
        fail(label, f"expected RateLimitError, got {describe_error(e)}")
    else:
        fail(label, f"expected RateLimitError, got a video {v.id!r}")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("base_url", nargs="?", default=os.environ.get("GATEWAY_URL") or os.environ.get("OPENAI_BASE_URL"))
    p.add_argument("api_key", nargs="?", default=os.environ.get("GATEWAY_API_KEY") or os.environ.get("OPENAI_API_KEY"))
    p.add_argument("--video-bytes", type=int, default=int(os.environ["EXPECT_VIDEO_BYTES"]) if os.environ.get("EXPECT_VIDEO_BYTES") else None)
    # The models the gateway's upstream serves (an xAI upstream knows only grok-imagine-video), and the one
    # used for the several-references case.
    p.add_argument("--models", default="grok-imagine-video,grok-video-3,sora-2")
    p.add_argument("--multi-reference-model", default="grok-video-3")
    # A model with a 1080p tier that both upstream kinds serve.
    p.add_argument("--hd-model", default="grok-imagine-video-1.5")
    # Derived videos (§9): the source model, the operations its upstream supports, and those it refuses.
    p.add_argument("--derive-model", default="grok-video-3")
    p.add_argument("--derive-ops", default="remix,extend")
    p.add_argument("--unsupported-ops", default="edit")
    # A key whose team's dollar budget covers one 8 s grok-imagine-video at 720p and not two.
    p.add_argument("--budget-key", default=None)
    a = p.parse_args(argv)
    if not a.base_url or not a.api_key:
        p.error("base URL and API key are required (arguments, or GATEWAY_URL and GATEWAY_API_KEY)")
    return a


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    base_url = args.base_url.rstrip("/")
    if not base_url.endswith("/v1"):
        base_url += "/v1"

    def on_alarm(_sig: int, _frame: object) -> None:
        raise CheckFailed(f"overall deadline of {OVERALL_DEADLINE_S}s passed")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(OVERALL_DEADLINE_S)

    print(f"openai {openai.__version__} (Python {sys.version.split()[0]}) -> {base_url}", flush=True)
    client = openai.OpenAI(base_url=base_url, api_key=args.api_key, max_retries=0, timeout=30.0)
    has_poll_helper = hasattr(client.videos, "create_and_poll")
    if not has_poll_helper:
        print("note: this openai has no videos.create_and_poll; polling with videos.retrieve only", flush=True)

    reference = ("ref.png", PNG_1X1, "image/png")
    try:
        for model in args.models.split(","):
            run_case(client, model=model, reference=None, ref_label="no reference", poll_helper=False, video_bytes=args.video_bytes)
            run_case(client, model=model, reference=reference, ref_label="input_reference file", poll_helper=has_poll_helper, video_bytes=args.video_bytes)
        # 1080p where the model has it (and the OpenAI size nearest to it).
        if args.hd_model:
            run_case(client, model=args.hd_model, reference=None, ref_label="1080p", poll_helper=False, video_bytes=args.video_bytes, size="1920x1080")
        # A list of files goes out as repeated `input_reference[]` parts (the SDK's array format).
        run_case(
            client,
            model=args.multi_reference_model,
            reference=[reference, ("ref2.png", PNG_1X1, "image/png")],
            ref_label="input_reference[] two files",
            poll_helper=False,
            video_bytes=args.video_bytes,
        )
        run_derived(
            client,
            model=args.derive_model,
            ops=[o for o in args.derive_ops.split(",") if o],
            unsupported=[o for o in args.unsupported_ops.split(",") if o],
            video_bytes=args.video_bytes,
        )
        check_bad_model(client)
        check_idempotency_key(client, args.multi_reference_model, reference)
        if args.budget_key:
            check_budget_refusal(base_url, args.budget_key)
    except CheckFailed as e:
        print(f"FAIL {e}", flush=True)
        return 1
    finally:
        signal.alarm(0)
    print("all checks passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
