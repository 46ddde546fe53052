#!/usr/bin/env python3
"""A local stand-in for the Anthropic Messages API, for end-to-end tests.

The real `claude` CLI talks to it through ANTHROPIC_BASE_URL. Every answer
says what the fake received, so a test can check what reached the upstream
without looking inside the server or the CLI:

    turns=3 system=yes model=claude-sonnet-4-6 auth=x-api-key msgs=5 roles=uauau hist=1f0c9a2e

- turns:  user messages that carry text of their own (the CLI's wrapping in
          content blocks and its <system-reminder> blocks do not count)
- system: whether the request's system prompt contains the marker text
          (MARKER-SYS-42 unless --marker says otherwise)
- model:  the model name in the request body
- auth:   x-api-key or bearer, whichever header carried the credential
- msgs:   the conversation's messages with text of their own, user and
          assistant (messages of other roles, which the CLI sends too, and
          empty ones are left out)
- roles:  their roles in order, one letter each (u, a): a history that came
          as separate turns reads `uauau`, one squashed into a single
          message reads `u`
- hist:   the first 8 hex digits of a SHA-256 over those messages' roles and
          texts (`history_digest`), so a test that holds the conversation can
          check that every earlier message arrived, in order and unchanged

A credential starting with the bad-key prefix (sk-ant-bad) is refused with the
API's 401 body. Words in the last user message steer the reply:
SLOW-STREAM streams slowly (for interrupting a stream), FAIL-529 answers 529
overloaded, CACHE-HIT reports the prompt as read from the prompt cache (3
tokens fresh, 7 written to the cache, the rest read from it), THINK-ALOUD
puts a thinking block ("Weighing it up.", signed "c2lnLWZha2U=") before the
echo when the request's `thinking` is on, streamed with its 3 words reported
as `usage.output_tokens_details.thinking_tokens` (each record keeps the
request's `thinking` and `output_config.effort`).

Images: when the last user message holds image blocks, the echo also says
`images=N media=image/png,...` (just before `msgs=`, so the `hist=` suffix
stays last).

Tools (what the CLI sends when it bridges a client's functions over MCP):

- When the request offers tools named `mcp__client__<name>`, the last user
  message has no tool_result blocks and its text asks for `weather in <City>`
  or `time in <Zone>` (several: `weather in Paris and Berlin`, `weather in
  Paris, Rome and Oslo`, `weather in Paris and time in Tokyo`), the answer is
  a text block "Let me check." then one tool_use block per city/zone, all in
  one message (parallel calls), stop_reason tool_use. The tool is the offered
  one whose name has `weather` (or `time`) in it, else the first client tool;
  the input is {"city": ...} or {"zone": ...} (or the tool's only property).
- When the last user message carries tool_result blocks, the answer is the
  text "The tools said: " + the results' texts joined by " | " (an is_error
  result as "ERROR: <text>"; <system-reminder> blocks and surrounding
  whitespace left out), stop_reason end_turn.
- Structured output: when the request offers the CLI's `StructuredOutput`
  tool (from --json-schema) and StructuredOutput has not been called yet, the
  answer calls it (after any client tool calls the prompt asks for) with an
  input built from its input_schema: strings are the prompt's first
  capitalized word after its first word (or "fake"), numbers and integers 21,
  booleans true, arrays [], nested objects recursively ({} without
  properties), enum/const their first value; a schema without properties
  gives {"ok": true}.
- Forced client tools: when there is no lookup, shell command or
  StructuredOutput call to make (above and below), the last user message has
  no tool_result blocks and the request offers a client tool named
  `final_result` or `final_result_<name>` (pydantic-ai's output tool), or one
  whose name the prompt has as a word (`City` in "Describe Paris as a
  City."), the answer calls it, with no text before, with an input built from
  its input_schema as StructuredOutput's is.
- Shell commands (coding agents' own tools, bridged as client tools): when
  the last user message has no tool_result blocks and its text says run and
  a command in backticks (``run `echo hi` ``), and a client tool has `shell`,
  `exec` or `bash` in its name (`shell`, `exec_command`, `shell_command`,
  `local_shell`, `bash`, `exec` by that preference, else the first such), the
  answer is "Let me run that." and one call of it: input {"command": cmd}
  (["bash", "-lc", cmd] when `command` is an array), {"cmd": cmd} for a `cmd`
  property, and for a tool whose description says it runs JavaScript (Codex's
  freeform `exec`) its one string property (else `input`) set to
  `text((await tools.exec_command({cmd: <cmd as JSON>})).output)`.

Tool ids are "toolu_" + 24 random letters and digits; tool inputs stream as
input_json_delta pieces.

Run standalone (prints `PORT=<n>` on stdout once listening) or import it and
call `start()`; either way each request is also recorded (path, header names,
model, auth kind, turns, system flag, tool names offered, tool results and
images in the last user message, the kind of reply and the tools it called)
for tests to inspect, and logged to
stderr as one JSON line. Keys and prompts are never logged.
"""

