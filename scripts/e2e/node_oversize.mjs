// Sends chat requests whose bodies are over the server's limit (run_e2e.py
// starts it with MAX_BODY_BYTES at 1 MiB)
// through the official Node `openai` package and prints one JSON line:
// for each size, how the tries ended ({"413": n} when every one got the
// server's 413, anything else names what the SDK threw instead).
// run_e2e.py runs it and checks the line.
import { client } from "./node_client.mjs";

const result = {};
for (const [size, tries] of [[1_200_000, 20], [5_000_000, 5]]) {
  const outcomes = {};
  for (let i = 0; i < tries; i++) {
    let outcome;
    try {
      await client.chat.completions.create({
        model: "gpt-4o-mini",
        messages: [{ role: "user", content: "x".repeat(size) }],
      });
      outcome = "answered";
    } catch (e) {
      outcome = e.status === 413 && e.code === "payload_too_large" ? "413" : e.constructor.name;
    }
    outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
  }
  result[size] = outcomes;
}
console.log(JSON.stringify(result));
