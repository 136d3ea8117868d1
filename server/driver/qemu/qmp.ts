/**
 * A small QMP client: one connection per conversation (qemu serves one QMP client at a
 * time, so nobody holds it open), the capabilities handshake, commands with ids, timeouts.
 */
import net from "node:net";
import { z } from "zod";

export class QmpError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "QmpError";
  }
}

const qmpMessage = z.object({
  return: z.unknown().optional(),
  error: z.object({ class: z.string(), desc: z.string() }).optional(),
  event: z.string().optional(),
  id: z.number().optional(),
  QMP: z.unknown().optional(),
});
type QmpMessage = z.infer<typeof qmpMessage>;

export class QmpClient {
  private buffer = "";
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  private greeting?: (ok: boolean) => void;
  private closedError?: Error;
  readonly events: string[] = [];

  private constructor(private readonly socket: net.Socket) {
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => this.onData(chunk));
    socket.on("error", (error) => this.fail(new QmpError(`QMP connection failed: ${error.message}`)));
    socket.on("close", () => this.fail(new QmpError("QMP connection closed")));
  }

  /** Connects to `socketPath`, waits for the greeting and negotiates capabilities. */
  static async connect(socketPath: string, timeoutMs = 3000): Promise<QmpClient> {
    const socket = net.createConnection(socketPath);
    const client = new QmpClient(socket);
    const timer = setTimeout(() => client.fail(new QmpError(`QMP did not answer within ${timeoutMs} ms`)), timeoutMs);
    try {
      await new Promise<void>((resolve, reject) => {
        client.greeting = (ok) => (ok ? resolve() : reject(client.closedError));
        socket.once("error", reject);
      });
      await client.execute("qmp_capabilities");
      return client;
    } catch (error) {
      socket.destroy();
      throw error instanceof QmpError ? error : new QmpError(`cannot connect to QMP at ${socketPath}: ${String(error)}`);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Runs one QMP command and resolves with its `return` value. */
  execute(command: string, args?: Record<string, unknown>, timeoutMs = 5000): Promise<unknown> {
    if (this.closedError) return Promise.reject(this.closedError);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new QmpError(`QMP ${command} did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(id, {
        resolve: (value) => (clearTimeout(timer), resolve(value)),
        reject: (error) => (clearTimeout(timer), reject(error)),
      });
      this.socket.write(`${JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}), id })}\n`);
    });
  }

  /** An HMP command through QMP (`info usernet`, `savevm`…); resolves with its text. */
  async human(commandLine: string, timeoutMs = 5000): Promise<string> {
    const result = await this.execute("human-monitor-command", { "command-line": commandLine }, timeoutMs);
    return typeof result === "string" ? result : "";
  }

  close(): void {
    this.socket.end();
    this.socket.destroy();
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    let newline: number;
    while ((newline = this.buffer.indexOf("\n")) >= 0) {
      const line = this.buffer.slice(0, newline).trim();
      this.buffer = this.buffer.slice(newline + 1);
      if (line) this.onMessage(line);
    }
  }

  private onMessage(line: string): void {
    let message: QmpMessage;
    try {
      const parsed = qmpMessage.safeParse(JSON.parse(line));
      if (!parsed.success) return;
      message = parsed.data;
    } catch {
      return;
    }
    if (message.QMP !== undefined) {
      this.greeting?.(true);
      return;
    }
    if (message.event) {
      this.events.push(message.event);
      return;
    }
    if (message.id === undefined) return;
    const waiter = this.waiting.get(message.id);
    if (!waiter) return;
    this.waiting.delete(message.id);
    if (message.error) waiter.reject(new QmpError(`${message.error.class}: ${message.error.desc}`));
    else waiter.resolve(message.return);
  }

  private fail(error: Error): void {
    if (this.closedError) return;
    this.closedError = error;
    this.greeting?.(false);
    for (const waiter of this.waiting.values()) waiter.reject(error);
    this.waiting.clear();
    this.socket.destroy();
  }
}

/** Connects, runs `fn`, and always closes. */
export async function withQmp<T>(socketPath: string, fn: (qmp: QmpClient) => Promise<T>, timeoutMs = 3000): Promise<T> {
  const qmp = await QmpClient.connect(socketPath, timeoutMs);
  try {
    return await fn(qmp);
  } finally {
    qmp.close();
  }
}
