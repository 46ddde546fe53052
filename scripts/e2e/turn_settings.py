"""Thinking, effort and model per turn (issue 31), through the real `claude`
CLI and fake_anthropic.py, with each API's own SDK on its defaults:

- the OpenAI SDK's chat with `reasoning_effort`: the effort reaches the API
  (output_config.effort), and the thinking comes back as `reasoning_content`,
  whole and streamed;
- the OpenAI SDK's Responses with `reasoning.summary`: a `reasoning` item
  whose summary is the thinking;
- the Anthropic SDK with `thinking` on, streamed: a signed `thinking` block
  first; the SDK then sends the whole conversation back, thinking block
  included, and the session goes on warm;
- a session's next turn with another model: the fake API sees the new model,
  the answer says the process was warm, and the time of such a turn is
  printed next to a warm turn without a switch (the closing note's figure);
- a session's context as `GET /v1/sessions/{id}` shows it, before and after
  a `/compact` message, which the CLI takes as its command: the compaction
  is counted there and in /metrics.

The fake API thinks aloud (THINK-ALOUD in the prompt) only when the request
turned thinking on, reports those 3 words as thinking tokens, and keeps each
request's thinking and effort.
"""

import json
import statistics
import time
import urllib.request

import anthropic
import openai

from common import check

API_KEY = "sk-cca-e2e-0123456789abcdef"  # the server's own client key (run_e2e.py's)
CLAUDE = {"X-Claude-Code": "true"}
THOUGHT = "Weighing it up."
SIGNATURE = "c2lnLWZha2U="


def _chat(ctx, **kw):
    raw = ctx.main.client().chat.completions.with_raw_response.create(
        extra_headers={**CLAUDE, **kw.pop("headers", {})}, **kw)
    return raw.parse(), raw.headers


def _last_upstream(ctx):
    return ctx.anthropic.messages_records()[-1]


def test_chat_reasoning_effort_and_content(ctx):
    prompt = [{"role": "user", "content": "THINK-ALOUD hello"}]
    c, _ = _chat(ctx, model="sonnet", messages=prompt, reasoning_effort="high")
    seen = _last_upstream(ctx)
    check(seen["effort"] == "high", f"the API saw effort {seen['effort']!r}")
    message = c.choices[0].message
    thought = (message.model_extra or {}).get("reasoning_content")
    check(thought == THOUGHT, f"reasoning_content {thought!r}")
    check("turns=1" in (message.content or ""), message.content)
    reasoning = c.usage.completion_tokens_details.reasoning_tokens
    check(reasoning == 3, f"reasoning_tokens {reasoning} (the API reported 3)")
    stream = ctx.main.client().chat.completions.create(
        model="sonnet", messages=prompt, stream=True, reasoning_effort="low",
        extra_headers=CLAUDE)
    pieces = []
    for chunk in stream:
        for choice in chunk.choices:
            pieces.append((choice.delta.model_extra or {}).get("reasoning_content") or "")
    check("".join(pieces) == THOUGHT, f"streamed reasoning {''.join(pieces)!r}")
    check(_last_upstream(ctx)["effort"] == "low", _last_upstream(ctx))
    # Asked nothing: no thinking shown, and the CLI's own effort again.
    c, _ = _chat(ctx, model="sonnet", messages=prompt)
    extra = c.choices[0].message.model_extra or {}
    check("reasoning_content" not in extra, f"unasked reasoning {extra}")


def test_responses_reasoning_summary(ctx):
    r = ctx.main.client().responses.create(
        model="gpt-5", input="THINK-ALOUD hello", extra_headers=CLAUDE,
        reasoning={"effort": "medium", "summary": "auto"})
    kinds = [item.type for item in r.output]
    check(kinds[:2] == ["reasoning", "message"], f"output {kinds}")
    summary = [part.text for part in r.output[0].summary]
    check(summary == [THOUGHT], f"summary {summary}")
    check(_last_upstream(ctx)["effort"] == "medium", _last_upstream(ctx))
    check("turns=1" in r.output_text, r.output_text)
    reasoning = r.usage.output_tokens_details.reasoning_tokens
    check(reasoning == 3, f"reasoning_tokens {reasoning} (the API reported 3)")


