// Anthropic's TypeScript SDK (@anthropic-ai/sdk) on its defaults against the
// server's Messages API, through the recorder at E2E_BASE_URL:
//
//   node anthropic_ts.mjs create <model>       messages.create, then a second
//                                              turn resending the history
//   node anthropic_ts.mjs tool-runner <model>  client.beta.messages.toolRunner
//                                              with one tool, run to the end
//
// Prints one JSON line: {turns: [{text, ms, id, ...}], final?, toolCalls}.
import { BASE, KEY, load, run, timed } from "./common.mjs";

const [mode, model] = process.argv.slice(2);
const sdk = await load("@anthropic-ai/sdk");
const Anthropic = sdk.default ?? sdk.Anthropic;
const { betaTool } = await load("@anthropic-ai/sdk", "helpers/beta/json-schema.mjs");

const client = new Anthropic({ baseURL: BASE, apiKey: KEY });

const textOf = (message) =>
  message.content
    .filter((b) => b.type === "text")
    .map((b) => b.text)
    .join("");

async function create() {
  const messages = [{ role: "user", content: "hi from the Anthropic TS SDK" }];
  const turns = [];
  for (const next of [null, "and a second turn"]) {
    if (next) messages.push({ role: "user", content: next });
    const [{ data, response }, ms] = await timed(() =>
      client.messages.create({ model, max_tokens: 1024, messages }).withResponse(),
    );
    messages.push({ role: "assistant", content: data.content });
    turns.push({
      text: textOf(data),
      ms,
      id: data.id,
      stop: data.stop_reason,
      sessionId: response.headers.get("x-claude-session-id"),
      warm: response.headers.get("x-claude-warm"),
    });
  }
  return { turns, toolCalls: [] };
}

async function toolRunner() {
  const toolCalls = [];
  const getWeather = betaTool({
    name: "get_weather",
    description: "Current weather in a city",
    inputSchema: {
      type: "object",
      properties: { city: { type: "string", description: "The city" } },
      required: ["city"],
    },
    run: async ({ city }) => {
      toolCalls.push(city);
      return `sunny, 18 C in ${city}`;
    },
  });
  const turns = [];
  let last = performance.now();
  const runner = client.beta.messages.toolRunner({
    model,
    max_tokens: 1024,
    tools: [getWeather],
    messages: [{ role: "user", content: "What is the weather in Paris?" }],
  });
  for await (const message of runner) {
    const now = performance.now();
    turns.push({ text: textOf(message), ms: Math.round(now - last), id: message.id, stop: message.stop_reason });
    last = now;
  }
  const final = await runner.done();
  return { turns, final: textOf(final), toolCalls };
}

await run(async () => {
  if (mode === "create") return create();
  if (mode === "tool-runner") return toolRunner();
  throw new Error(`unknown mode ${mode}`);
});