import argparse
import hashlib
import itertools
import json
import random
import re
import string
import sys
import time
from http.server import BaseHTTPRequestHandler

from common import RecordingFake

DEFAULT_MARKER = "MARKER-SYS-42"
DEFAULT_BAD_PREFIX = "sk-ant-bad"
_REMINDER = re.compile(r"<system-reminder>.*?</system-reminder>", re.S)
_ids = itertools.count(1)


def _text_blocks(content):
    """The text of a message's content, whether a string or a block list."""
    if isinstance(content, str):
        return [content]
    texts = []
    if isinstance(content, list):
        for block in content:
            if isinstance(block, dict) and block.get("type") == "text":
                texts.append(str(block.get("text", "")))
    return texts


def count_user_turns(messages):
    turns = 0
    for msg in messages or []:
        if not isinstance(msg, dict) or msg.get("role") != "user":
            continue
        own = [_REMINDER.sub("", t).strip() for t in _text_blocks(msg.get("content"))]
        if any(own):
            turns += 1
    return turns


def conversation(messages):
    """(role, text) of each user and assistant message with text of its own:
    the text blocks joined by newlines, <system-reminder> blocks cut out,
    surrounding whitespace stripped."""
    out = []
    for msg in messages or []:
        if not isinstance(msg, dict) or msg.get("role") not in ("user", "assistant"):
            continue
        parts = [_REMINDER.sub("", t).strip() for t in _text_blocks(msg.get("content"))]
        text = "\n".join(p for p in parts if p)
        if text:
            out.append((msg["role"], text))
    return out


def history_digest(pairs):
    """The `hist=` value for (role, text) pairs: a test computes it from the
    messages it sent (and the answers it got) to compare with the echo."""
    h = hashlib.sha256()
    for role, text in pairs:
        data = text.strip().encode()
        h.update(f"{role[0]}:{len(data)}:".encode() + data + b"\n")
    return h.hexdigest()[:8]


def history_echo(pairs):
    """The `msgs=N roles=... hist=...` part of an answer."""
    roles = "".join(role[0] for role, _ in pairs)
    return f"msgs={len(pairs)} roles={roles or '-'} hist={history_digest(pairs)}"


def last_user_text(messages):
    for msg in reversed(messages or []):
        if isinstance(msg, dict) and msg.get("role") == "user":
            return " ".join(_text_blocks(msg.get("content")))
    return ""


def system_text(system):
    if isinstance(system, str):
        return system
    return " ".join(_text_blocks(system))


# -- tools, structured output, images ----------------------------------------

CLIENT_TOOL_PREFIX = "mcp__client__"
STRUCTURED_OUTPUT = "StructuredOutput"
_ASK = re.compile(r"\b(weather|time)\s+(?:in|for|at)\s+", re.I)
_rng = random.SystemRandom()


def tool_id():
    return "toolu_" + "".join(_rng.choice(string.ascii_letters + string.digits)
                              for _ in range(24))


def last_user_message(messages):
    for msg in reversed(messages or []):
        if isinstance(msg, dict) and msg.get("role") == "user":
            return msg
    return None


def _blocks(msg, kind):
    content = (msg or {}).get("content")
    if not isinstance(content, list):
        return []
    return [b for b in content if isinstance(b, dict) and b.get("type") == kind]


