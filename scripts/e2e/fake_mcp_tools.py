#!/usr/bin/env python3
"""A tiny stdio MCP server standing in for a client's functions, so that
check_fake_with_cli.py can run the real CLI through a tool loop without the
server: the CLI is started with

    --mcp-config '{"mcpServers":{"client":{"command":"python3","args":["fake_mcp_tools.py"]}}}'
    --allowedTools mcp__client

and offers its tools to the API as mcp__client__get_weather and
mcp__client__get_time. get_weather answers "sunny 21C in <city>"; for the city
Atlantis it answers an error result ("no such city: Atlantis"). get_time
answers "12:00 in <zone>". With E2E_MCP_LOG set, every call's name and
arguments are appended to that file as one JSON line.
"""

import json
import os
import sys

TOOLS = [
    {"name": "get_weather", "description": "The weather in a city",
     "inputSchema": {"type": "object", "properties": {"city": {"type": "string"}},
                     "required": ["city"]}},
    {"name": "get_time", "description": "The time in a time zone",
     "inputSchema": {"type": "object", "properties": {"zone": {"type": "string"}},
                     "required": ["zone"]}},
]


def call(name, args):
    """(text, is_error) of one tool call."""
    if name == "get_weather":
        city = str(args.get("city", "?"))
        if city == "Atlantis":
            return f"no such city: {city}", True
        return f"sunny 21C in {city}", False
    if name == "get_time":
        return f"12:00 in {args.get('zone', '?')}", False
    return f"unknown tool {name}", True


def main():
    log = os.environ.get("E2E_MCP_LOG")
    for line in sys.stdin:
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        mid, method = msg.get("id"), msg.get("method")
        params = msg.get("params") or {}
        if method == "initialize":
            result = {"protocolVersion": params.get("protocolVersion", "2025-06-18"),
                      "capabilities": {"tools": {}},
                      "serverInfo": {"name": "client", "version": "0.1"}}
        elif method == "tools/list":
            result = {"tools": TOOLS}
        elif method == "tools/call":
            name, args = params.get("name"), params.get("arguments") or {}
            if log:
                with open(log, "a") as f:
                    f.write(json.dumps({"name": name, "arguments": args}) + "\n")
            text, is_error = call(name, args)
            result = {"content": [{"type": "text", "text": text}], "isError": is_error}
        elif mid is None:
            continue  # a notification
        else:
            result = {}
        sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": mid, "result": result}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
