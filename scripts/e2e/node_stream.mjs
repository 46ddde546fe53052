// Streams one Claude Code mode answer through the official Node `openai`
// package and prints one JSON line: {"text", "finish", "sessionId"}.
// run_e2e.py runs it and checks the line. The package comes from the e2e
// cache (E2E_NODE_MODULES), not from a node_modules beside this file.
import { createRequire } from "node:module";
import path from "node:path";

const modules = process.env.E2E_NODE_MODULES;
const require = createRequire(path.join(modules, "noop.js"));
const OpenAI = require("openai").default ?? require("openai");

const client = new OpenAI({
  baseURL: process.env.E2E_BASE_URL,
  apiKey: process.env.E2E_API_KEY,
  maxRetries: 0,
  timeout: 60_000,
});

const { data: stream, response } = await client.chat.completions
  .create(
    { model: "sonnet", messages: [{ role: "user", content: "hi from node" }], stream: true },
    { headers: { "X-Claude-Code": "true" } },
  )
  .withResponse();

let text = "";
const finish = [];
for await (const chunk of stream) {
  for (const choice of chunk.choices) {
    text += choice.delta?.content ?? "";
    if (choice.finish_reason) finish.push(choice.finish_reason);
  }
}
console.log(JSON.stringify({ text, finish, sessionId: response.headers.get("x-claude-session-id") }));
