/**
 * A VM's tags (Proxmox's tags, Incus' labels): words people group and find VMs by. The rules
 * are shared with the browser and the CLI (lib/vocabulary.ts); the column keeps them sorted
 * and separated by one space. vm.setTags is inventory.ts's setTags.
 */
import { normalizeTags } from "../../lib/vocabulary.ts";
import { HangarError } from "../errors.ts";

export const encodeTags = (tags: readonly string[]): string => tags.join(" ");
export const decodeTags = (stored: string): string[] => (stored === "" ? [] : stored.split(" "));

/** `tags` as a VM keeps them; INVALID_INPUT, with the reason, for one that is not a tag or too many. */
export function checkTags(tags: readonly string[]): string[] {
  const result = normalizeTags(tags);
  if ("problem" in result) throw new HangarError("INVALID_INPUT", result.problem);
  return result.tags;
}
