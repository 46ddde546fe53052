"""The client matrix's Python half (issue 28): pydantic-ai and LangChain's
ChatAnthropic against the server, on their defaults, with the real `claude`
CLI behind it and fake_anthropic.py behind that.

- pydantic-ai (pydantic-ai-slim[openai,anthropic]) on each of its three
  models: OpenAIChatModel (Chat Completions at /claude/v1), OpenAIResponsesModel
  (the Responses API at /claude/v1) and AnthropicModel (the Messages API at the
  server's root). For each: an Agent with `output_type=City` (pydantic-ai's
  default tool output: the tool `final_result`, with tool_choice required)
  returning a validated City, and an Agent with a function tool whose loop
  runs to the final answer, then a second run with
  `message_history=result.all_messages()` that must land on the same server
  session, warm.
- LangChain's ChatAnthropic (langchain-anthropic) at the server's root:
  `bind_tools` and a tool loop to the final answer, then a second turn with
  the history resent; `with_structured_output(City)` (its default method,
  function_calling: a tool named City forced by tool_choice) returning a
  parsed City.

Every client goes through recorder.py's proxy, whose exchanges give the
answers' headers (X-Claude-Session-ID, X-Claude-Warm). With RECORD_CLIENTS=1
each test also writes its client's requests, one JSON file each, under
fixtures/clients/<client>-<version>/ (NN-<test>.json).

The fake API calls a client tool named `final_result` (or one the prompt
names, "City" here) with an input built from its input_schema, so a forced
tool call gets an answer; the prompts below are written for that ("Describe
Paris as a City." gives city "Paris", population 21, capital true).
Forced tool calls whose result the client never sends leave a turn waiting:
these tests run on the server's defaults, which give such turns up first
(MAX_TOOL_WAITS, MAX_TOOL_WAITS_PER_KEY, and a full pool); forced_calls_*
calls them more often than the pool has processes, then asks something
plain, which must be answered at once.
"""

import json
import time
from importlib import metadata

from common import check

from recorder import Recorder

API_KEY = "sk-cca-e2e-0123456789abcdef"  # the server's own client key (run_e2e.py's)
MODEL = "claude-sonnet-4-6"
RUN_TIMEOUT = 120  # seconds, a whole agent run at most
# The server's defaults, but for the per-IP rate (ctx.new_server's) and the
# per-session rate: a test's runs come quicker than a person's.
SERVER_ENV = {"RATE_LIMIT_PER_SESSION": "0"}
# The pool of forced_calls_never_fill_the_pool's server.
SMALL_POOL = 3


def version(dist):
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        raise AssertionError(f"{dist} is not installed: run scripts/e2e/setup.sh")


def server(ctx):
    """The shared server of these tests, started by the first of them."""
    srv = getattr(ctx, "clients_py_srv", None)
    if srv is None or srv.proc.poll() is not None:
        srv = ctx.new_server("clients-py", **SERVER_ENV)
        ctx.clients_py_srv = srv
    return srv


def Wire(ctx, client, dist):
    """The recording proxy in front of the shared server for one test
    (recorder.py); its `finish` saves the requests (RECORD_CLIENTS=1)."""
    return Recorder(server(ctx).url(), client=f"{client}-{version(dist)}").start()


def describe(exchanges):
    """One line per exchange, for failure messages."""
    out = []
    for e in exchanges:
        h = e.get("response_headers") or {}
        out.append(f"{e['method']} {e['path']} -> {e['status']} "
                   f"session={h.get('x-claude-session-id')} warm={h.get('x-claude-warm')} "
                   f"ignored={h.get('x-claude-ignored-params')}")
    return "; ".join(out) or "no requests"


def sessions(exchanges):
    return [(e.get("response_headers") or {}).get("x-claude-session-id") for e in exchanges]


def check_claude(exchanges, what):
    """Every request answered 200 by Claude Code mode; returns their session ids."""
    check(exchanges, f"{what}: no request reached the server")
    for e in exchanges:
        h = e.get("response_headers") or {}
        check(e["status"] == 200 and h.get("x-backend-mode") == "claude-code",
              f"{what}: {describe(exchanges)}")
    sids = sessions(exchanges)
    check(all(sids), f"{what}: an answer without X-Claude-Session-ID: {describe(exchanges)}")
    return sids


def check_same_session_warm(first, second, what):
    """The second run's requests continue the first run's session, the first
    of them on the warm process."""
    one, two = check_claude(first, f"{what}, run 1"), check_claude(second, f"{what}, run 2")
    check(len(set(one)) == 1, f"{what}: run 1 spread over sessions {one}")
    check(set(two) == set(one), f"{what}: run 2 answered for sessions {two}, run 1 for "
          f"{one[0]}: {describe(second)}")
    warm = (second[0].get("response_headers") or {}).get("x-claude-warm")
    check(warm == "true", f"{what}: run 2's first request X-Claude-Warm {warm!r}: "
          f"{describe(second)}")


