import type { Metadata } from "next";
import type { ReactNode } from "react";
import "./globals.css";
import "@/components/ui/kit.css";
import "@/components/shell/shell.css";

export const metadata: Metadata = {
  title: "Kiln — serverless inference for ONNX models",
  description:
    "Upload an ONNX model; Kiln compiles it into an optimized engine and serves it as an autoscaled, metered endpoint.",
};

export default function RootLayout({ children }: { children: ReactNode }) {
  return (
    <html lang="en">
      <body>{children}</body>
    </html>
  );
}
