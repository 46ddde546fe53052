// What the client scripts share: packages loaded from the e2e cache
// (E2E_NODE_MODULES) by their ESM entry, the recorder's URL (E2E_BASE_URL,
// no path) and the server's key (E2E_API_KEY), a timer, and the one JSON
// line each script prints last for clients_node.py to read.
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

export const BASE = process.env.E2E_BASE_URL;
export const KEY = process.env.E2E_API_KEY;
const NODE_MODULES = process.env.E2E_NODE_MODULES;

/** import() of a package (or a file under it: "pkg/sub/file.mjs") from the cache. */
export async function load(name, file) {
  const dir = path.join(NODE_MODULES, name);
  if (file) return import(pathToFileURL(path.join(dir, file)).href);
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8"));
  let entry = pkg.exports?.["."] ?? pkg.exports ?? pkg.module ?? pkg.main ?? "index.js";
  while (entry && typeof entry === "object") entry = entry.import ?? entry.default ?? entry.require;
  return import(pathToFileURL(path.join(dir, entry)).href);
}

/** Runs `fn`, returns [its value, milliseconds taken]. */
export async function timed(fn) {
  const start = performance.now();
  const value = await fn();
  return [value, Math.round(performance.now() - start)];
}

/** Prints the result line; errors as {"error": {...}} with what the API said. */
export function emit(obj) {
  console.log(JSON.stringify(obj));
}

export function describeError(e) {
  const out = { name: e?.name, message: String(e?.message ?? e).slice(0, 2000) };
  for (const key of ["status", "statusCode", "url", "responseBody", "error", "param", "code"]) {
    if (e?.[key] !== undefined) out[key] = e[key];
  }
  if (e?.lastError) out.lastError = describeError(e.lastError);
  if (e?.cause && e.cause !== e) out.cause = describeError(e.cause);
  return out;
}

/** Runs main(); any exception becomes {"error": ...} and exit status 1. */
export async function run(main) {
  try {
    emit(await main());
  } catch (e) {
    emit({ error: describeError(e) });
    process.exitCode = 1;
  }
}