def tool_result_text(block):
    """A tool_result's text: its string content, or its text blocks joined,
    without the <system-reminder> blocks the CLI appends to some results (a
    token budget, seen with full model ids) that a model would not repeat."""
    pieces = (_REMINDER.sub("", t).strip() for t in _text_blocks(block.get("content")))
    text = " ".join(p for p in pieces if p)
    return f"ERROR: {text}" if block.get("is_error") else text


def tool_names_by_id(messages):
    """tool_use id -> tool name, over the assistant messages."""
    out = {}
    for msg in messages or []:
        if isinstance(msg, dict) and msg.get("role") == "assistant":
            for block in _blocks(msg, "tool_use"):
                out[block.get("id")] = block.get("name")
    return out


def latest_prompt(messages):
    """The text of the latest user message with text of its own
    (<system-reminder> blocks cut out), tool results skipped."""
    for msg in reversed(messages or []):
        if not isinstance(msg, dict) or msg.get("role") != "user":
            continue
        parts = [_REMINDER.sub("", t).strip() for t in _text_blocks(msg.get("content"))]
        text = " ".join(p for p in parts if p)
        if text:
            return text
    return ""


def asked_lookups(text):
    """[(kind, place)] for each `weather in X` / `time in Y` the text asks
    for, several places per ask: "weather in Paris, Rome and Berlin?"."""
    found = []
    matches = list(_ASK.finditer(text))
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        segment = text[m.end():end]
        for part in re.split(r",|;|&|\band\b", segment):
            words = re.findall(r"[\w/+.-]+", part)
            words = [w.strip(".") for w in words if w.strip(".")]
            if not words:
                continue
            capital = []
            for w in words:  # "New York today" -> "New York"
                if w[0].isupper() or capital == [] and "/" in w:
                    capital.append(w)
                elif capital:
                    break
            place = " ".join(capital) or words[0]
            found.append((m.group(1).lower(), place))
    return found


def pick_tool(tools, kind):
    """The offered client tool for `kind` (weather/time): the one whose name
    has the word in it, else the first client tool."""
    client = [t for t in tools if str(t.get("name", "")).startswith(CLIENT_TOOL_PREFIX)]
    for t in client:
        if kind in t["name"][len(CLIENT_TOOL_PREFIX):].lower():
            return t
    return client[0] if client else None


def tool_input(tool, kind, place):
    key = "city" if kind == "weather" else "zone"
    props = ((tool.get("input_schema") or {}).get("properties") or {})
    if key not in props and len(props) == 1:
        key = next(iter(props))
    return {key: place}


def prompt_word(prompt):
    """A short word from the prompt: its first capitalized word after the
    first word, or "fake"."""
    words = re.findall(r"[A-Za-z][\w-]*", prompt)
    for w in words[1:]:
        if w[0].isupper():
            return w
    return "fake"


def value_for(schema, word):
    """A value that fits a JSON schema (the common cases)."""
    if not isinstance(schema, dict):
        return word
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            options = [o for o in schema[key] if isinstance(o, dict)
                       and o.get("type") != "null"] or schema[key]
            return value_for(options[0], word)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None and "properties" in schema:
        kind = "object"
    if kind == "string":
        return word
    if kind in ("number", "integer"):
        return 21
    if kind == "boolean":
        return True
    if kind == "array":
        return []
    if kind == "null":
        return None
    if kind == "object":
        return {k: value_for(v, word) for k, v in (schema.get("properties") or {}).items()}
    return word


def structured_input(schema, prompt):
    """StructuredOutput's input for its input_schema; {"ok": true} when the
    schema names no properties."""
    schema = schema if isinstance(schema, dict) else {}
    if not schema.get("properties"):
        return {"ok": True}
    return value_for(schema, prompt_word(prompt))


def image_note(msg):
    """`images=N media=a,b` for the image blocks of a message, or ""."""
    images = _blocks(msg, "image")
    if not images:
        return ""
    media = [str((b.get("source") or {}).get("media_type")
                 or (b.get("source") or {}).get("type") or "?") for b in images]
    return f"images={len(images)} media={','.join(media)}"