def run_turn(wire, name, which, fn):
    """Runs one turn of a client (fn), prints its time and requests (also
    when it fails); returns (its value, its exchanges)."""
    mark = wire.mark()
    started = time.monotonic()
    try:
        value = fn()
    except Exception as e:
        exchanges = api_since(wire, mark)
        report(name, which, time.monotonic() - started, exchanges)
        raise AssertionError(f"{which} turn: {type(e).__name__}: {e} "
                             f"[{describe(exchanges)}]") from e
    exchanges = api_since(wire, mark)
    report(name, which, time.monotonic() - started, exchanges)
    return value, exchanges


def api_since(wire, mark):
    return [e for e in wire.since(mark) if e.get("api")]


def report(name, turn, seconds, exchanges):
    """A turn's time, its requests, and what the server said it ignored."""
    ignored = []
    for e in exchanges:
        names = (e.get("response_headers") or {}).get("x-claude-ignored-params") or ""
        ignored += [p for p in names.split(",") if p and p not in ignored]
    warm = [(e.get("response_headers") or {}).get("x-claude-warm") == "true" for e in exchanges]
    print(f"     {name}: {turn} turn {seconds * 1000:.0f} ms, {len(exchanges)} request(s), "
          f"warm {''.join('y' if w else 'n' for w in warm) or '-'}, "
          f"X-Claude-Ignored-Params {','.join(ignored) or '-'}", flush=True)


def weather(city):
    """What the tests' get_weather returns."""
    return f"sunny 21C in {city}"


def city_model():
    import pydantic

    class City(pydantic.BaseModel):
        """A city."""
        city: str
        population: int
        capital: bool

    return City


def check_city(city, cls, name, what):
    check(isinstance(city, cls), f"{what}: output {city!r} is not a {cls.__name__}")
    check((city.city, city.population, city.capital) == (name, 21, True),
          f"{what}: the fake's values were {{city: {name!r}, population: 21, capital: true}}, "
          f"got {city!r}")


# --- pydantic-ai ------------------------------------------------------------

PYDANTIC_AI = ("pydantic-ai", "pydantic-ai-slim")


def pydantic_model(kind, base):
    """pydantic-ai's model for `kind` as its docs show it: a provider with a
    base URL and a key, everything else on its defaults."""
    if kind == "anthropic":
        from pydantic_ai.models.anthropic import AnthropicModel
        from pydantic_ai.providers.anthropic import AnthropicProvider
        return AnthropicModel(MODEL, provider=AnthropicProvider(base_url=base, api_key=API_KEY))
    from pydantic_ai.models.openai import OpenAIChatModel, OpenAIResponsesModel
    from pydantic_ai.providers.openai import OpenAIProvider
    provider = OpenAIProvider(base_url=base + "/claude/v1", api_key=API_KEY)
    cls = OpenAIChatModel if kind == "chat" else OpenAIResponsesModel
    return cls(MODEL, provider=provider)


def pydantic_output_type(ctx, kind):
    """An Agent with output_type=City: the model must call final_result
    (tool_choice required), and the run returns a validated City. A second
    run continues with the first one's messages."""
    from pydantic_ai import Agent
    City = city_model()
    wire = Wire(ctx, *PYDANTIC_AI)
    try:
        agent = Agent(pydantic_model(kind, wire.url), output_type=City,
                      instructions="Be brief.")
        name = f"pydantic-ai {kind} output_type"
        result, first = run_turn(wire, name, "first", lambda: agent.run_sync(
            "Describe Paris as a City.", timeout=RUN_TIMEOUT))
        check_claude(first, "run 1")
        check_city(result.output, City, "Paris", f"run 1 ({describe(first)})")

        result2, second = run_turn(wire, name, "second", lambda: agent.run_sync(
            "Now describe Rome as a City.", message_history=result.all_messages(),
            timeout=RUN_TIMEOUT))
        check_same_session_warm(first, second, "output_type")
        check_city(result2.output, City, "Rome", f"run 2 ({describe(second)})")
    finally:
        wire.finish(f"{kind}-output-type")


