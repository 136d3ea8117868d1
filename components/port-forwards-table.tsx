/** A VM's port forwards: host port (0 = any free port) → guest port, and the port bound. */
import type { VmDetail } from "./trpc.ts";

export function PortForwardsTable({ ports, sshPort }: { ports: VmDetail["ports"]; sshPort: number | null }) {
  return (
    <table className="table compact narrow">
      <thead>
        <tr>
          <th className="num">Host</th>
          <th aria-hidden="true"></th>
          <th className="num">Guest</th>
          <th className="num">Bound port</th>
        </tr>
      </thead>
      <tbody>
        <tr>
          <td className="num">{sshPort ?? "any"}</td>
          <td aria-hidden="true">→</td>
          <td className="num">22 (SSH)</td>
          <td className="num">{sshPort ?? "—"}</td>
        </tr>
        {ports.map((port) => (
          <tr key={port.id}>
            <td className="num">{port.hostPort === 0 ? "any" : port.hostPort}</td>
            <td aria-hidden="true">→</td>
            <td className="num">{port.guestPort}</td>
            <td className="num">{port.boundPort ?? "—"}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
