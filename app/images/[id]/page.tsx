import type { Metadata } from "next";
import { ImageDetails } from "@/components/image-details.tsx";

export const metadata: Metadata = { title: "Image" };

export default async function ImagePage({ params }: { params: Promise<{ id: string }> }) {
  const { id } = await params;
  return <ImageDetails id={id} />;
}