def test_anthropic_thinking_stream_and_send_back(ctx):
    client = anthropic.Anthropic(base_url=ctx.main.url(), api_key=API_KEY, max_retries=0,
                                 timeout=60)
    question = {"role": "user", "content": "THINK-ALOUD hello"}
    with client.messages.stream(model="claude-sonnet-4-6", max_tokens=4096,
                                thinking={"type": "enabled", "budget_tokens": 2048},
                                messages=[question]) as stream:
        thought = "".join(e.thinking for e in stream if e.type == "thinking")
        final = stream.get_final_message()
    check(thought == THOUGHT, f"streamed thinking {thought!r}")
    first = final.content[0]
    check(first.type == "thinking" and first.thinking == THOUGHT
          and first.signature == SIGNATURE, f"first block {first}")
    check(final.content[1].type == "text", f"content {final.content}")
    # The conversation sent back whole, thinking block and all, as the SDK
    # docs show a multi-turn exchange.
    raw = client.messages.with_raw_response.create(
        model="claude-sonnet-4-6", max_tokens=4096,
        thinking={"type": "enabled", "budget_tokens": 2048},
        messages=[question, {"role": "assistant", "content": final.content},
                  {"role": "user", "content": "and then?"}])
    again = raw.parse()
    check(raw.headers.get("x-claude-warm") == "true", dict(raw.headers))
    check(again.content[-1].type == "text" and "turns=2" in again.content[-1].text,
          f"second answer {again.content}")


def test_model_switch_stays_warm(ctx):
    """Turns alternating sonnet and opus on one session all run warm; the
    figures compare a turn after a switch with one without."""
    prompt = [{"role": "user", "content": "switch 1"}]
    c, headers = _chat(ctx, model="sonnet", messages=prompt)
    sid = headers.get("x-claude-session-id")
    same, switched = [], []
    model = "sonnet"
    # Within the per-session rate limit (10 a minute) of the main server.
    for turn in range(2, 10):
        switch = turn % 2 == 0
        if switch:
            model = "opus" if model == "sonnet" else "sonnet"
        asked = [{"role": "user", "content": f"switch {turn}"}]
        started = time.monotonic()
        c, headers = _chat(ctx, model=model, messages=asked,
                           headers={"X-Claude-Session-ID": sid})
        took = time.monotonic() - started
        check(headers.get("x-claude-warm") == "true", f"turn {turn} cold: {dict(headers)}")
        seen = _last_upstream(ctx)["model"]
        check(model in seen, f"turn {turn} asked {model}, the API saw {seen}")
        check(f"turns={turn} " in c.choices[0].message.content, c.choices[0].message.content)
        (switched if switch else same).append(took)
    print(f"      warm turn, same model: median {statistics.median(same) * 1000:.1f} ms; "
          f"after a model switch: median {statistics.median(switched) * 1000:.1f} ms "
          f"({len(same)} and {len(switched)} turns)", flush=True)


def _get(ctx, path):
    rq = urllib.request.Request(ctx.main.url(path),
                                headers={"Authorization": f"Bearer {API_KEY}"})
    with urllib.request.urlopen(rq, timeout=30) as r:
        return r.read().decode()


def _session(ctx, sid):
    return json.loads(_get(ctx, f"/v1/sessions/{sid}"))


def test_session_context_and_compaction(ctx):
    c, headers = _chat(ctx, model="sonnet", messages=[{"role": "user", "content": "ctx 1"}])
    sid = headers.get("x-claude-session-id")
    for text in ("ctx 2", "/compact", "ctx 3"):
        _chat(ctx, model="sonnet", messages=[{"role": "user", "content": text}],
              headers={"X-Claude-Session-ID": sid})
        if text == "ctx 2":
            before = _session(ctx, sid)["context"]
    after = _session(ctx, sid)["context"]
    check(before["tokens"] > 0 and before["compactions"] == 0, f"before: {before}")
    check(after["compactions"] == 1 and after["tokens"] > 0, f"after: {after}")
    seen = ctx.anthropic.messages_records()[-1]
    check(seen["roles"] == "uau", f"the API saw the compacted history as {seen['roles']!r}")
    scrape = _get(ctx, "/metrics")
    check("claude_cli_api_compactions_total{" in scrape, "no compactions in /metrics")


CLIENT_TESTS = [
    test_chat_reasoning_effort_and_content,
    test_responses_reasoning_summary,
    test_anthropic_thinking_stream_and_send_back,
    test_model_switch_stays_warm,
    test_session_context_and_compaction,
]
