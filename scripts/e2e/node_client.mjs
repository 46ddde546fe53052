// The official Node `openai` client the e2e scripts share, from the e2e
// cache (E2E_NODE_MODULES), not from a node_modules beside these files,
// pointed at E2E_BASE_URL with E2E_API_KEY and no retries.
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(path.join(process.env.E2E_NODE_MODULES, "noop.js"));
const OpenAI = require("openai").default ?? require("openai");

export const client = new OpenAI({
  baseURL: process.env.E2E_BASE_URL,
  apiKey: process.env.E2E_API_KEY,
  maxRetries: 0,
  timeout: 60_000,
});