def forced_tool(tools, prompt):
    """The client tool a client forces a call of, as far as the fake can tell
    (the CLI does not pass tool_choice on): one named `final_result` or
    `final_result_<name>` (pydantic-ai's output tools), else one whose name the
    prompt has as a word ("Describe Paris as a City." for a tool `City`, as
    LangChain's with_structured_output names it)."""
    client = [t for t in tools if str(t.get("name", "")).startswith(CLIENT_TOOL_PREFIX)]
    bare = [(t["name"][len(CLIENT_TOOL_PREFIX):], t) for t in client]
    for name, t in bare:
        if name == "final_result" or name.startswith("final_result_"):
            return t
    words = set(re.findall(r"[\w-]+", prompt))
    return next((t for name, t in bare if name in words), None)


_RUN = re.compile(r"\brun\s+`([^`]+)`", re.I)
SHELL_TOOL_NAMES = ("shell", "exec_command", "shell_command", "local_shell", "bash", "exec")


def shell_call(tools, prompt):
    """(name, input) of the shell tool call the prompt asks for with
    "run `<command>`", or None (see the docstring's "Shell commands")."""
    m = _RUN.search(prompt)
    client = [t for t in tools if str(t.get("name", "")).startswith(CLIENT_TOOL_PREFIX)]
    if not m or not client:
        return None
    cmd = m.group(1)

    def bare(t):  # the name without the bridge's prefix (and any namespace)
        return re.split(r"__|\.", t["name"][len(CLIENT_TOOL_PREFIX):])[-1].lower()

    tool = next((t for want in SHELL_TOOL_NAMES for t in client if bare(t) == want), None)
    tool = tool or next((t for t in client
                         if any(w in bare(t) for w in ("shell", "exec", "bash"))), None)
    if tool is None:
        return None
    props = (tool.get("input_schema") or {}).get("properties") or {}
    if "javascript" in str(tool.get("description", "")).lower():
        strings = [k for k, v in props.items() if (v or {}).get("type") == "string"]
        key = strings[0] if len(strings) == 1 else "input"
        script = f"text((await tools.exec_command({{cmd: {json.dumps(cmd)}}})).output)"
        return tool["name"], {key: script}
    if "cmd" in props and "command" not in props:
        return tool["name"], {"cmd": cmd}
    if (props.get("command") or {}).get("type") == "array":
        return tool["name"], {"command": ["bash", "-lc", cmd]}
    return tool["name"], {"command": cmd}


def plan_reply(messages, tools):
    """What to answer: ("text", text) or ("tools", text_before, [(name, input)]),
    or None for the usual echo."""
    tools = [t for t in tools or [] if isinstance(t, dict)]
    names = {t.get("name") for t in tools}
    last = last_user_message(messages)
    results = _blocks(last, "tool_result")
    structured = next((t for t in tools if t.get("name") == STRUCTURED_OUTPUT), None)
    called = tool_names_by_id(messages)
    if results:
        done_structured = any(called.get(b.get("tool_use_id")) == STRUCTURED_OUTPUT
                              for b in results)
        if structured and not done_structured:
            return ("tools", "", [(STRUCTURED_OUTPUT, structured_input(
                structured.get("input_schema"), latest_prompt(messages)))])
        return ("text", "The tools said: " + " | ".join(tool_result_text(b) for b in results))
    prompt = latest_prompt(messages)
    calls = []
    if any(str(n).startswith(CLIENT_TOOL_PREFIX) for n in names):
        for kind, place in asked_lookups(prompt):
            tool = pick_tool(tools, kind)
            calls.append((tool["name"], tool_input(tool, kind, place)))
    shell = shell_call(tools, prompt)
    if shell and not calls:
        return ("tools", "Let me run that.", [shell])
    if calls:
        return ("tools", "Let me check.", calls)
    if structured:
        return ("tools", "", [(STRUCTURED_OUTPUT, structured_input(
            structured.get("input_schema"), prompt))])
    forced = forced_tool(tools, prompt)
    if forced:
        return ("tools", "", [(forced["name"], structured_input(
            forced.get("input_schema"), prompt))])
    return None


