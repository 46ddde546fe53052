"""The client matrix's Node half (issue 28): the coding agents and Node
libraries people point at an OpenAI or Anthropic base URL, pinned by
setup.sh and run on their defaults against the server, with the real
`claude` CLI behind it and fake_anthropic.py behind that.

- Codex CLI (@openai/codex): `codex exec` with a model provider of its own
  (config.toml: base_url = the server's /claude/v1, wire_api = "responses",
  env_key naming the variable that holds the server's key), no model named
  (its default), `--skip-git-repo-check` since the work directory is no git
  repository; a reply, then `codex exec resume --last` (a second turn that
  resends the history, on the same server session, warm); a run of its own
  shell (the fake calls Codex's freeform `exec` tool with JavaScript that
  runs `echo cca-$((6*7))` through `tools.exec_command`); `--output-schema`.
- Claude Code as a client (@anthropic-ai/claude-code): `claude -p` with
  ANTHROPIC_BASE_URL at the server's root and ANTHROPIC_API_KEY the server's
  key; a reply, then `claude -p --continue` on the same session, warm; a run
  of its Bash tool (`--tools Bash`, the fake calls it with that command).
- The Vercel AI SDK (ai, @ai-sdk/openai, @ai-sdk/anthropic) through
  clients/ai_sdk.mjs: the default `openai(model)` provider (the Responses
  API, store on) over three turns, each sending the history so far (with a
  model that is not a reasoning model the earlier answers go back as
  `item_reference` items; with one, as assistant messages); `openai.chat`
  and `anthropic` with a tool loop (generateText, stopWhen: stepCountIs(5))
  and generateObject with a zod schema (then generateText with
  Output.object, which the SDK recommends instead).
- Anthropic's TypeScript SDK (@anthropic-ai/sdk) through
  clients/anthropic_ts.mjs: `messages.create` over two turns (the history
  resent) and `client.beta.messages.toolRunner` with one tool (message
  threads: its second request sends only the tool_result, with `thread:
  {type: "continue", previous_message_id}`).

Each CLI gets a HOME, working directory and TMPDIR of its own under the
suite's temp directory; whatever a client leaves running (in its process
group, or working in its directory) is stopped by PID after each run.

Every client goes through recorder.py's proxy, whose exchanges give the
answers' headers (X-Claude-Session-ID, X-Claude-Warm) and, on failure, the
error the server answered. Each test prints the time of each turn. With
RECORD_CLIENTS=1 each test also writes its client's requests, one JSON file
each, under fixtures/clients/<client>-<version>/ (NN-<test>.json).
"""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

from common import NODE_DIR, all_pids, alive, check, members_of_group
import recorder

API_KEY = "sk-cca-e2e-0123456789abcdef"  # the server's own client key (run_e2e.py's)
NODE_MODULES = os.path.join(NODE_DIR, "node_modules")
HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = os.path.join(HERE, "clients")
RUN_TIMEOUT = 180  # seconds, one client run at most
SERVER_ENV = {
    # Tool calls a failing client never answers hold a process each until
    # TOOL_RESULT_TIMEOUT_MS: room for them, and no per-key or session limit
    # (Claude Code retries a refused request five times).
    "MAX_CONCURRENT_PROCESSES": "24",
    "MAX_CONCURRENT_PER_KEY": "0",
    "RATE_LIMIT_PER_SESSION": "0",
    "WARM_SESSIONS": "6",
}
SHELL_PROMPT = "Please run `echo cca-$((6*7))` in the shell."  # the fake calls the shell tool
SHELL_OUTPUT = "cca-42"  # what the shell prints, so the model cannot have made it up
WEATHER = "sunny, 18 C in Paris"  # what the Node scripts' get_weather returns for Paris

# client key -> (fixture directory's name, npm package whose version it carries)
CLIENTS = {
    "codex": ("codex-cli", "@openai/codex"),
    "claude_code": ("claude-code", "@anthropic-ai/claude-code"),
    "ai_sdk": ("ai-sdk", "ai"),
    "anthropic_ts": ("anthropic-ts", "@anthropic-ai/sdk"),
}