def pydantic_tool_loop(ctx, kind):
    """An Agent with one function tool: the model calls it, pydantic-ai runs it
    and sends its result back, the final answer quotes it. A second run with
    message_history=result.all_messages() lands on the same session, warm."""
    from pydantic_ai import Agent
    calls = []
    wire = Wire(ctx, *PYDANTIC_AI)
    try:
        agent = Agent(pydantic_model(kind, wire.url), instructions="Be brief.")

        @agent.tool_plain
        def get_weather(city: str) -> str:
            """The weather in a city."""
            calls.append(city)
            return weather(city)

        name = f"pydantic-ai {kind} tool loop"
        result, first = run_turn(wire, name, "first", lambda: agent.run_sync(
            "What is the weather in Paris?", timeout=RUN_TIMEOUT))
        check(calls == ["Paris"], f"run 1: the tool ran with {calls}: {describe(first)}")
        check(result.output == f"The tools said: {weather('Paris')}",
              f"run 1: final output {result.output!r}: {describe(first)}")
        check(len(first) == 2, f"run 1: {describe(first)}")

        result2, second = run_turn(wire, name, "second", lambda: agent.run_sync(
            "And the weather in Rome?", message_history=result.all_messages(),
            timeout=RUN_TIMEOUT))
        check(calls == ["Paris", "Rome"], f"run 2: the tool ran with {calls}: "
              f"{describe(second)}")
        check(result2.output == f"The tools said: {weather('Rome')}",
              f"run 2: final output {result2.output!r}: {describe(second)}")
        check_same_session_warm(first, second, "tool loop")
    finally:
        wire.finish(f"{kind}-tool-loop")


def test_client_pydantic_ai_chat_output_type(ctx):
    pydantic_output_type(ctx, "chat")


def test_client_pydantic_ai_chat_tool_loop(ctx):
    pydantic_tool_loop(ctx, "chat")


def test_client_pydantic_ai_responses_output_type(ctx):
    pydantic_output_type(ctx, "responses")


def test_client_pydantic_ai_responses_tool_loop(ctx):
    pydantic_tool_loop(ctx, "responses")


def test_client_pydantic_ai_anthropic_output_type(ctx):
    pydantic_output_type(ctx, "anthropic")


def test_client_pydantic_ai_anthropic_tool_loop(ctx):
    pydantic_tool_loop(ctx, "anthropic")


# --- LangChain's ChatAnthropic ----------------------------------------------

LANGCHAIN_ANTHROPIC = ("langchain-anthropic", "langchain-anthropic")


def chat_anthropic(wire):
    """ChatAnthropic as its docs show it, given the server's root and key;
    a timeout so that a hang fails the test instead of the suite."""
    from langchain_anthropic import ChatAnthropic
    return ChatAnthropic(model=MODEL, base_url=wire.url, api_key=API_KEY, timeout=60)


def test_client_langchain_anthropic_tool_loop(ctx):
    """bind_tools and the usual loop (invoke, run each call, a ToolMessage,
    invoke again) to the final answer; then a second question in the same
    conversation, resent whole, lands on the same session, warm."""
    from langchain_core.messages import HumanMessage, ToolMessage
    from langchain_core.tools import tool
    calls = []

    @tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        calls.append(city)
        return weather(city)

    wire = Wire(ctx, *LANGCHAIN_ANTHROPIC)
    try:
        chat = chat_anthropic(wire).bind_tools([get_weather])
        messages = []

        def turn(question):
            messages.append(HumanMessage(question))
            while True:
                ai = chat.invoke(messages)
                messages.append(ai)
                if not ai.tool_calls:
                    return ai
                for call in ai.tool_calls:
                    messages.append(ToolMessage(get_weather.invoke(call["args"]),
                                                tool_call_id=call["id"]))

        name = "ChatAnthropic bind_tools loop"
        ai, first = run_turn(wire, name, "first", lambda: turn("What is the weather in Paris?"))
        check(calls == ["Paris"], f"turn 1: the tool ran with {calls}: {describe(first)}")
        check(ai.text == f"The tools said: {weather('Paris')}",
              f"turn 1: final answer {ai.content!r}: {describe(first)}")
        check(len(first) == 2, f"turn 1: {describe(first)}")

        ai, second = run_turn(wire, name, "second", lambda: turn("And the weather in Rome?"))
        check(calls == ["Paris", "Rome"], f"turn 2: the tool ran with {calls}: "
              f"{describe(second)}")
        check(ai.text == f"The tools said: {weather('Rome')}",
              f"turn 2: final answer {ai.content!r}: {describe(second)}")
        check_same_session_warm(first, second, "bind_tools loop")
    finally:
        wire.finish("bind-tools-loop")


