"use client";
/**
 * "New VM" at the top of the inventory opens the create form in a modal <dialog>: the
 * browser keeps focus inside it, Escape closes it, and focus goes back to the button.
 * A created VM closes the dialog; the list shows it through the live stream.
 */
import { useRef, useState } from "react";
import { CreateVmForm } from "./create-vm-form.tsx";

export function CreateVmDialog() {
  const dialog = useRef<HTMLDialogElement>(null);
  const [open, setOpen] = useState(false);
  const [created, setCreated] = useState<{ name: string; started?: string }>();

  function show() {
    setCreated(undefined);
    setOpen(true);
    dialog.current?.showModal();
  }

  return (
    <>
      <div className="buttons">
        <button type="button" className="primary" onClick={show} aria-haspopup="dialog">
          New VM
        </button>
        {created ? (
          <p className="notice" role="status">
            Created VM {created.name}
            {created.started ? ` ${created.started}` : ""}.
          </p>
        ) : null}
      </div>
      <dialog ref={dialog} className="dialog" aria-label="New VM" onClose={() => setOpen(false)}>
        {/* Mounted while open: each opening starts from a fresh form. */}
        {open ? (
          <CreateVmForm
            onCreated={(name, started) => {
              setCreated({ name, started });
              dialog.current?.close();
            }}
            onCancel={() => dialog.current?.close()}
          />
        ) : null}
      </dialog>
    </>
  );
}