def npm_version(package):
    try:
        with open(os.path.join(NODE_MODULES, package, "package.json")) as f:
            return json.load(f)["version"]
    except OSError:
        raise AssertionError(f"{package} is not installed: run scripts/e2e/setup.sh")


def server(ctx):
    """The shared server of these tests, started by the first of them."""
    srv = getattr(ctx, "clients_node_srv", None)
    if srv is None or srv.proc.poll() is not None:
        srv = ctx.new_server("clients-node", **SERVER_ENV)
        ctx.clients_node_srv = srv
    return srv


def Wire(ctx, client):
    """The recording proxy in front of the shared server for one test
    (recorder.py); its `finish` saves the requests (RECORD_CLIENTS=1)."""
    name, package = CLIENTS[client]
    return recorder.Recorder(server(ctx).url(), client=f"{name}-{npm_version(package)}",
                             keep_response=True).start()


def error_of(exchange):
    """What the server said when it refused a request: status, and the
    error's type/code, param and message."""
    body = exchange.get("response_body")
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict):
        return f"{exchange['status']} {str(body)[:300]}"
    parts = [str(exchange["status"])]
    for key in ("type", "code", "param"):
        if err.get(key):
            parts.append(f"{key}={err[key]}")
    return " ".join(parts) + f" {err.get('message', '')!r}"


def describe(exchanges):
    """One line per exchange, for failure messages."""
    out = []
    for e in exchanges:
        h = e.get("response_headers") or {}
        line = f"{e['method']} {e['path']} -> {e['status']}"
        if e.get("status") and e["status"] >= 400:
            line += f" ({error_of(e)})"
        else:
            line += (f" session={h.get('x-claude-session-id')} warm={h.get('x-claude-warm')}")
        out.append(line)
    return "; ".join(out) or "no requests"


def api_exchanges(exchanges):
    return [e for e in exchanges if e.get("api")]


def turn_requests(exchanges):
    """The requests that ask for an answer: the API's, token counts (which
    the server cannot answer, and a client does without) left out."""
    return [e for e in api_exchanges(exchanges) if "/count_tokens" not in e["path"]]


def check_claude(exchanges, what):
    """Every request of a turn answered 200 in Claude Code mode; returns
    their session ids."""
    exchanges = turn_requests(exchanges)
    check(exchanges, f"{what}: no request reached the server")
    for e in exchanges:
        h = e.get("response_headers") or {}
        check(e["status"] == 200 and h.get("x-backend-mode") == "claude-code",
              f"{what}: {describe(exchanges)}")
    sids = [(e.get("response_headers") or {}).get("x-claude-session-id") for e in exchanges]
    check(all(sids), f"{what}: an answer without X-Claude-Session-ID: {describe(exchanges)}")
    return sids


def check_same_session_warm(first, second, what):
    """The second turn's requests continue the first turn's session, the
    first of them on the warm process."""
    one = check_claude(first, f"{what}, turn 1")
    two = check_claude(second, f"{what}, turn 2")
    check(set(two) == {one[-1]}, f"{what}: turn 2 answered for sessions {two}, turn 1 for "
          f"{one[-1]}: {describe(second)}")
    warm = (turn_requests(second)[0].get("response_headers") or {}).get("x-claude-warm")
    check(warm == "true", f"{what}: turn 2's first request X-Claude-Warm {warm!r}: "
          f"{describe(second)}")


