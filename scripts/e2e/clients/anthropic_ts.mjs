// Anthropic's TypeScript SDK (@anthropic-ai/sdk) on its defaults against the
// server's Messages API, through the recorder at E2E_BASE_URL:
//
//   node anthropic_ts.mjs create <model>       messages.create, then a second
//                                              turn resending the history
//   node anthropic_ts.mjs tool-runner <model>  client.beta.messages.toolRunner
//                                              with one tool, run to the end
//   node anthropic_ts.mjs tool-runner-twice <model>
//                                              the same, then a second runner
//                                              with the whole history and a
//                                              new question (a new thread)
//   node anthropic_ts.mjs thread <model>       one thread
//                                              (client.beta.messages.thread),
//                                              a toolRunner for each of two
//                                              questions
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

function weatherTool(toolCalls) {
  return betaTool({
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
}

// Each message a runner yields is one request: one turn each.
async function steps(runner, turns) {
  let last = performance.now();
  for await (const message of runner) {
    const now = performance.now();
    turns.push({ text: textOf(message), ms: Math.round(now - last), id: message.id, stop: message.stop_reason });
    last = now;
  }
  return runner.done();
}

async function toolRunner() {
  const toolCalls = [];
  const turns = [];
  const runner = client.beta.messages.toolRunner({
    model,
    max_tokens: 1024,
    tools: [weatherTool(toolCalls)],
    messages: [{ role: "user", content: "What is the weather in Paris?" }],
  });
  const final = await steps(runner, turns);
  return { turns, final: textOf(final), toolCalls };
}

async function toolRunnerTwice() {
  const toolCalls = [];
  const turns = [];
  const tools = [weatherTool(toolCalls)];
  const first = client.beta.messages.toolRunner({
    model,
    max_tokens: 1024,
    tools,
    messages: [{ role: "user", content: "What is the weather in Paris?" }],
  });
  const finals = [textOf(await steps(first, turns))];
  // The whole conversation so far, as an app keeps it, and a new question.
  const history = [...first.params.messages];
  const done = await first.done();
  if (history.at(-1)?.role !== "assistant") history.push({ role: "assistant", content: done.content });
  history.push({ role: "user", content: "And the weather in Rome?" });
  const second = client.beta.messages.toolRunner({ model, max_tokens: 1024, tools, messages: history });
  finals.push(textOf(await steps(second, turns)));
  return { turns, finals, toolCalls };
}

async function oneThread() {
  const toolCalls = [];
  const turns = [];
  const thread = client.beta.messages.thread({ model, max_tokens: 1024, tools: [weatherTool(toolCalls)] });
  const finals = [];
  for (const question of ["What is the weather in Paris?", "And the weather in Rome?"]) {
    thread.append({ role: "user", content: question });
    finals.push(textOf(await steps(thread.toolRunner(), turns)));
  }
  return { turns, finals, toolCalls };
}

await run(async () => {
  if (mode === "create") return create();
  if (mode === "tool-runner") return toolRunner();
  if (mode === "tool-runner-twice") return toolRunnerTwice();
  if (mode === "thread") return oneThread();
  throw new Error(`unknown mode ${mode}`);
});
