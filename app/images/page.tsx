import type { Metadata } from "next";
import { AdminOnly } from "@/components/admin-only.tsx";
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
      {/* image.import is for admins: others would fill the form in only to be refused. */}
      <AdminOnly what="the form that imports images">
        <ImportImageForm />
      </AdminOnly>
    </div>
  );
}
