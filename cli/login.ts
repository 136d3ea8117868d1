/**
 * `hangar login URL`: an API token, pasted or made now from an email and password (a
 * sign-in, then token.create with that session, as the Tokens page does), checked against
 * the server and saved (config.ts).
 */
import { randomBytes } from "node:crypto";
import os from "node:os";
import { createInterface } from "node:readline";
import { Writable } from "node:stream";
import { createTRPCClient, httpLink } from "@trpc/client";
import superjson from "superjson";
import type { AppRouter } from "../server/api/root.ts";
import { CliError, EXIT, clientFor, hangarOrigin, unreachable } from "./api.ts";
import { saveConfig, type Config } from "./config.ts";

/**
 * Questions on the terminal, or answers piped in one per line. One reader serves every
 * question: a reader per question would take all the lines a pipe sent at once and leave
 * the next question none.
 */
function prompter() {
  let muted = false;
  const output = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      if (!muted) process.stderr.write(chunk);
      callback();
    },
  });
  const reader = createInterface({ input: process.stdin, output, terminal: Boolean(process.stdin.isTTY) });
  // readline's iterator keeps the lines that arrive before their question is asked.
  const lines = reader[Symbol.asyncIterator]();
  return {
    /** The next answer, trimmed; `hidden` echoes nothing (passwords, tokens). */
    async ask(question: string, hidden = false): Promise<string> {
      // As the prompt, so a terminal's line editing redraws the question with the answer.
      reader.setPrompt(question);
      reader.prompt();
      muted = hidden;
      try {
        const next = await lines.next();
        if (next.done) throw new CliError(`No answer to "${question.replace(/:\s*$/, "")}": the input ended.`, EXIT.USAGE);
        return next.value.trim();
      } finally {
        muted = false;
        if (hidden) process.stderr.write("\n");
      }
    },
    close: () => reader.close(),
  };
}

export async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
  return Buffer.concat(chunks).toString("utf8").trim();
}

/** A new API token made with an email and password. */
async function tokenFromPassword(url: string, email: string, password: string): Promise<string> {
  const origin = new URL(url).origin;
  const response = await fetch(new URL("/api/auth/sign-in/email", url), {
    method: "POST",
    headers: { "content-type": "application/json", origin },
    body: JSON.stringify({ email, password }),
  }).catch((error: unknown) => {
    throw unreachable(origin, error);
  });
  if (response.status === 401 || response.status === 403) throw new CliError("Wrong email or password.", EXIT.UNAUTHENTICATED);
  if (!response.ok) throw new CliError(`Signing in failed (HTTP ${response.status}).`, EXIT.FAILED);
  const cookie = response.headers
    .getSetCookie()
    .map((line) => line.split(";", 1)[0] ?? "")
    .join("; ");
  const session = createTRPCClient<AppRouter>({
    links: [httpLink({ url: new URL("/api/trpc", url).toString(), transformer: superjson, headers: { cookie, origin } })],
  });
  // Token names are unique per user: two logins in one second from one machine differ by the suffix.
  const stamp = `${new Date().toISOString().slice(0, 19).replace("T", " ")} ${randomBytes(2).toString("hex")}`;
  const name = `cli ${os.hostname().slice(0, 63 - 5 - stamp.length)} ${stamp}`.replace(/[^A-Za-z0-9 ._-]/g, "-");
  const created = await session.token.create.mutate({ name });
  return created.token;
}

export interface LoginOptions {
  tokenStdin?: boolean;
  email?: string;
  passwordStdin?: boolean;
}

export async function login(rawUrl: string, options: LoginOptions) {
  const url = hangarOrigin(rawUrl);
  let token: string;
  if (options.tokenStdin) token = await readStdin();
  else if (options.email && options.passwordStdin) token = await tokenFromPassword(url, options.email, await readStdin());
  else {
    const terminal = prompter();
    try {
      if (options.email) token = await tokenFromPassword(url, options.email, await terminal.ask("Password: ", true));
      else {
        token = await terminal.ask("API token (from the Tokens page; leave empty to sign in with email and password): ", true);
        if (!token) token = await tokenFromPassword(url, await terminal.ask("Email: "), await terminal.ask("Password: ", true));
      }
    } finally {
      terminal.close();
    }
  }
  if (!token) throw new CliError("No token given.", EXIT.USAGE);
  const config: Config = { url, token };
  const me = await clientFor(config).account.me.query();
  if (!me.user) throw new CliError("Hangar does not accept that token (unknown, expired or revoked).", EXIT.UNAUTHENTICATED);
  const file = await saveConfig(config);
  return { url, email: me.user.email, role: me.user.role, config: file };
}
