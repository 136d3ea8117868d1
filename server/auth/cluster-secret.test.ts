// One auth secret per database, and the passes hosts sign their requests to each other with.
import { writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeDriver } from "../testing/fake-driver.ts";
import { createTestHangar, type TestHangar } from "../testing/fixtures.ts";
import { clusterKey, issuePass, resolveAuthSecret, verifyPass } from "./cluster-secret.ts";

let t: TestHangar;
beforeAll(async () => {
  t = await createTestHangar({ driverFor: new FakeDriver().managerFor });
});
afterAll(() => t.cleanup());

describe("the auth secret", () => {
  it("is HANGAR_AUTH_SECRET when set, without storing it", async () => {
    const fromEnv = "s".repeat(40);
    expect(await resolveAuthSecret({ db: t.hangar.db, stateDir: t.env.stateDir, fromEnv })).toBe(fromEnv);
    expect(await t.hangar.db.secret.count()).toBe(0);
  });

  it("of a single host upgraded (kept in its state directory) becomes the cluster's", async () => {
    writeFileSync(path.join(t.env.stateDir, "auth-secret"), "earlier-secret-of-this-host-0123456789\n");
    expect(await resolveAuthSecret({ db: t.hangar.db, stateDir: t.env.stateDir })).toBe("earlier-secret-of-this-host-0123456789");
    expect(await resolveAuthSecret({ db: t.hangar.db, stateDir: path.join(t.env.stateDir, "another-host") })).toBe("earlier-secret-of-this-host-0123456789");
    await t.hangar.db.secret.deleteMany();
  });

  it("is stored once by the first host, and every host starting at the same time gets that one", async () => {
    const secrets = await Promise.all(
      ["alpha", "beta", "gamma", "delta"].map((name) => resolveAuthSecret({ db: t.hangar.db, stateDir: path.join(t.env.stateDir, name) })),
    );
    expect(new Set(secrets).size).toBe(1);
    const stored = await t.hangar.db.secret.findMany();
    expect(stored.map((row) => row.value)).toEqual([secrets[0]]);
    expect(secrets[0]?.length).toBeGreaterThanOrEqual(32);
    // A host started later reads the same one.
    expect(await resolveAuthSecret({ db: t.hangar.db, stateDir: path.join(t.env.stateDir, "later") })).toBe(secrets[0]);
  });
});

describe("passes between hosts", () => {
  const key = clusterKey("the cluster's secret, at least 32 characters");

  it("carry their data to a host with the same key, for the purpose they name", () => {
    const pass = issuePass(key, "image:abc", { n: 1 });
    expect(verifyPass(key, pass, "image:abc")?.data).toEqual({ n: 1 });
    expect(verifyPass(key, pass, "image:abd")).toBeUndefined();
    expect(verifyPass(key, pass, "terminal")).toBeUndefined();
  });

  it("are refused when signed with another key, changed, expired or missing", () => {
    const pass = issuePass(key, "terminal", { userId: "u1" });
    expect(verifyPass(clusterKey("another cluster's secret, 32 characters"), pass, "terminal")).toBeUndefined();
    const [body, signature] = pass.split(".");
    const forged = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(body ?? "", "base64url").toString()), data: { userId: "admin" } })).toString(
      "base64url",
    );
    expect(verifyPass(key, `${forged}.${signature}`, "terminal")).toBeUndefined();
    expect(verifyPass(key, issuePass(key, "terminal", null, -1), "terminal")).toBeUndefined();
    expect(verifyPass(key, undefined, "terminal")).toBeUndefined();
    expect(verifyPass(key, ["a", "b"], "terminal")).toBeUndefined();
    expect(verifyPass(key, "no-signature", "terminal")).toBeUndefined();
  });

  it("are derived from the auth secret, not the secret itself", () => {
    expect(clusterKey("x".repeat(32)).toString("utf8")).not.toContain("x".repeat(32));
    expect(clusterKey("x".repeat(32)).equals(clusterKey("x".repeat(32)))).toBe(true);
  });
});
