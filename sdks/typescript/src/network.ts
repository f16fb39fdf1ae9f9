/**
 * Which CAs and which proxy a client's requests use.
 *
 * Node's `fetch` trusts its bundled CAs plus `NODE_EXTRA_CA_CERTS`, and (on
 * Node 20) ignores the proxy variables. A client with a CA file, or whose server
 * the proxy variables send through a proxy, gets an undici dispatcher instead:
 * a `ProxyAgent` (CONNECT for https) or an `Agent` trusting that file.
 * @module
 */

import { readFileSync } from "node:fs";
import { Agent, ProxyAgent, fetch as undiciFetch, type Dispatcher } from "undici";

type Fetch = (input: string | URL, init?: RequestInit) => Promise<Response>;
type Environment = Record<string, string | undefined>;

function variable(env: Environment, name: string): string | undefined {
  return env[name.toLowerCase()] || env[name.toUpperCase()] || undefined;
}

function bypassed(url: URL, noProxy: string | undefined): boolean {
  if (!noProxy) return false;
  const host = url.hostname.replace(/^\[|\]$/g, "").toLowerCase();
  const port = url.port || (url.protocol === "https:" ? "443" : "80");
  return noProxy.split(/[\s,]+/).some((raw) => {
    const entry = raw.trim().toLowerCase();
    if (!entry) return false;
    if (entry === "*") return true;
    const [name, entryPort] = entry.startsWith("[")
      ? [entry.slice(1, entry.indexOf("]")), entry.split("]:")[1]]
      : [entry.split(":")[0] ?? "", entry.split(":")[1]];
    if (entryPort !== undefined && entryPort !== port) return false;
    const bare = name.replace(/^\*?\./, "");
    return host === bare || host.endsWith(`.${bare}`);
  });
}

/** The proxy the environment names for `url` (HTTPS_PROXY / HTTP_PROXY / ALL_PROXY, less NO_PROXY). */
export function proxyFor(url: URL, env: Environment = process.env): string | undefined {
  const proxy =
    (url.protocol === "https:" ? variable(env, "https_proxy") : variable(env, "http_proxy")) ??
    variable(env, "all_proxy");
  return proxy && !bypassed(url, variable(env, "no_proxy")) ? proxy : undefined;
}

/** The PEM certificates of a CA file, checked to hold at least one. */
export function readCaFile(path: string): string {
  let pem: string;
  try {
    pem = readFileSync(path, "utf-8");
  } catch (error) {
    throw new TypeError(`caCert: cannot read ${path}: ${(error as Error).message}`);
  }
  if (!pem.includes("-----BEGIN CERTIFICATE-----")) {
    throw new TypeError(`caCert: ${path} holds no PEM certificate`);
  }
  return pem;
}

/**
 * A `fetch` for requests to `baseUrl`: Node's own when neither a CA file nor a
 * proxy applies, else undici's `fetch` through the dispatcher that does.
 */
export function fetchFor(baseUrl: string, caCert: string | undefined, env: Environment = process.env): Fetch {
  const ca = caCert === undefined ? undefined : readCaFile(caCert);
  const proxy = proxyFor(new URL(baseUrl), env);
  let dispatcher: Dispatcher | undefined;
  if (proxy !== undefined) {
    dispatcher = new ProxyAgent(ca === undefined ? { uri: proxy } : { uri: proxy, requestTls: { ca } });
  } else if (ca !== undefined) {
    dispatcher = new Agent({ connect: { ca } });
  }
  if (dispatcher === undefined) return (input, init) => globalThis.fetch(input, init);
  const through = dispatcher;
  // undici's Request/Response are the classes Node's fetch is built from; only the types differ.
  return (input, init) =>
    undiciFetch(input, { ...(init as object), dispatcher: through }) as unknown as Promise<Response>;
}