def report(name, turn, ms, exchanges):
    """A turn's time, its requests (how long the server took on each, warm
    or not), and what the server said it ignored."""
    exchanges = api_exchanges(exchanges)
    ignored = []
    for e in exchanges:
        names = (e.get("response_headers") or {}).get("x-claude-ignored-params") or ""
        ignored += [p for p in names.split(",") if p and p not in ignored]
    warm = "".join("y" if (e.get("response_headers") or {}).get("x-claude-warm") == "true"
                   else "n" for e in exchanges)
    server_ms = "+".join(f"{(e.get('elapsed') or 0) * 1000:.0f}" for e in exchanges)
    statuses = ",".join(str(e["status"]) for e in exchanges)
    print(f"     {name}: {turn} turn {ms:.0f} ms ({len(exchanges)} request(s) "
          f"{statuses}, server {server_ms or '-'} ms, warm {warm or '-'}), "
          f"X-Claude-Ignored-Params {','.join(ignored) or '-'}", flush=True)


def run_process(argv, env, cwd, timeout=RUN_TIMEOUT):
    """Runs a client in a process group of its own, stdin empty; returns
    (exit status, stdout, stderr, ms). Whatever it leaves in its group, or
    (unless cwd is this directory) working under cwd, is stopped by PID (and
    a timeout stops the whole group)."""
    started = time.monotonic()
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop_group(proc.pid)
        out, err = proc.communicate()
        raise AssertionError(f"{os.path.basename(argv[0])} ran over {timeout}s: "
                             f"{err[-600:]}")
    finally:
        left = stop_group(proc.pid)
        if cwd != HERE:
            left += stop_under(cwd)
        if left:
            print(f"     stopped {len(left)} process(es) {argv[0]} left behind: {left}",
                  flush=True)
    return proc.returncode, out, err, (time.monotonic() - started) * 1000


def stop_group(pgid):
    """SIGKILLs the live members of a process group this module started."""
    left = members_of_group(pgid)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return left


def stop_under(path):
    """SIGKILLs the live processes whose working directory lies under `path`
    (a directory this module made for one client): daemons that left the
    client's process group."""
    left = []
    for pid in all_pids():
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue
        if (cwd == path or cwd.startswith(path + os.sep)) and alive(pid):
            left.append(pid)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    return left


def client_dir(ctx, name):
    return tempfile.mkdtemp(prefix=f"{name}-", dir=ctx.tmp)


def turn(wire, name, which, fn):
    """Runs one turn (fn returns (value, ms)), prints its time and requests
    (also when it fails); returns (value, its exchanges)."""
    mark = wire.mark()
    started = time.monotonic()
    try:
        value, ms = fn()
    except Exception as e:
        exchanges = wire.since(mark)
        report(name, which, (time.monotonic() - started) * 1000, exchanges)
        raise AssertionError(f"{which} turn: {e} [{describe(exchanges)}]") from e
    exchanges = wire.since(mark)
    report(name, which, ms, exchanges)
    return value, exchanges


# --- Codex CLI -----------------------------------------------------------------


class Codex:
    """`codex exec` with a CODEX_HOME of its own whose config.toml names the
    server (through the recorder) as a Responses API provider."""

    def __init__(self, ctx, wire):
        self.home = client_dir(ctx, "codex-home")  # CODEX_HOME: config, sessions
        self.work = client_dir(ctx, "codex-work")  # HOME and working directory
        self.tmp = client_dir(ctx, "codex-tmp")  # TMPDIR, so /tmp gets nothing
        with open(os.path.join(self.home, "config.toml"), "w") as f:
            f.write('model_provider = "cca"\n\n'
                    '[model_providers.cca]\n'
                    'name = "claude-cli-api"\n'
                    f'base_url = "{wire.url}/claude/v1"\n'
                    'env_key = "CCA_API_KEY"\n'
                    'wire_api = "responses"\n')

    def exec(self, *args):
        """Runs `codex exec --skip-git-repo-check ARGS`; returns (its final
        message, ms), the message being what it prints on stdout."""
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": self.work,
               "LANG": "C.UTF-8", "TMPDIR": self.tmp, "CODEX_HOME": self.home,
               "CCA_API_KEY": API_KEY}
        argv = [os.path.join(NODE_MODULES, ".bin", "codex"), "exec", "--skip-git-repo-check",
                *args]
        status, out, err, ms = run_process(argv, env, self.work)
        errors = list(dict.fromkeys(line for line in err.splitlines()
                                    if line.startswith("ERROR")))
        check(status == 0, f"codex exec exited {status}: {' | '.join(errors) or err[-800:]}")
        return out.strip(), ms


