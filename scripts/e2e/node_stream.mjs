// Streams one Claude Code mode answer through the official Node `openai`
// package and prints one JSON line: {"text", "finish", "sessionId"}.
// run_e2e.py runs it and checks the line.
import { client } from "./node_client.mjs";

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
