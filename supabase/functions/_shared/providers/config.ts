/**
 * Providers by settings (CONTRACT.md §3): `MESSAGE_BUS_PROVIDERS=kimi,glm,<name>,...` and for each `<NAME>_API_KEY`,
 * `<NAME>_BASE_URL`, `<NAME>_MODEL` (`<NAME>`: the name upper-cased, `-` → `_`), optionally `<NAME>_FALLBACKS`,
 * `<NAME>_MAX_CONCURRENCY`, `<NAME>_FILES`. `kimi` and `glm` are built in (their base URL and model have defaults).
 * Every problem is collected, so a bad configuration fails at boot with all of them listed.
 */

/** A route: a provider and, optionally, a model (the provider's default when absent). */
export interface RouteRef {
  provider: string;
  model?: string;
}

export interface ProviderConfig {
  name: string;
  baseURL: string;
  apiKey?: string;
  defaultModel: string;
  /** Tried in order when this provider fails after its retries or its circuit is open (§9). */
  fallbacks: RouteRef[];
  /** Calls in flight across all instances; undefined = unlimited. */
  maxConcurrency?: number;
  /** How files reach this provider in chat (§13). */
  files: "extract" | "inline";
}

const BUILT_IN: Record<string, { baseURL: string; model: string; files: "extract" | "inline" }> = {
  kimi: { baseURL: "https://api.moonshot.ai/v1", model: "kimi-k2-0905-preview", files: "extract" },
  glm: { baseURL: "https://api.z.ai/api/paas/v4", model: "glm-4.5-flash", files: "inline" },
};

/** The names `MESSAGE_BUS_PROVIDERS` may hold. */
export const PROVIDER_NAME = /^[a-z0-9][a-z0-9-]{0,39}$/;

/** The settings prefix of provider `name` (`my-llm` → `MY_LLM`). */
export const envPrefix = (name: string) => name.toUpperCase().replaceAll("-", "_");

/** Parses `provider` or `provider/model` (a model may itself contain `/`). */
export function parseRouteRef(text: string): RouteRef {
  const at = text.indexOf("/");
  return at < 0 ? { provider: text } : { provider: text.slice(0, at), model: text.slice(at + 1) };
}

/**
 * The providers configured by `env` (blank values count as unset).
 * @returns the providers by name, and every problem found (empty when the configuration is usable).
 */
export function parseProviders(env: Record<string, string | undefined>): {
  providers: Map<string, ProviderConfig>;
  problems: string[];
} {
  const get = (key: string) => (env[key] === "" ? undefined : env[key]);
  const problems: string[] = [];
  const names = (get("MESSAGE_BUS_PROVIDERS") ?? "kimi,glm").split(",").map((n) => n.trim()).filter(Boolean);
  if (names.length === 0) problems.push("MESSAGE_BUS_PROVIDERS: must name at least one provider");
  const providers = new Map<string, ProviderConfig>();
  const fallbackText = new Map<string, string>();
  for (const name of names) {
    if (!PROVIDER_NAME.test(name)) {
      problems.push(
        `MESSAGE_BUS_PROVIDERS: ${JSON.stringify(name)} is not a provider name (lowercase letters, digits, -)`,
      );
      continue;
    }
    if (providers.has(name)) {
      problems.push(`MESSAGE_BUS_PROVIDERS: ${name} is listed twice`);
      continue;
    }
    const p = envPrefix(name);
    const builtIn = BUILT_IN[name];
    const baseURL = get(`${p}_BASE_URL`) ?? builtIn?.baseURL;
    const model = get(`${p}_MODEL`) ?? builtIn?.model;
    if (!baseURL) problems.push(`${p}_BASE_URL: required for provider ${name}`);
    else if (!URL.canParse(baseURL) || !/^https?:$/.test(new URL(baseURL).protocol)) {
      problems.push(`${p}_BASE_URL: must be an http(s) URL, got ${JSON.stringify(baseURL)}`);
    }
    if (!model) problems.push(`${p}_MODEL: required for provider ${name}`);
    const concurrency = get(`${p}_MAX_CONCURRENCY`);
    let maxConcurrency: number | undefined;
    if (concurrency !== undefined) {
      maxConcurrency = Number(concurrency);
      if (!Number.isInteger(maxConcurrency) || maxConcurrency < 1 || maxConcurrency > 10_000) {
        problems.push(
          `${p}_MAX_CONCURRENCY: must be a whole number from 1 to 10000, got ${JSON.stringify(concurrency)}`,
        );
      }
    }
    const files = get(`${p}_FILES`) ?? builtIn?.files ?? "inline";
    if (files !== "extract" && files !== "inline") {
      problems.push(`${p}_FILES: must be extract or inline, got ${JSON.stringify(files)}`);
    }
    const fallbacks = get(`${p}_FALLBACKS`);
    if (fallbacks !== undefined) fallbackText.set(name, fallbacks);
    providers.set(name, {
      name,
      baseURL: baseURL ?? "",
      apiKey: get(`${p}_API_KEY`),
      defaultModel: model ?? "",
      fallbacks: [],
      maxConcurrency,
      files: files as "extract" | "inline",
    });
  }
  // Fallbacks name configured providers only (checked once every provider is known).
  for (const [name, text] of fallbackText) {
    const refs = text.split(",").map((t) => t.trim()).filter(Boolean).map(parseRouteRef);
    for (const ref of refs) {
      if (!providers.has(ref.provider)) {
        problems.push(
          `${envPrefix(name)}_FALLBACKS: ${ref.provider} is not a configured provider (MESSAGE_BUS_PROVIDERS)`,
        );
      } else if (
        ref.provider === name && (ref.model === undefined || ref.model === providers.get(name)!.defaultModel)
      ) {
        problems.push(`${envPrefix(name)}_FALLBACKS: ${name} cannot fall back to itself`);
      }
    }
    providers.get(name)!.fallbacks = refs;
  }
  return { providers, problems };
}