def test_client_codex_exec_resume(ctx):
    """A reply, then `codex exec resume --last`: the second turn resends the
    history and lands on the first turn's session, warm."""
    wire = Wire(ctx, "codex")
    try:
        codex = Codex(ctx, wire)
        text, first = turn(wire, "codex", "first", lambda: codex.exec("Say hello from Codex"))
        check(text.startswith("turns="), f"first turn's answer is not the fake's echo: {text!r}")
        text, second = turn(wire, "codex", "second (resume --last)",
                            lambda: codex.exec("resume", "--last", "Say hello again"))
        check(text.startswith("turns="), f"resume's answer is not the fake's echo: {text!r}")
        check_same_session_warm(first, second, "codex exec resume --last")
    finally:
        wire.finish("exec-resume")


def test_client_codex_shell_tool(ctx):
    """Codex runs its own shell for the model (its freeform `exec` tool, run
    in its sandbox) and the output reaches the model: the fake's answer
    echoes it."""
    wire = Wire(ctx, "codex")
    try:
        codex = Codex(ctx, wire)
        text, exchanges = turn(wire, "codex", "tool loop", lambda: codex.exec(SHELL_PROMPT))
        sids = check_claude(exchanges, "codex tool loop")
        check(len(turn_requests(exchanges)) >= 2,
              f"codex sent no tool result: {describe(exchanges)}")
        check(text.startswith("The tools said:") and SHELL_OUTPUT in text,
              f"the shell's output did not reach the model: {text!r}")
        check(len(set(sids)) == 1, f"the tool loop spread over sessions: {describe(exchanges)}")
    finally:
        wire.finish("exec-shell-tool")


def test_client_codex_output_schema(ctx):
    """`codex exec --output-schema FILE`: the final message is JSON that
    fits the schema."""
    wire = Wire(ctx, "codex")
    try:
        codex = Codex(ctx, wire)
        schema = os.path.join(codex.work, "schema.json")
        with open(schema, "w") as f:
            json.dump({"type": "object",
                       "properties": {"city": {"type": "string"},
                                      "population": {"type": "integer"}},
                       "required": ["city", "population"], "additionalProperties": False}, f)
        text, exchanges = turn(wire, "codex", "first", lambda: codex.exec(
            "--output-schema", schema, "Describe Paris as one object."))
        check_claude(exchanges, "codex --output-schema")
        try:
            value = json.loads(text)
        except ValueError:
            raise AssertionError(f"the final message is not JSON: {text!r}")
        check(isinstance(value, dict) and isinstance(value.get("city"), str)
              and isinstance(value.get("population"), int) and len(value) == 2,
              f"the final message does not fit the schema: {value!r}")
    finally:
        wire.finish("exec-output-schema")


# --- Claude Code as a client --------------------------------------------------------


class ClaudeCode:
    """`claude -p` with a HOME of its own, talking to the server (through
    the recorder) as its Anthropic API."""

    def __init__(self, ctx, wire):
        self.home = client_dir(ctx, "claude-code-home")
        self.work = client_dir(ctx, "claude-code-work")
        self.tmp = client_dir(ctx, "claude-code-tmp")  # TMPDIR, so /tmp gets nothing
        self.url = wire.url

    def print(self, *args):
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": self.home,
               "LANG": "C.UTF-8", "TMPDIR": self.tmp, "ANTHROPIC_BASE_URL": self.url,
               "ANTHROPIC_API_KEY": API_KEY,
               "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}
        argv = [os.path.join(NODE_MODULES, ".bin", "claude"), "-p", *args]
        status, out, err, ms = run_process(argv, env, self.work)
        check(status == 0, f"claude -p exited {status}: {(out + err).strip()[-800:]}")
        return out.strip(), ms


