/**
 * Where a URL import may connect. Hangar's own address space (loopback, link-local, private,
 * CGNAT, unspecified, multicast, documentation and reserved ranges, and IPv6 forms that embed
 * such an IPv4 address) is refused unless an admin allows a host name or a CIDR
 * (HANGAR_IMPORT_ALLOW). Pure: no DNS here; the fetcher resolves and asks.
 */
import net from "node:net";

const BLOCKED_V4: [string, number][] = [
  ["0.0.0.0", 8], // "this network", includes the unspecified address
  ["10.0.0.0", 8], // private (RFC 1918)
  ["100.64.0.0", 10], // carrier-grade NAT
  ["127.0.0.0", 8], // loopback
  ["169.254.0.0", 16], // link-local (cloud metadata lives here)
  ["172.16.0.0", 12], // private
  ["192.0.0.0", 24], // IETF protocol assignments
  ["192.0.2.0", 24], // documentation
  ["192.88.99.0", 24], // 6to4 relay anycast
  ["192.168.0.0", 16], // private
  ["198.18.0.0", 15], // benchmarking
  ["198.51.100.0", 24], // documentation
  ["203.0.113.0", 24], // documentation
  ["224.0.0.0", 4], // multicast
  ["240.0.0.0", 4], // reserved, includes broadcast
];

const BLOCKED_V6: [string, number][] = [
  ["::", 128], // unspecified
  ["::1", 128], // loopback
  ["100::", 64], // discard
  ["2001::", 32], // Teredo: the client address inside is not checkable
  ["2001:db8::", 32], // documentation
  ["fc00::", 7], // unique local
  ["fe80::", 10], // link-local
  ["fec0::", 10], // site-local (deprecated, still routed by some stacks)
  ["ff00::", 8], // multicast
];

const blocked = new net.BlockList();
for (const [address, prefix] of BLOCKED_V4) blocked.addSubnet(address, prefix, "ipv4");
for (const [address, prefix] of BLOCKED_V6) blocked.addSubnet(address, prefix, "ipv6");

/** The 16 bytes of an IPv6 address. */
function v6Bytes(address: string): number[] {
  let text = address;
  const v4Tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4Tail?.[1]) {
    const [a = 0, b = 0, c = 0, d = 0] = v4Tail[1].split(".").map(Number);
    text = `${text.slice(0, -v4Tail[1].length)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = "", tail] = text.split("::");
  const headGroups = head ? head.split(":") : [];
  const tailGroups = tail ? tail.split(":") : [];
  const zeros = tail === undefined ? [] : Array<string>(8 - headGroups.length - tailGroups.length).fill("0");
  return [...headGroups, ...zeros, ...tailGroups].flatMap((group) => {
    const value = Number.parseInt(group, 16);
    return [value >> 8, value & 0xff];
  });
}

/** The IPv4 address an IPv6 address carries (mapped, compatible, NAT64, 6to4), if any. */
export function embeddedIpv4(address: string): string | undefined {
  const bytes = v6Bytes(address);
  const quad = (from: number) => bytes.slice(from, from + 4).join(".");
  const startsWith = (prefix: number[]) => prefix.every((byte, i) => bytes[i] === byte);
  const zeros = (n: number) => Array<number>(n).fill(0);
  if (startsWith([...zeros(10), 0xff, 0xff])) return quad(12); // ::ffff:a.b.c.d
  if (startsWith(zeros(12)) && bytes.slice(12).some((b) => b !== 0) && !startsWith([...zeros(15), 1])) return quad(12); // ::a.b.c.d
  if (startsWith([0x00, 0x64, 0xff, 0x9b, ...zeros(8)])) return quad(12); // 64:ff9b::/96 NAT64
  if (startsWith([0x20, 0x02])) return quad(2); // 2002:aabb:ccdd::/48 6to4
  return undefined;
}

export interface AddressPolicy {
  /** Host names (lower case) allowed whatever they resolve to. */
  hosts: Set<string>;
  /** Addresses and networks allowed although they are in a refused range. */
  networks: net.BlockList;
}

/**
 * Parses the allow list: host names, IP addresses and CIDRs, comma-separated
 * ("127.0.0.1/32,files.lan"). Throws with the entry that is neither.
 */
export function parseAllowList(entries: string[]): AddressPolicy {
  const policy: AddressPolicy = { hosts: new Set(), networks: new net.BlockList() };
  for (const raw of entries) {
    const entry = raw.trim().toLowerCase();
    if (!entry) continue;
    const [address = "", prefixText] = entry.split("/");
    const family = net.isIP(address);
    if (family !== 0) {
      const max = family === 4 ? 32 : 128;
      const prefix = prefixText === undefined ? max : Number(prefixText);
      if (!Number.isInteger(prefix) || prefix < 0 || prefix > max || (prefixText !== undefined && !/^\d+$/.test(prefixText))) {
        throw new Error(`"${raw}" has an invalid prefix length`);
      }
      policy.networks.addSubnet(address, prefix, family === 4 ? "ipv4" : "ipv6");
    } else if (prefixText === undefined && /^(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*\.?$/.test(entry)) {
      policy.hosts.add(entry.replace(/\.$/, ""));
    } else {
      throw new Error(`"${raw}" is neither a host name, an IP address nor a CIDR`);
    }
  }
  return policy;
}

/** Why `address` may not be connected to, or undefined when it may. */
export function refusedAddress(address: string, policy: AddressPolicy): string | undefined {
  const family = net.isIP(address);
  if (family === 0) return `"${address}" is not an IP address`;
  const type = family === 4 ? "ipv4" : "ipv6";
  if (policy.networks.check(address, type)) return undefined;
  const inner = family === 6 ? embeddedIpv4(address) : undefined;
  if (inner !== undefined && policy.networks.check(inner, "ipv4")) return undefined;
  if (blocked.check(address, type) || (inner !== undefined && blocked.check(inner, "ipv4"))) {
    return `${address} is a loopback, private, link-local or otherwise internal address`;
  }
  return undefined;
}

/** Whether the host name itself is on the allow list (then any address it resolves to is fine). */
export function hostAllowed(hostname: string, policy: AddressPolicy): boolean {
  return policy.hosts.has(
    hostname
      .toLowerCase()
      .replace(/^\[|\]$/g, "")
      .replace(/\.$/, ""),
  );
}
