// The Vercel AI SDK (`ai` with @ai-sdk/openai and @ai-sdk/anthropic) on its
// defaults against the server, through the recorder at E2E_BASE_URL:
//
//   node ai_sdk.mjs responses <model>   openai(model): the Responses API, three
//                                       turns, each sending the history so far
//                                       (response.messages appended)
//   node ai_sdk.mjs chat-tool <model>   openai.chat(model), generateText with a
//                                       tool and stopWhen: stepCountIs(5)
//   node ai_sdk.mjs chat-object <model> openai.chat(model), generateObject (zod),
//                                       then generateText with Output.object
//   node ai_sdk.mjs anthropic-tool <model>, anthropic-object <model>: the same
//                                       with anthropic(model) on /v1/messages
//
// Prints one JSON line: {turns: [{text, ms, steps}], object?, output?, toolCalls}.
import { BASE, KEY, load, run, timed } from "./common.mjs";

const [mode, model] = process.argv.slice(2);
const ai = await load("ai");
const { z } = await load("zod");
const { createOpenAI } = await load("@ai-sdk/openai");
const { createAnthropic } = await load("@ai-sdk/anthropic");

const openai = createOpenAI({ baseURL: `${BASE}/claude/v1`, apiKey: KEY });
const anthropic = createAnthropic({ baseURL: `${BASE}/v1`, apiKey: KEY });

const toolCalls = [];
const tools = {
  get_weather: ai.tool({
    description: "Current weather in a city",
    inputSchema: z.object({ city: z.string().describe("The city") }),
    execute: async ({ city }) => {
      toolCalls.push(city);
      return `sunny, 18 C in ${city}`;
    },
  }),
};
const City = z.object({ city: z.string(), population: z.number().int(), capital: z.boolean() });

function modelFor(kind) {
  return kind === "anthropic" ? anthropic(model) : kind === "chat" ? openai.chat(model) : openai(model);
}

async function toolLoop(kind) {
  const [result, ms] = await timed(() =>
    ai.generateText({
      model: modelFor(kind),
      tools,
      stopWhen: ai.stepCountIs(5),
      prompt: "What is the weather in Paris?",
    }),
  );
  return {
    turns: [{ text: result.text, ms, steps: result.steps.length, finish: result.finishReason }],
    toolCalls,
  };
}

async function object(kind) {
  const prompt = "Describe Paris as one object.";
  const [result, ms] = await timed(() => ai.generateObject({ model: modelFor(kind), schema: City, prompt }));
  // What the SDK now recommends instead: generateText with an output setting.
  const [viaText, ms2] = await timed(() =>
    ai.generateText({ model: modelFor(kind), output: ai.Output.object({ schema: City }), prompt }),
  );
  return { turns: [{ ms }, { ms: ms2 }], object: result.object, output: viaText.output };
}

async function responsesTurns() {
  const model_ = openai(model);
  const messages = [];
  const turns = [];
  for (const prompt of ["hi from the AI SDK", "and a second turn", "and a third"]) {
    messages.push({ role: "user", content: prompt });
    const [result, ms] = await timed(() => ai.generateText({ model: model_, messages }));
    messages.push(...result.response.messages);
    turns.push({ text: result.text, ms, responseId: result.providerMetadata?.openai?.responseId ?? null });
  }
  return { turns, toolCalls };
}

await run(async () => {
  switch (mode) {
    case "responses":
      return responsesTurns();
    case "chat-tool":
      return toolLoop("chat");
    case "chat-object":
      return object("chat");
    case "anthropic-tool":
      return toolLoop("anthropic");
    case "anthropic-object":
      return object("anthropic");
    default:
      throw new Error(`unknown mode ${mode}`);
  }
});
