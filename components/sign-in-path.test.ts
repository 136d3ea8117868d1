// Sign-in sends a person back to the page that asked for it, and never to another site,
// whatever the spelling of `next` (the browser drops tabs and newlines and reads "\" as "/").
import { describe, expect, it } from "vitest";
import { afterSignIn, detour, signInFor } from "./sign-in-path.ts";

const origin = "https://hangar.example";

describe("afterSignIn", () => {
  it.each([
    ["/vms/abc", "/vms/abc"],
    ["/vms/abc?tab=console#top", "/vms/abc?tab=console#top"],
    [null, "/"],
    ["", "/"],
    ["vms/abc", "/"],
    ["https://evil.example/", "/"],
    ["//evil.example/", "/"],
    ["/\\evil.example/", "/"],
    ["/\t/evil.example/", "/"],
    ["/\n/evil.example/", "/"],
    ["/%2F/evil.example/", "/%2F/evil.example/"],
  ])("%j -> %j", (next, to) => expect(afterSignIn(next, origin)).toBe(to));
});

describe("signInFor", () => {
  it.each([
    ["/vms/abc?tab=console", "/sign-in?next=%2Fvms%2Fabc%3Ftab%3Dconsole"],
    ["/", "/sign-in"],
    ["/sign-in?next=%2Fx", "/sign-in"],
    ["/setup", "/sign-in"],
  ])("%j -> %j", (from, to) => expect(signInFor(from)).toBe(to));
});

// Each page is for someone: the first-admin form for a Hangar without users, sign-in for
// those without a session, the rest for the signed-in. Anyone else is sent on.
describe("detour", () => {
  const fresh = { signedIn: false, needsFirstAdmin: true };
  const out = { signedIn: false, needsFirstAdmin: false };
  const inside = { signedIn: true, needsFirstAdmin: false };
  it.each([
    ["/", fresh, "setup"],
    ["/sign-in", fresh, "setup"],
    ["/setup", fresh, undefined],
    ["/vms/abc", out, "sign-in"],
    ["/setup", out, "sign-in"],
    ["/sign-in", out, undefined],
    ["/vms/abc", inside, undefined],
    ["/setup", inside, "back"],
    ["/sign-in", inside, "back"],
  ] as const)("%j as %j -> %j", (pathname, visitor, to) => expect(detour(pathname, visitor)).toBe(to));
});
