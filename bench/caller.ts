/** A tRPC caller for benchmarks, acting as an admin user created for the run. */
import { randomUUID } from "node:crypto";
import { createCaller } from "../server/api/root.ts";
import type { Hangar } from "../server/hangar.ts";

export async function adminCaller(hangar: Hangar) {
  const email = "bench@hangar.local";
  const user = await hangar.db.user.upsert({ where: { email }, create: { id: randomUUID(), email, name: "bench", role: "admin" }, update: {} });
  return createCaller({ hangar, principal: { userId: user.id, email, role: "admin", via: "session" }, actor: email });
}
