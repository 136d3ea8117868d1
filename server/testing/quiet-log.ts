/** Vitest setup file: tests keep the server's log quiet (their own output is what counts). */
import { logger } from "../log.ts";

logger.level = "silent";