def test_client_claude_code_continue(ctx):
    """A reply, then `claude -p --continue`: the same server session, warm."""
    wire = Wire(ctx, "claude_code")
    try:
        cc = ClaudeCode(ctx, wire)
        text, first = turn(wire, "claude code", "first", lambda: cc.print("Say hello"))
        check(text.startswith("turns="), f"first turn's answer is not the fake's echo: {text!r}")
        text, second = turn(wire, "claude code", "second (--continue)",
                            lambda: cc.print("--continue", "Say hello again"))
        check(text.startswith("turns="), f"--continue's answer is not the fake's echo: {text!r}")
        check_same_session_warm(first, second, "claude -p --continue")
    finally:
        wire.finish("print-continue")


def test_client_claude_code_bash_tool(ctx):
    """`claude -p ... --tools Bash`: Claude Code runs the command the model
    asks for and the output reaches the model."""
    wire = Wire(ctx, "claude_code")
    try:
        cc = ClaudeCode(ctx, wire)
        # The prompt goes before --tools, which takes several values.
        text, exchanges = turn(wire, "claude code", "tool loop",
                               lambda: cc.print(SHELL_PROMPT, "--tools", "Bash"))
        sids = check_claude(exchanges, "claude code tool loop")
        check(text.startswith("The tools said:") and SHELL_OUTPUT in text,
              f"Bash's output did not reach the model: {text!r}")
        check(len(set(sids)) == 1, f"the tool loop spread over sessions: {describe(exchanges)}")
        # --continue on Claude Code's default tools: its request then holds
        # a system message of its own that the first did not.
        text, second = turn(wire, "claude code", "second (--continue)",
                            lambda: cc.print("--continue", "Say hello again"))
        check(text.startswith("turns="), f"--continue's answer is not the fake's echo: {text!r}")
        check_same_session_warm(exchanges, second, "--continue after a --tools Bash turn")
    finally:
        wire.finish("print-bash-tool")


# --- the Node libraries ----------------------------------------------------------------


def run_script(ctx, wire, script, *args):
    """Runs clients/<script> with the recorder's URL; returns its result line."""
    node = shutil.which("node")
    check(node, "node not on PATH")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": ctx.tmp, "LANG": "C.UTF-8",
           "E2E_BASE_URL": wire.url, "E2E_API_KEY": API_KEY, "E2E_NODE_MODULES": NODE_MODULES}
    status, out, err, ms = run_process([node, os.path.join(SCRIPTS, script), *args], env, HERE)
    lines = out.strip().splitlines()
    try:
        result = json.loads(lines[-1])
    except (IndexError, ValueError):
        raise AssertionError(f"{script} exited {status} without a result: {err[-800:]}")
    if "error" in result:
        raise AssertionError(f"{script} {' '.join(args)}: {json.dumps(result['error'])[:1500]}")
    check(status == 0, f"{script} exited {status}: {err[-800:]}")
    return result


def node_turns(ctx, wire, name, script, *args):
    """Runs a script whose result has `turns` ([{ms, ...}]); prints each
    turn with its requests (matched by order: the script's turns are
    sequential). Returns (result, [exchanges of turn 1, of turn 2, ...])."""
    mark = wire.mark()
    try:
        result = run_script(ctx, wire, script, *args)
    except AssertionError as e:
        exchanges = wire.since(mark)
        report(name, "failed", sum((x.get("elapsed") or 0) for x in exchanges) * 1000,
               exchanges)
        raise AssertionError(f"{e} [{describe(exchanges)}]") from e
    exchanges = api_exchanges(wire.since(mark))
    per_turn = split_turns(exchanges, len(result["turns"]))
    for i, (t, ex) in enumerate(zip(result["turns"], per_turn)):
        report(name, ["first", "second", "third"][i] if i < 3 else f"#{i + 1}", t["ms"], ex)
    return result, per_turn


