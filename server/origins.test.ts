// The origins Hangar answers to, and the Host and Origin checks against them (tables).
import { describe, expect, it } from "vitest";
import { loadEnv } from "./env.ts";
import { acceptedHosts, defaultPublicOrigins, hostAllowed, originAllowed } from "./origins.ts";

describe("default public origins", () => {
  it.each([
    ["127.0.0.1", 3000, ["http://127.0.0.1:3000", "http://localhost:3000", "http://[::1]:3000"]],
    ["localhost", 3000, ["http://localhost:3000", "http://127.0.0.1:3000", "http://[::1]:3000"]],
    ["0.0.0.0", 8080, ["http://0.0.0.0:8080", "http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]:8080"]],
    ["::", 3000, ["http://[::]:3000", "http://127.0.0.1:3000", "http://localhost:3000", "http://[::1]:3000"]],
    ["192.168.1.5", 3000, ["http://192.168.1.5:3000"]],
    ["Hangar.Lan", 80, ["http://hangar.lan"]],
  ])("HOST %s, PORT %d", (host, port, origins) => {
    expect(defaultPublicOrigins(host, port)).toEqual(origins);
  });
});

describe("Host check", () => {
  const accepted = acceptedHosts(["https://hangar.example.com", "http://127.0.0.1:3000"]);
  it.each<[string | undefined, boolean]>([
    ["hangar.example.com", true],
    ["hangar.example.com:443", true],
    ["HANGAR.example.com", true],
    ["127.0.0.1:3000", true],
    ["hangar.example.com:3000", false],
    ["127.0.0.1", false],
    ["localhost:3000", false],
    ["evil.example:3000", false],
    ["hangar.example.com.evil.example", false],
    ["", false],
    [undefined, false],
  ])("Host %s: %s", (host, allowed) => {
    expect(hostAllowed(host, accepted)).toBe(allowed);
  });
});

describe("Origin check", () => {
  const allowed = ["http://127.0.0.1:3000", "https://hangar.example.com"];
  it.each<[string | undefined, boolean]>([
    ["http://127.0.0.1:3000", true],
    ["https://hangar.example.com", true],
    [undefined, false],
    ["null", false],
    ["http://evil.example", false],
    ["https://127.0.0.1:3000", false],
    ["http://127.0.0.1:3001", false],
    ["http://hangar.example.com", false],
    ["https://hangar.example.com:8443", false],
  ])("Origin %s: %s", (origin, ok) => {
    expect(originAllowed(origin, allowed)).toBe(ok);
  });
});

describe("settings", () => {
  it("take HANGAR_PUBLIC_ORIGIN instead of the listening address, and add HANGAR_ALLOWED_ORIGINS for Origin checks", () => {
    const env = loadEnv({
      NODE_ENV: "test",
      PORT: "3000",
      HANGAR_PUBLIC_ORIGIN: "https://Hangar.Example.com/, http://127.0.0.1:3000",
      HANGAR_ALLOWED_ORIGINS: "https://ci.example.com",
    });
    expect(env.publicOrigins).toEqual(["https://hangar.example.com", "http://127.0.0.1:3000"]);
    expect(env.allowedOrigins).toEqual(["https://hangar.example.com", "http://127.0.0.1:3000", "https://ci.example.com"]);
    expect(loadEnv({ NODE_ENV: "test", HOST: "10.0.0.7", PORT: "4000" })).toMatchObject({
      publicOrigins: ["http://10.0.0.7:4000"],
      allowedOrigins: ["http://10.0.0.7:4000"],
    });
  });

  it("refuse an origin with a path or another scheme, with a sentence", () => {
    expect(() => loadEnv({ NODE_ENV: "test", HANGAR_PUBLIC_ORIGIN: "https://hangar.example.com/app" })).toThrow(
      /HANGAR_PUBLIC_ORIGIN entries are scheme, host and port only/,
    );
    expect(() => loadEnv({ NODE_ENV: "test", HANGAR_PUBLIC_ORIGIN: "ftp://hangar.example.com" })).toThrow(/HANGAR_PUBLIC_ORIGIN must be full origins/);
  });
});
