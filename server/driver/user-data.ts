/**
 * What cloud-init takes as a VM's user-data, checked where it comes in (vm.create,
 * pool.create) and again where a driver delivers it: a #cloud-config must be a YAML mapping
 * whose users: is a list (or a name string, or a map); any other kind (a #! script, a MIME
 * multipart…) goes to the guest as it is.
 */
import { isMap, isScalar, isSeq, parseDocument, type Document } from "yaml";

/** The VM's user-data cannot be delivered as it is (a #cloud-config that is not YAML…). */
export class UserDataError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UserDataError";
  }
}

export const USERS_NOT_A_LIST = "users: in the user-data must be a list of users.";

/** cloud-init's content types, by the first line of a user-data (longest prefix first). */
const STARTS = [
  ["#cloud-config-archive", "text/cloud-config-archive"],
  ["#cloud-config-jsonp", "text/cloud-config-jsonp"],
  ["#cloud-config", "text/cloud-config"],
  ["#cloud-boothook", "text/cloud-boothook"],
  ["#include-once", "text/x-include-once-url"],
  ["#include", "text/x-include-url"],
  ["#part-handler", "text/part-handler"],
  ["#upstart-job", "text/upstart-job"],
  ["## template: jinja", "text/jinja2"],
  ["#!", "text/x-shellscript"],
] as const;

export function contentType(text: string): string {
  const first = text.split("\n", 1)[0]?.trimEnd() ?? "";
  return STARTS.find(([start]) => first.startsWith(start))?.[1] ?? "text/plain";
}

/**
 * A #cloud-config user-data as a YAML document (an empty one becomes `{}`); undefined for any
 * other kind. Throws UserDataError, with a sentence saying what is wrong, when cloud-init
 * could not read it.
 */
export function parseCloudConfig(text: string): Document | undefined {
  if (contentType(text) !== "text/cloud-config") return undefined;
  const doc: Document = parseDocument(text);
  const problem = doc.errors[0];
  if (problem) {
    const where = problem.linePos?.[0] ? ` (line ${problem.linePos[0].line})` : "";
    throw new UserDataError(`The user-data is #cloud-config but not valid YAML${where}.`);
  }
  if (doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null)) doc.contents = doc.createNode({});
  if (!isMap(doc.contents)) throw new UserDataError("The #cloud-config user-data must be a YAML mapping (key: value lines).");
  // Resolving it is what the seed's rendering does; an alias bomb throws only here, not while parsing.
  try {
    doc.toJS();
  } catch (error) {
    const reason = error instanceof Error ? (error.message.split("\n", 1)[0] ?? "") : "";
    throw new UserDataError(
      /excessive alias count/i.test(reason)
        ? "The user-data uses too many YAML aliases (*name references) for its size; write the repeated parts out instead."
        : `The user-data is #cloud-config but its YAML could not be read${reason ? ` (${reason.slice(0, 200)})` : ""}.`,
    );
  }
  const users: unknown = doc.get("users");
  if (users !== undefined && users !== null && typeof users !== "string" && !isSeq(users) && !isMap(users)) throw new UserDataError(USERS_NOT_A_LIST);
  return doc;
}

/** Why cloud-init could not read `text`, or undefined when it can. */
export function userDataProblem(text: string): string | undefined {
  try {
    parseCloudConfig(text);
    return undefined;
  } catch (error) {
    if (error instanceof UserDataError) return error.message;
    throw error;
  }
}
