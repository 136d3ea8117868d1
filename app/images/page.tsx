import type { Metadata } from "next";
import { ImagesTable } from "@/components/images-table.tsx";
import { ImportImageForm } from "@/components/import-image-form.tsx";

export const metadata: Metadata = { title: "Images" };

export default function ImagesPage() {
  return (
    <div className="stack">
      <h1>Images</h1>
      <section className="card flush">
        <ImagesTable />
      </section>
      <ImportImageForm />
    </div>
  );
}