class FakeAnthropic(RecordingFake):
    """One running fake. `records` grows by one dict per request."""

    def __init__(self, port=0, marker=DEFAULT_MARKER, bad_prefix=DEFAULT_BAD_PREFIX,
                 slow_delay=0.25, slow_chunks=60, quiet=False, dump_dir=None, allowance=None):
        self.marker = marker
        # A fake_allowance.Allowance to count down (None: no allowance
        # headers), or a dict of them by credential (one login each).
        self.allowance = allowance
        self.dump_dir = dump_dir
        self.bad_prefix = bad_prefix
        self.slow_delay = slow_delay
        self.slow_chunks = slow_chunks
        super().__init__("anthropic", _Handler, port, quiet)
        self.url = f"http://127.0.0.1:{self.port}"

    def messages_records(self):
        return self.records_where(lambda r: r.get("kind") == "messages")


THOUGHT = "Weighing it up."
SIGNATURE = "c2lnLWZha2U="


def start(**kwargs):
    """Start a fake on a background thread; call `.close()` when done."""
    return FakeAnthropic(**kwargs).serve_in_thread()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner = None  # set by RecordingFake

    def log_message(self, fmt, *args):  # the default logs every line to stderr
        pass

    # -- plumbing -------------------------------------------------------

    def _body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send_json(self, status, obj, extra=None):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("request-id", f"req_fake{next(_ids):06d}")
        for k, v in {**getattr(self, "allowance_headers", {}), **(extra or {})}.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _chunk(self, data):
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _event(self, name, obj):
        self._chunk(f"event: {name}\ndata: {json.dumps(obj)}\n\n".encode())

    def _auth(self):
        key = self.headers.get("x-api-key")
        if key:
            return "x-api-key", key
        bearer = self.headers.get("Authorization", "")
        if bearer.lower().startswith("bearer "):
            return "bearer", bearer[7:].strip()
        return "none", ""

    def _base_record(self):
        path = self.path
        return {
            "method": self.command,
            "path": path,
            "header_names": sorted({k.lower() for k in self.headers.keys()}),
            "anthropic_beta": self.headers.get("anthropic-beta"),
            "anthropic_version": self.headers.get("anthropic-version"),
            "user_agent": self.headers.get("User-Agent"),
            "session_header": self.headers.get("x-claude-code-session-id"),
        }

    # -- routes ---------------------------------------------------------

    def do_GET(self):
        rec = self._base_record()
        rec["kind"] = "other"
        self.owner.record(rec)
        self._send_json(404, {"type": "error", "error": {"type": "not_found_error",
                                                          "message": "not found"}})

    def do_HEAD(self):
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self):
        self.allowance_headers = {}
        raw = self._body()
        rec = self._base_record()
        route = self.path.split("?", 1)[0]
        if route == "/v1/messages/count_tokens":
            rec["kind"] = "count_tokens"
            self.owner.record(rec)
            self._send_json(200, {"input_tokens": max(1, len(raw) // 4)})
            return
        if route != "/v1/messages":
            rec["kind"] = "other"
            self.owner.record(rec)
            self._send_json(200, {})
            return

        rec["kind"] = "messages"
        if self.owner.dump_dir:  # debugging aid, off unless asked for
            with open(f"{self.owner.dump_dir}/request-{next(_ids):06d}.json", "wb") as f:
                f.write(raw)
        kind, key = self._auth()
        rec["auth"] = kind
        try:
            req = json.loads(raw or b"{}")
        except ValueError:
            req = None
        if not isinstance(req, dict):
            self.owner.record(rec)
            self._send_json(400, {"type": "error", "error": {
                "type": "invalid_request_error", "message": "body is not a JSON object"}})
            return
        messages = req.get("messages") or []
        model = str(req.get("model", ""))
        turns = count_user_turns(messages)
        system = self.owner.marker in system_text(req.get("system"))
        prompt = last_user_text(messages)
        rec.update({
            "model": model,
            "stream": bool(req.get("stream")),
            "turns": turns,
            "roles": "".join(r[0] for r, _ in conversation(messages)),
            "system_marker": system,
            "max_tokens": req.get("max_tokens"),
            "tools": len(req.get("tools") or []),
            "tool_names": [str(t.get("name")) for t in req.get("tools") or []
                           if isinstance(t, dict)],
            "tool_results": len(_blocks(last_user_message(messages), "tool_result")),
            "images": len(_blocks(last_user_message(messages), "image")),
            "thinking": req.get("thinking"),
            "effort": (req.get("output_config") or {}).get("effort"),
        })
        plan = plan_reply(messages, req.get("tools"))
        rec["reply"] = plan[0] if plan else "echo"
        if plan and plan[0] == "tools":
            rec["tool_calls"] = [name for name, _ in plan[2]]
        self.owner.record(rec)

        if kind == "none" or key.startswith(self.owner.bad_prefix):
            self._send_json(401, {"type": "error", "error": {
                "type": "authentication_error", "message": "invalid x-api-key"}})
            return
        allowance = self.owner.allowance
        if isinstance(allowance, dict):
            allowance = allowance.get(key)
        rec["credential"] = key[-6:]
        if allowance is not None:
            refused, self.allowance_headers = allowance.spend()
            rec["allowance"] = self.allowance_headers.get(
                "anthropic-ratelimit-unified-status")
            if refused:
                self._send_json(429, {"type": "error", "error": {
                    "type": "rate_limit_error",
                    "message": "This request would exceed your account's rate limit. "
                               "Please try again later."}})
                return
        if "FAIL-529" in prompt:
            self._send_json(529, {"type": "error", "error": {
                "type": "overloaded_error", "message": "Overloaded"}})
            return

        self.cache_hit = "CACHE-HIT" in prompt
        if plan and plan[0] == "tools":
            _, before, calls = plan
            blocks = ([{"type": "text", "text": before}] if before else []) + [
                {"type": "tool_use", "id": tool_id(), "name": name, "input": args}
                for name, args in calls]
            if req.get("stream"):
                self._stream_blocks(model, blocks, "tool_use", len(raw))
            else:
                self._send_json(200, self._message(model, blocks, len(raw), "tool_use"))
            return
        if plan:
            text = plan[1]
        else:
            images = image_note(last_user_message(messages))
            text = (f"turns={turns} system={'yes' if system else 'no'} model={model} "
                    f"auth={kind} {images + ' ' if images else ''}"
                    f"{history_echo(conversation(messages))}")
        slow = "SLOW-STREAM" in prompt
        thinking_on = (req.get("thinking") or {}).get("type") in ("enabled", "adaptive")
        if "THINK-ALOUD" in prompt and thinking_on:
            blocks = [{"type": "thinking", "thinking": THOUGHT, "signature": SIGNATURE},
                      {"type": "text", "text": text}]
            if req.get("stream"):
                self._stream_blocks(model, blocks, "end_turn", len(raw))
            else:
                self._send_json(200, self._message(model, blocks, len(raw)))
            return
        if req.get("stream"):
            self._stream(model, text, slow, len(raw))
        else:
            self._send_json(200, self._message(model, text, len(raw)))

    # -- replies --------------------------------------------------------

    def _usage(self, raw_len, out):
        if getattr(self, "cache_hit", False):
            # A prompt mostly read from the cache, a little written to it.
            return {"input_tokens": 3, "output_tokens": out,
                    "cache_creation_input_tokens": 7,
                    "cache_read_input_tokens": max(1, raw_len // 4)}
        return {"input_tokens": max(1, raw_len // 4), "output_tokens": out,
                "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}

    def _message(self, model, text, raw_len, stop_reason="end_turn"):
        """A whole message; `text` may also be a list of content blocks."""
        blocks = text if isinstance(text, list) else [{"type": "text", "text": text}]
        words = sum(len(json.dumps(b.get("input", b.get("text", b.get("thinking", "")))).split())
                    for b in blocks)
        return {
            "id": f"msg_fake{next(_ids):06d}", "type": "message", "role": "assistant",
            "model": model, "content": blocks,
            "stop_reason": stop_reason, "stop_sequence": None,
            "usage": self._usage(raw_len, words if isinstance(text, list)
                                 else len(text.split())),
        }

    def _stream_head(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("request-id", f"req_fake{next(_ids):06d}")
        for k, v in getattr(self, "allowance_headers", {}).items():
            self.send_header(k, v)
        self.end_headers()

    def _stream_blocks(self, model, blocks, stop_reason, raw_len):
        """Streams a message of text and tool_use blocks: text as text_delta
        pieces, each tool's input as input_json_delta pieces."""
        self._stream_head()
        try:
            start = self._message(model, "", raw_len)
            start["content"] = []
            start["stop_reason"] = None
            start["usage"]["output_tokens"] = 1
            self._event("message_start", {"type": "message_start", "message": start})
            pieces_sent = 0
            for index, block in enumerate(blocks):
                if block["type"] == "text":
                    first = {"type": "text", "text": ""}
                    pieces = [{"type": "text_delta", "text": p}
                              for p in re.findall(r"\S+\s*", block["text"])]
                elif block["type"] == "thinking":
                    first = {"type": "thinking", "thinking": "", "signature": ""}
                    pieces = [{"type": "thinking_delta", "thinking": p}
                              for p in re.findall(r"\S+\s*", block["thinking"])]
                    pieces.append({"type": "signature_delta", "signature": block["signature"]})
                else:
                    first = {"type": "tool_use", "id": block["id"], "name": block["name"],
                             "input": {}}
                    data = json.dumps(block["input"])
                    pieces = [{"type": "input_json_delta", "partial_json": data[i:i + 7]}
                              for i in range(0, len(data), 7)]
                self._event("content_block_start", {"type": "content_block_start",
                                                    "index": index, "content_block": first})
                if index == 0:
                    self._event("ping", {"type": "ping"})
                for delta in pieces:
                    self._event("content_block_delta", {"type": "content_block_delta",
                                                        "index": index, "delta": delta})
                pieces_sent += len(pieces)
                self._event("content_block_stop", {"type": "content_block_stop",
                                                   "index": index})
            usage = {"output_tokens": max(1, pieces_sent)}
            thought = sum(len(b["thinking"].split()) for b in blocks if b["type"] == "thinking")
            if thought:
                # As the API reports thinking (the CLI's thinking-token-count beta).
                usage["output_tokens_details"] = {"thinking_tokens": thought}
            self._event("message_delta", {"type": "message_delta",
                                          "delta": {"stop_reason": stop_reason,
                                                    "stop_sequence": None},
                                          "usage": usage})
            self._event("message_stop", {"type": "message_stop"})
            self._chunk(b"")
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.close_connection = True

    def _stream(self, model, text, slow, raw_len):
        self._stream_head()
        pieces = re.findall(r"\S+\s*", text)
        if slow:
            pieces = [text + " "] + [f"tick{i} " for i in range(self.owner.slow_chunks)]
        try:
            start = self._message(model, "", raw_len)
            start["content"] = []
            start["stop_reason"] = None
            start["usage"]["output_tokens"] = 1
            self._event("message_start", {"type": "message_start", "message": start})
            self._event("content_block_start", {"type": "content_block_start", "index": 0,
                                                "content_block": {"type": "text", "text": ""}})
            self._event("ping", {"type": "ping"})
            for piece in pieces:
                self._event("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                    "delta": {"type": "text_delta",
                                                              "text": piece}})
                if slow:
                    time.sleep(self.owner.slow_delay)
            self._event("content_block_stop", {"type": "content_block_stop", "index": 0})
            self._event("message_delta", {"type": "message_delta",
                                          "delta": {"stop_reason": "end_turn",
                                                    "stop_sequence": None},
                                          "usage": {"output_tokens": len(pieces)}})
            self._event("message_stop", {"type": "message_stop"})
            self._chunk(b"")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away mid-stream: expected when a test stops it
        self.close_connection = True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--marker", default=DEFAULT_MARKER)
    ap.add_argument("--bad-key-prefix", default=DEFAULT_BAD_PREFIX)
    ap.add_argument("--quiet", action="store_true", help="do not log requests to stderr")
    ap.add_argument("--dump-dir", help="write each /v1/messages body to a file here (debugging)")
    args = ap.parse_args()
    fake = FakeAnthropic(port=args.port, marker=args.marker, bad_prefix=args.bad_key_prefix,
                         quiet=args.quiet, dump_dir=args.dump_dir)
    print(f"PORT={fake.port}", flush=True)
    try:
        fake.httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        fake.httpd.server_close()


if __name__ == "__main__":
    main()