def test_client_langchain_anthropic_structured_output(ctx):
    """with_structured_output(City), its default method (a tool named City,
    forced with tool_choice), returns a parsed City; twice, each call a new
    conversation."""
    City = city_model()
    wire = Wire(ctx, *LANGCHAIN_ANTHROPIC)
    try:
        structured = chat_anthropic(wire).with_structured_output(City)
        name = "ChatAnthropic with_structured_output"
        city, first = run_turn(wire, name, "first",
                               lambda: structured.invoke("Describe Paris as a City."))
        check_claude(first, "call 1")
        check_city(city, City, "Paris", f"call 1 ({describe(first)})")
        city, second = run_turn(wire, name, "second",
                                lambda: structured.invoke("Describe Rome as a City."))
        check_claude(second, "call 2")
        check_city(city, City, "Rome", f"call 2 ({describe(second)})")
    finally:
        wire.finish("structured-output")


def test_client_forced_calls_never_fill_the_pool(ctx):
    """pydantic-ai's output_type and LangChain's with_structured_output force
    a call that is the whole answer and never answer it. Called more often
    than the pool has processes (new conversations each, a pool of 3), every
    call is answered, and a plain request after them is answered at once,
    not after POOL_QUEUE_TIMEOUT_MS nor with a 429: on the defaults (the
    key's bound on waiting turns gives the older ones up), and with those
    bounds lifted (the pool is full of waiting turns: the oldest gives way)."""
    lifted = {"MAX_TOOL_WAITS": str(SMALL_POOL), "MAX_TOOL_WAITS_PER_KEY": str(SMALL_POOL)}
    for name, env, cause in [("defaults", {}, "key_limit"), ("lifted", lifted, "pressure")]:
        srv = ctx.new_server(f"forced-calls-{name}", MAX_CONCURRENT_PROCESSES=str(SMALL_POOL),
                             RATE_LIMIT_PER_SESSION="0", **env)
        try:
            forced_calls(srv, name, cause, int(env.get("MAX_TOOL_WAITS", SMALL_POOL // 2)))
        finally:
            srv.stop()


def forced_calls(srv, name, cause, may_wait):
    import openai
    from langchain_anthropic import ChatAnthropic
    from pydantic_ai import Agent
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider
    City = city_model()
    base = srv.url("/claude/v1")
    provider = OpenAIProvider(base_url=base, api_key=API_KEY)
    agent = Agent(OpenAIChatModel(MODEL, provider=provider), output_type=City)
    structured = ChatAnthropic(model=MODEL, base_url=srv.url(), api_key=API_KEY,
                               timeout=60).with_structured_output(City)
    rounds = SMALL_POOL + 2
    for i in range(rounds):
        started = time.monotonic()
        city = agent.run_sync("Describe Paris as a City.", timeout=RUN_TIMEOUT).output
        check_city(city, City, "Paris", f"{name}: pydantic-ai call {i + 1}")
        city = structured.invoke("Describe Rome as a City.")
        check_city(city, City, "Rome", f"{name}: with_structured_output call {i + 1}")
        print(f"     forced calls ({name}), round {i + 1}: "
              f"{(time.monotonic() - started) * 1000:.0f} ms for both", flush=True)
    checks = srv.health()[1]["checks"]
    check(checks["waiting_for_tools"] <= may_wait,
          f"{name}: {checks['waiting_for_tools']} turns still wait: {checks}")
    given_up = checks["tool_waits_given_up"]
    check(given_up[cause] >= 2 * rounds - may_wait,
          f"{name}: given up {given_up} of {2 * rounds} forced calls")
    client = openai.OpenAI(base_url=base, api_key=API_KEY, max_retries=0, timeout=30)
    started = time.monotonic()
    answer = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hello"}])
    took = time.monotonic() - started
    print(f"     a plain request after {2 * rounds} forced calls ({name}): "
          f"{took * 1000:.0f} ms; given up {given_up}", flush=True)
    check(answer.choices[0].message.content, f"{name}: no answer")
    check(took < 3, f"{name}: the plain request took {took:.1f}s")


CLIENT_TESTS = [
    test_client_pydantic_ai_chat_output_type,
    test_client_pydantic_ai_chat_tool_loop,
    test_client_pydantic_ai_responses_output_type,
    test_client_pydantic_ai_responses_tool_loop,
    test_client_pydantic_ai_anthropic_output_type,
    test_client_pydantic_ai_anthropic_tool_loop,
    test_client_langchain_anthropic_tool_loop,
    test_client_langchain_anthropic_structured_output,
    test_client_forced_calls_never_fill_the_pool,
]

if __name__ == "__main__":
    print("run these through run_e2e.py: .cache/e2e/venv/bin/python scripts/e2e/run_e2e.py "
          "client_pydantic_ai client_langchain_anthropic")
    print(json.dumps([t.__name__ for t in CLIENT_TESTS], indent=1))
