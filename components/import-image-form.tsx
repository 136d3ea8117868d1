"use client";
/** Import a base image from a file under the images directory or from an http(s) URL. */
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { FIRMWARES, type Firmware } from "../lib/vocabulary.ts";
import { ErrorAlert, errorText } from "./error-alert.tsx";
import { useTRPC } from "./trpc.ts";

export function ImportImageForm() {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const [name, setName] = useState("");
  const [source, setSource] = useState<"path" | "url">("url");
  const [location, setLocation] = useState("");
  const [sha256, setSha256] = useState("");
  const [kernel, setKernel] = useState("");
  const [initrd, setInitrd] = useState("");
  const [cmdline, setCmdline] = useState("");
  const [firmware, setFirmware] = useState<Firmware | "">("");
  const [loginUser, setLoginUser] = useState("");
  const [error, setError] = useState<string>();
  const [started, setStarted] = useState<{ id: string; name: string }>();
  // The images table's own list (one cache, no extra request): the notice follows the import,
  // and goes with the image if it is deleted.
  const images = useQuery(trpc.image.list.queryOptions());
  const startedImage = started ? images.data?.find((image) => image.id === started.id) : undefined;

  const importImage = useMutation(
    trpc.image.import.mutationOptions({
      onMutate: () => {
        setError(undefined);
        setStarted(undefined);
      },
      onError: (e) => setError(errorText(e)),
      onSuccess: (image) => {
        setStarted({ id: image.id, name: image.name });
        setName("");
        setLocation("");
        setSha256("");
      },
      onSettled: () => queryClient.invalidateQueries(trpc.image.pathFilter()),
    }),
  );

  function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const optional = (key: string, value: string) => (value.trim() ? { [key]: value.trim() } : {});
    importImage.mutate({
      name: name.trim(),
      ...(source === "path" ? { path: location.trim() } : { url: location.trim() }),
      ...optional("sha256", sha256),
      ...optional("kernel", kernel),
      ...optional("initrd", initrd),
      ...optional("cmdline", cmdline),
      ...optional("loginUser", loginUser),
      ...(firmware ? { firmware } : {}),
    });
  }

  return (
    <form onInvalidCapture={() => setError(undefined)} className="card form" onSubmit={submit}>
      <h2>Import an image</h2>
      <div className="grid">
        <label className="field">
          <span>Name</span>
          <input value={name} onChange={(e) => setName(e.target.value)} required autoComplete="off" spellCheck={false} />
        </label>
        <fieldset className="field radios">
          <legend>Source</legend>
          <label>
            <input type="radio" name="source" checked={source === "url"} onChange={() => setSource("url")} /> Download from a URL
          </label>
          <label>
            <input type="radio" name="source" checked={source === "path"} onChange={() => setSource("path")} /> A file in the images directory
          </label>
        </fieldset>
      </div>
      <label className="field">
        <span>{source === "url" ? "URL" : "Path"}</span>
        <input
          value={location}
          onChange={(e) => setLocation(e.target.value)}
          required
          spellCheck={false}
          placeholder={source === "url" ? "https://example.org/disk.qcow2" : "debian-12.qcow2"}
          type={source === "url" ? "url" : "text"}
        />
      </label>
      <label className="field">
        <span>SHA-256 (optional)</span>
        <input value={sha256} onChange={(e) => setSha256(e.target.value)} spellCheck={false} autoComplete="off" />
      </label>
      <div className="grid">
        <label className="field">
          <span>Firmware</span>
          <select value={firmware} onChange={(e) => setFirmware(FIRMWARES.find((f) => f === e.target.value) ?? "")}>
            <option value="">Read from the disk</option>
            <option value="bios">BIOS</option>
            <option value="uefi">UEFI</option>
          </select>
        </label>
        <label className="field">
          <span>Login account (optional)</span>
          <input
            value={loginUser}
            onChange={(e) => setLoginUser(e.target.value)}
            placeholder="hangar"
            title="The account Hangar logs in as for Shell, exec and sync. Cloud images get hangar from cloud-init; for an image without cloud-init, e.g. root."
            autoComplete="off"
            spellCheck={false}
          />
        </label>
      </div>
      <details>
        <summary>Direct kernel boot (optional)</summary>
        <div className="grid">
          <label className="field">
            <span>Kernel</span>
            <input value={kernel} onChange={(e) => setKernel(e.target.value)} placeholder="vmlinuz" spellCheck={false} />
          </label>
          <label className="field">
            <span>Initrd</span>
            <input value={initrd} onChange={(e) => setInitrd(e.target.value)} placeholder="initrd.img" spellCheck={false} />
          </label>
          <label className="field">
            <span>Kernel command line</span>
            <input value={cmdline} onChange={(e) => setCmdline(e.target.value)} placeholder="console=ttyS0" spellCheck={false} />
          </label>
        </div>
      </details>
      <ErrorAlert message={error} onDismiss={() => setError(undefined)} />
      {started && (startedImage || !images.data) ? <ImportNotice name={started.name} status={startedImage?.status} /> : null}
      <div className="buttons">
        <button type="submit" className="primary" disabled={importImage.isPending}>
          {importImage.isPending ? "Importing…" : "Import image"}
        </button>
      </div>
    </form>
  );
}

/** Where the import just started stands; a failure's reason is on its row in the table. */
function ImportNotice({ name, status }: { name: string; status: string | undefined }) {
  if (status === "failed") {
    return (
      <p className="notice bad" role="status">
        The import of {name} failed; the images table says why.
      </p>
    );
  }
  return (
    <p className="notice" role="status">
      {status === "ready" ? `Imported ${name}.` : `Importing ${name}…`}
    </p>
  );
}