def split_turns(exchanges, n):
    """The requests of n sequential turns of one request each, the last turn
    getting any extra."""
    if n <= 1:
        return [exchanges]
    return [[e] for e in exchanges[:n - 1]] + [exchanges[n - 1:]]


def test_client_ai_sdk_responses_turns(ctx):
    """openai(model), the AI SDK's default provider (the Responses API,
    store on), over three turns with a model that is not a reasoning model:
    turns 2 and 3 send the earlier answers as item_reference items and land
    on the first turn's session, warm."""
    responses_turns(ctx, "gpt-4.1", "responses-turns")


def test_client_ai_sdk_responses_reasoning_model(ctx):
    """The same with a reasoning model (gpt-5.6-luna), for which the SDK
    resends the earlier answers as assistant messages."""
    responses_turns(ctx, "gpt-5.6-luna", "responses-turns-reasoning-model")


def responses_turns(ctx, model, prefix):
    wire = Wire(ctx, "ai_sdk")
    try:
        result, turns = node_turns(ctx, wire, f"ai sdk openai({model})", "ai_sdk.mjs",
                                   "responses", model)
        for i, t in enumerate(result["turns"], 1):
            check(t["text"].startswith(f"turns={i} "), f"turn {i}'s answer: {t['text']!r}")
        check_same_session_warm(turns[0], turns[1], f"AI SDK openai({model})")
        check_same_session_warm(turns[1], turns[2], f"AI SDK openai({model}), turn 3")
    finally:
        wire.finish(prefix)


def tool_loop(ctx, kind, model, prefix):
    wire = Wire(ctx, "ai_sdk")
    try:
        result, turns = node_turns(ctx, wire, f"ai sdk {kind}({model}) tools", "ai_sdk.mjs",
                                   f"{kind}-tool", model)
        text = result["turns"][0]["text"]
        check(result["toolCalls"] == ["Paris"], f"the tool ran for {result['toolCalls']}")
        check(text == f"The tools said: {WEATHER}",
              f"the tool's result did not reach the model: {text!r}")
        sids = check_claude(turns[0], f"AI SDK {kind} tool loop")
        check(len(sids) == 2 and len(set(sids)) == 1,
              f"expected the call and the result on one session: {describe(turns[0])}")
    finally:
        wire.finish(prefix)


def generate_object(ctx, kind, model, prefix):
    wire = Wire(ctx, "ai_sdk")
    try:
        result, turns = node_turns(ctx, wire, f"ai sdk {kind}({model}) object", "ai_sdk.mjs",
                                   f"{kind}-object", model)
        check_claude(turns[0] + turns[1], f"AI SDK {kind} generateObject, Output.object")
        for how, obj in (("generateObject", result["object"]),
                         ("Output.object", result["output"])):
            check(isinstance(obj, dict) and isinstance(obj.get("city"), str)
                  and isinstance(obj.get("population"), int)
                  and isinstance(obj.get("capital"), bool), f"{how}: {obj!r}")
    finally:
        wire.finish(prefix)


def test_client_ai_sdk_chat_tool_loop(ctx):
    """openai.chat(model) with a tool: the loop runs to the final answer."""
    tool_loop(ctx, "chat", "gpt-4.1", "chat-tool-loop")


def test_client_ai_sdk_chat_object(ctx):
    """openai.chat(model), generateObject with a zod schema, then
    generateText with Output.object (what the SDK recommends instead)."""
    generate_object(ctx, "chat", "gpt-4.1", "chat-object")


def test_client_ai_sdk_anthropic_tool_loop(ctx):
    """anthropic(model) with a tool: the loop runs to the final answer."""
    tool_loop(ctx, "anthropic", "claude-sonnet-4-6", "anthropic-tool-loop")


def test_client_ai_sdk_anthropic_object(ctx):
    """anthropic(model), generateObject with a zod schema, then generateText
    with Output.object."""
    generate_object(ctx, "anthropic", "claude-sonnet-4-6", "anthropic-object")


