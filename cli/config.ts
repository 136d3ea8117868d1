/**
 * Where `hangar login` keeps the server and token: $XDG_CONFIG_HOME/hangar/config.json
 * (default ~/.config/hangar), directory 0700, file 0600: the token acts as its owner.
 * HANGAR_URL and HANGAR_TOKEN, when set, take precedence (CI).
 */
import { chmod, mkdir, readFile, rename, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { z } from "zod";

const Config = z.object({ url: z.url(), token: z.string().min(1) });
export type Config = z.infer<typeof Config>;
type Environment = Record<string, string | undefined>;

export function configDir(env: Environment = process.env): string {
  const base = env.XDG_CONFIG_HOME && path.isAbsolute(env.XDG_CONFIG_HOME) ? env.XDG_CONFIG_HOME : path.join(os.homedir(), ".config");
  return path.join(base, "hangar");
}

export const configFile = (env: Environment = process.env) => path.join(configDir(env), "config.json");

/** The saved config (environment first), or undefined when nobody logged in. */
export async function loadConfig(env: Environment = process.env): Promise<Config | undefined> {
  if (env.HANGAR_URL && env.HANGAR_TOKEN) return { url: env.HANGAR_URL, token: env.HANGAR_TOKEN };
  const text = await readFile(configFile(env), "utf8").catch(() => undefined);
  if (text === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  const parsed = Config.safeParse(value);
  return parsed.success ? parsed.data : undefined;
}

export async function saveConfig(config: Config, env: Environment = process.env): Promise<string> {
  const dir = configDir(env);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  const file = configFile(env);
  // Written beside it and renamed: never a moment with a half-written or world-readable token.
  const temporary = `${file}.${process.pid}.tmp`;
  await writeFile(temporary, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
  await rename(temporary, file);
  return file;
}
