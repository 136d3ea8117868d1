/**
 * A second Hangar process for the concurrency test: on the database at argv[2], fires
 * argv[4] concurrent starts at VM argv[3] (fake driver) once the file argv[5] appears, and
 * prints how many it won.
 */
import { existsSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { createDb } from "../db.ts";
import { envFor } from "../env.ts";
import { createHangar } from "../hangar.ts";
import { FakeDriver, fakeLocalImage } from "./fake-driver.ts";

const [databaseUrl = "", vmId = "", count = "10", goFile = "", stateDir = ""] = process.argv.slice(2);
const env = envFor({ stateDir, databaseUrl, guestDir: `${stateDir}/guest` }, { NODE_ENV: "test", HANGAR_ACCEL: "tcg" });
const fake = new FakeDriver();
fake.startDelayMs = 30;
// As in the first process: a start this process wins must succeed, or the VM goes back to
// Stopped and another start can win again.
const hangar = createHangar({ env, db: createDb(databaseUrl), driverFor: fake.managerFor, localImage: fakeLocalImage });
await hangar.lifecycle.hostId();
console.log("ready");
while (!existsSync(goFile)) await sleep(5);
const results = await Promise.allSettled(Array.from({ length: Number(count) }, (_, i) => hangar.lifecycle.startVm(vmId, `second-${i}`)));
console.log(JSON.stringify({ won: results.filter((r) => r.status === "fulfilled").length }));
await hangar.db.$disconnect();
