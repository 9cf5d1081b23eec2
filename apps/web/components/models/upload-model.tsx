"use client";

import { useQueryClient } from "@tanstack/react-query";
import { useRouter } from "next/navigation";
import { type FormEvent, useRef, useState } from "react";
import { Button, Field, focusFirstInvalid, Input, Progress, useToast } from "@/components/ui";
import { formatBytes } from "@/lib/format";
import { keys } from "@/lib/trpc";
import { type UploadProgress, uploadFile } from "@/lib/upload";

type Props = {
  /** Set when adding a version to an existing model: the name is then fixed. */
  modelName?: string;
  onUploaded?: () => void;
};

// The same rule as the upload handler (packages/api/src/models/upload-model.ts).
const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

function nameProblem(name: string): string | undefined {
  if (!name) return "Name the model; it becomes part of its endpoint's URL.";
  if (!MODEL_NAME.test(name)) return "Use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit.";
  return undefined;
}

/** Suggests a model name from the file name: "ResNet50-v2.onnx" → "resnet50-v2". */
function nameFromFile(filename: string): string {
  return filename
    .replace(/\.onnx$/i, "")
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, "-")
    .replace(/^[^a-z0-9]+/, "")
    .slice(0, 64);
}

export function UploadModel({ modelName, onUploaded }: Props) {
  const router = useRouter();
  const toast = useToast();
  const queryClient = useQueryClient();
  const [file, setFile] = useState<File>();
  const [name, setName] = useState(modelName ?? "");
  const [errors, setErrors] = useState<{ file?: string; name?: string; upload?: string }>({});
  const [progress, setProgress] = useState<UploadProgress>();
  const [phase, setPhase] = useState<"idle" | "uploading" | "checking">("idle");
  const abort = useRef<AbortController>(null);

  const pick = (picked: File | undefined) => {
    setFile(picked);
    setErrors({});
    if (picked && !modelName && !name) setName(nameFromFile(picked.name));
  };

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const found = {
      file: !file ? "Choose an .onnx file." : !/\.onnx$/i.test(file.name) ? "The file must end in .onnx." : undefined,
      name: nameProblem(name),
    };
    setErrors(found);
    if (found.file || found.name || !file) return focusFirstInvalid(event.currentTarget as HTMLFormElement);
    abort.current = new AbortController();
    setPhase("uploading");
    try {
      const result = (await uploadFile(
        "/api/models/upload",
        file,
        { name },
        (p) => {
          setProgress(p);
          // Once every byte is sent, the server still hashes, stores and parses the model.
          if (p.loaded >= p.total) setPhase("checking");
        },
        abort.current.signal,
      )) as { modelId: string; version: number };
      await queryClient.invalidateQueries({ queryKey: keys.of("models") });
      toast.show(`Uploaded ${name} v${result.version}`);
      setFile(undefined);
      setProgress(undefined);
      onUploaded?.();
      if (!modelName) router.push(`/models/${result.modelId}`);
    } catch (error) {
      // The bar would claim a finished upload; the message says what happened instead.
      setProgress(undefined);
      setErrors({ upload: (error as Error).message });
    } finally {
      setPhase("idle");
    }
  };

  const isBusy = phase !== "idle";
  return (
    <form onSubmit={submit} noValidate className="upload-form">
      <Field label="ONNX file" error={errors.file} hint="The largest file you can upload depends on your plan.">
        <Input type="file" name="file" accept=".onnx" disabled={isBusy} onChange={(e) => pick(e.target.files?.[0])} />
      </Field>
      {!modelName ? (
        <Field label="Model name" error={errors.name}>
          <Input
            name="modelName"
            value={name}
            disabled={isBusy}
            onChange={(e) => {
              setName(e.target.value);
              if (errors.name) setErrors((x) => ({ ...x, name: nameProblem(e.target.value) }));
            }}
          />
        </Field>
      ) : null}
      {progress ? (
        <Progress
          label={phase === "checking" ? "Checking the model…" : `Uploading ${file?.name ?? ""}`}
          value={phase === "checking" ? undefined : progress.loaded / progress.total}
          detail={`${formatBytes(progress.loaded)} of ${formatBytes(progress.total)}`}
        />
      ) : null}
      {errors.upload ? (
        <p className="ui-callout ui-callout--danger" role="alert">
          {errors.upload}
        </p>
      ) : null}
      <div className="row">
        <Button type="submit" variant="primary" isLoading={isBusy}>
          {modelName ? "Upload new version" : "Upload model"}
        </Button>
        {phase === "uploading" ? (
          <Button variant="ghost" onClick={() => abort.current?.abort()}>
            Cancel upload
          </Button>
        ) : null}
      </div>
    </form>
  );
}
