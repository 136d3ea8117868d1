/**
 * The origins Hangar answers to, and the checks that compare what a client sends (Host,
 * Origin) with them. A client header is only ever compared with this configured list,
 * never with another client header: a DNS-rebinding page controls Host and Origin alike.
 */

/** Host names under which a server bound to a loopback or unspecified address is reached on this machine. */
const LOCAL_HOSTS = new Set(["127.0.0.1", "localhost", "::1", "0.0.0.0", "::"]);

function hostPart(host: string): string {
  return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
}

/**
 * What Hangar serves when HANGAR_PUBLIC_ORIGIN is not set: http://HOST:PORT, and for a
 * loopback or unspecified HOST also the loopback names a browser on this machine uses.
 */
export function defaultPublicOrigins(host: string, port: number): string[] {
  const origins = [`http://${hostPart(host)}:${port}`];
  if (LOCAL_HOSTS.has(host)) origins.push(`http://127.0.0.1:${port}`, `http://localhost:${port}`, `http://[::1]:${port}`);
  return [...new Set(origins.map((origin) => new URL(origin).origin))];
}

const DEFAULT_PORTS: Record<string, string> = { "http:": "80", "https:": "443" };

/** The Host header values that name one of `publicOrigins` ("example.com" and "example.com:443" alike). */
export function acceptedHosts(publicOrigins: readonly string[]): Set<string> {
  const hosts = new Set<string>();
  for (const origin of publicOrigins) {
    const url = new URL(origin);
    hosts.add(url.host);
    if (url.port === "") hosts.add(`${url.hostname}:${DEFAULT_PORTS[url.protocol] ?? ""}`);
  }
  return hosts;
}

/** Whether a request's Host header names Hangar itself (the DNS-rebinding defence). */
export function hostAllowed(host: string | undefined, accepted: ReadonlySet<string>): boolean {
  return typeof host === "string" && accepted.has(host.toLowerCase());
}

/** Whether a request's Origin header is one of the allowed origins (exact match; "null" never is). */
export function originAllowed(origin: string | undefined, allowed: readonly string[]): boolean {
  return typeof origin === "string" && allowed.includes(origin);
}