def test_client_anthropic_ts_create(ctx):
    """messages.create, then a second turn with the history resent: the
    same session, warm."""
    wire = Wire(ctx, "anthropic_ts")
    try:
        result, turns = node_turns(ctx, wire, "anthropic ts create", "anthropic_ts.mjs",
                                   "create", "claude-sonnet-4-6")
        for i, t in enumerate(result["turns"], 1):
            check(t["text"].startswith(f"turns={i} "), f"turn {i}'s answer: {t['text']!r}")
        check_same_session_warm(turns[0], turns[1], "Anthropic TS messages.create")
    finally:
        wire.finish("create-two-turns")


def test_client_anthropic_ts_tool_runner(ctx):
    """client.beta.messages.toolRunner with one tool: the tool runs, its
    result (sent alone, continuing the thread) reaches the model, and the
    runner ends with the fake's answer, both requests on one session."""
    wire = Wire(ctx, "anthropic_ts")
    try:
        result, turns = node_turns(ctx, wire, "anthropic ts toolRunner", "anthropic_ts.mjs",
                                   "tool-runner", "claude-sonnet-4-6")
        check(result["toolCalls"] == ["Paris"], f"the tool ran for {result['toolCalls']}")
        check(result["final"] == f"The tools said: {WEATHER}",
              f"the tool's result did not reach the model: {result['final']!r}")
        one = check_claude(turns[0], "toolRunner, the call")
        two = check_claude(turns[1], "toolRunner, the result")
        check(set(two) == {one[-1]}, f"the result went to another session: "
              f"{describe(turns[0] + turns[1])}")
    finally:
        wire.finish("tool-runner")


def anthropic_ts_two_runs(ctx, mode, what):
    """Two tool-runner runs of one conversation: each runs the tool, and the
    second run's requests land on the first run's session, warm."""
    wire = Wire(ctx, "anthropic_ts")
    try:
        result, turns = node_turns(ctx, wire, f"anthropic ts {what}", "anthropic_ts.mjs",
                                   mode, "claude-sonnet-4-6")
        check(result["toolCalls"] == ["Paris", "Rome"], f"the tool ran for {result['toolCalls']}")
        check(result["finals"] == [f"The tools said: {WEATHER}",
                                   f"The tools said: {WEATHER.replace('Paris', 'Rome')}"],
              f"the tool's results did not reach the model: {result['finals']!r}")
        check(len(turns) == 4, f"{len(turns)} requests: {describe(sum(turns, []))}")
        first, second = turns[0] + turns[1], turns[2] + turns[3]
        check_same_session_warm(first, second, what)
    finally:
        wire.finish(mode)


def test_client_anthropic_ts_tool_runner_twice(ctx):
    """A second toolRunner with the whole conversation and a new question,
    on the SDK's defaults (a new thread): it lands on the first run's
    session, warm, by the history's digest."""
    anthropic_ts_two_runs(ctx, "tool-runner-twice", "toolRunner twice")


def test_client_anthropic_ts_thread(ctx):
    """One message thread, a toolRunner for each of two questions: the
    second sends neither tools nor history, and still runs the tool on the
    same session, warm."""
    anthropic_ts_two_runs(ctx, "thread", "one thread")


CLIENT_TESTS = [
    test_client_codex_exec_resume,
    test_client_codex_shell_tool,
    test_client_codex_output_schema,
    test_client_claude_code_continue,
    test_client_claude_code_bash_tool,
    test_client_ai_sdk_responses_turns,
    test_client_ai_sdk_responses_reasoning_model,
    test_client_ai_sdk_chat_tool_loop,
    test_client_ai_sdk_chat_object,
    test_client_ai_sdk_anthropic_tool_loop,
    test_client_ai_sdk_anthropic_object,
    test_client_anthropic_ts_create,
    test_client_anthropic_ts_tool_runner,
    test_client_anthropic_ts_tool_runner_twice,
    test_client_anthropic_ts_thread,
]
