#!/usr/bin/env python3
"""`make bench` phase "forced calls": what keeping a forced call's turn open
is worth to a client that does answer it. pydantic-ai (`output_type`, on
`OpenAIChatModel`) asks for a City, then its next run sends the call's
result with a new question (`message_history`): the time of that next run
when the turn waited for it (warm), and when it had been given up first (a
second forced call of the same key past MAX_TOOL_WAITS_PER_KEY=1: the
results then reach a resumed session as text). The real `claude` CLI of
.cache/e2e against the e2e fake Anthropic API. A benchmark, not a test.

    .cache/e2e/venv/bin/python scripts/bench/forced.py --bin SERVER

BENCH_FORCED_RUNS (default 10) pairs are run; medians are printed.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
import fake_anthropic  # noqa: E402
from common import cli_path, free_port  # noqa: E402

KEY = "sk-cca-bench-0123456789abcdef"




def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True)
    args = parser.parse_args()
    from pydantic import BaseModel
    from pydantic_ai import Agent
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    class City(BaseModel):
        """A city."""
        city: str
        population: int
        capital: bool

    runs = int(os.environ.get("BENCH_FORCED_RUNS", "10"))
    fake = fake_anthropic.start(quiet=True)
    tmp = tempfile.mkdtemp(prefix="bench-forced-")
    port = free_port()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": tmp, "HOST": "127.0.0.1",
           "PORT": str(port), "API_KEY": KEY, "STATE_DIR": os.path.join(tmp, "state"),
           "CLAUDE_PATH": cli_path(), "ANTHROPIC_BASE_URL": fake.url,
           "ANTHROPIC_API_KEY": "sk-ant-e2e-good-key",
           "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "WARM_MIN_FREE_MB": "0",
           "RATE_LIMIT_PER_IP": "0", "RATE_LIMIT_PER_SESSION": "0",
           "MAX_TOOL_WAITS_PER_KEY": "1"}
    with open(os.path.join(tmp, "server.log"), "wb") as log:
        server = subprocess.Popen([args.bin], env=env, stdout=log, stderr=log,
                                  stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    sys.exit("the server did not start")
                time.sleep(0.1)
        provider = OpenAIProvider(base_url=f"http://127.0.0.1:{port}/claude/v1", api_key=KEY)
        agent = Agent(OpenAIChatModel("claude-sonnet-4-6", provider=provider), output_type=City)
        kept, given_up = [], []
        for _ in range(runs):
            first = agent.run_sync("Describe Paris as a City.")
            started = time.monotonic()
            agent.run_sync("Now describe Rome as a City.", message_history=first.all_messages())
            kept.append(time.monotonic() - started)
            first = agent.run_sync("Describe Paris as a City.")
            agent.run_sync("Describe Oslo as a City.")  # gives the first one's turn up
            started = time.monotonic()
            agent.run_sync("Now describe Rome as a City.", message_history=first.all_messages())
            given_up.append(time.monotonic() - started)
    finally:
        server.terminate()
        server.wait(timeout=30)
        fake.close()

    def row(name, xs):
        ms = sorted(x * 1000 for x in xs)
        return f"| {name} | {statistics.median(ms):.0f} ms | {ms[0]:.0f} ms | {ms[-1]:.0f} ms |"

    print(f"\nForced calls: pydantic-ai's next run after an output_type call, {runs} each\n")
    print("| next run | median | min | max |\n|---|---|---|---|")
    print(row("the turn waited for it (warm)", kept))
    print(row("the turn had been given up", given_up))


if __name__ == "__main__":
    main()
