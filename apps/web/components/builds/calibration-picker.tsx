"use client";

import type { TensorInfo } from "@kiln/engine";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useRef, useState } from "react";
import { Button, Field, Input, Progress, Select, Skeleton } from "@/components/ui";
import { formatBytes, formatDate } from "@/lib/format";
import { errorMessage, keys, useApi } from "@/lib/trpc";
import { type UploadProgress, uploadFile } from "@/lib/upload";

export type CalibrationMethod = "entropy" | "percentile" | "minmax";
export type CalibrationDraft = { setId: string; method: CalibrationMethod; percentile: string };
export type CalibrationErrors = { set?: string; percentile?: string };

export const DEFAULT_PERCENTILE = "99.99";

const methods: { value: CalibrationMethod; label: string }[] = [
  { value: "entropy", label: "Entropy (KL divergence) — recommended" },
  { value: "percentile", label: "Percentile of |activation|" },
  { value: "minmax", label: "Min/max — keeps every outlier" },
];

const methodHints: Record<CalibrationMethod, string> = {
  entropy: "Picks each range that loses the least information. Works well for most models.",
  percentile: "Clips the rarest large activations. Try 99.99, then 99.9 if accuracy drops.",
  minmax: "Uses the largest activation seen. Safe with clean data, coarse with outliers.",
};

/** The percentile as the API takes it, or the problem with what was typed. */
export function parsePercentile(text: string): { value: number } | { error: string } {
  const value = Number(text.trim());
  if (!text.trim() || !Number.isFinite(value)) return { error: "Enter a percentile such as 99.99." };
  if (value < 50 || value > 100) return { error: "The percentile must be between 50 and 100." };
  return { value };
}

/** What the file must contain, from the model's inputs: "x  float32 (N, 4)". */
function expectedShape(input: TensorInfo): string {
  if (input.shape === null) return `${input.dtype} (N, …)`;
  const dims = input.shape.map((d, i) => (i === 0 ? "N" : String(d)));
  return `${input.dtype} (${dims.join(", ")}${dims.length === 1 ? "," : ""})`;
}

/**
 * The INT8 part of the build form: a calibration set of this model version (one already uploaded,
 * or a new .npz streamed to the server with a progress bar and checked there against the model's
 * inputs) and the calibration method.
 */
export function CalibrationPicker({
  modelVersionId,
  inputs,
  draft,
  errors,
  onChange,
  onBusyChange,
}: {
  modelVersionId: string;
  inputs: TensorInfo[];
  draft: CalibrationDraft;
  errors: CalibrationErrors;
  onChange: (draft: CalibrationDraft) => void;
  /** True while a file uploads or is checked: the build cannot start until its set is known. */
  onBusyChange?: (isBusy: boolean) => void;
}) {
  const api = useApi();
  const queryClient = useQueryClient();
  const sets = useQuery({
    queryKey: keys.of("calibration.list", { modelVersionId }),
    queryFn: () => api.calibration.list.query({ modelVersionId }),
  });
  const [progress, setProgress] = useState<UploadProgress>();
  const [phase, setPhase] = useState<"idle" | "uploading" | "checking">("idle");
  const [fileName, setFileName] = useState<string>();
  const [uploadError, setUploadError] = useState<string>();
  const abort = useRef<AbortController>(null);
  // Remounting the file input clears it, so the same file can be picked again after a fix.
  const [fileKey, setFileKey] = useState(0);

  const upload = async (file: File | undefined) => {
    setUploadError(undefined);
    if (!file) return;
    if (!/\.npz$/i.test(file.name)) {
      setUploadError("The calibration set must be an .npz file (numpy.savez), one array per model input.");
      return;
    }
    setFileName(file.name);
    // A new file answers any earlier "choose a set" error; its own problems show when it is checked.
    onChange(draft);
    abort.current = new AbortController();
    setPhase("uploading");
    onBusyChange?.(true);
    try {
      const uploaded = (await uploadFile(
        "/api/calibration/upload",
        file,
        { modelVersionId },
        (p) => {
          setProgress(p);
          // Every byte is sent: the server still hashes, stores and checks the arrays.
          if (p.loaded >= p.total) setPhase("checking");
        },
        abort.current.signal,
      )) as { id: string };
      await queryClient.invalidateQueries({ queryKey: keys.of("calibration.list", { modelVersionId }) });
      onChange({ ...draft, setId: uploaded.id });
    } catch (error) {
      setUploadError(errorMessage(error));
    } finally {
      setProgress(undefined);
      setPhase("idle");
      onBusyChange?.(false);
      setFileKey((k) => k + 1);
    }
  };

  const isBusy = phase !== "idle";
  const options = (sets.data ?? []).map((s) => ({
    value: s.id,
    label: `${s.filename} · ${s.sampleCount} sample${s.sampleCount === 1 ? "" : "s"} · ${formatBytes(s.sizeBytes)} · ${formatDate(s.createdAt)}`,
  }));
  const chosen = sets.data?.find((s) => s.id === draft.setId);

  return (
    <div className="calibration">
      <div className="stack">
        <p className="ui-hint">
          INT8 measures each activation's range on representative inputs. Upload an{" "}
          <span className="ui-mono">.npz</span> (numpy.savez) with one array per model input, samples stacked along the
          first dim; 100–500 real samples are typical.
        </p>
        <ul className="calibration__expected" aria-label="Arrays the calibration set needs">
          {inputs.map((input) => (
            <li key={input.name}>
              <span className="ui-mono">{input.name}</span>{" "}
              <span className="ui-mono ui-hint">{expectedShape(input)}</span>
            </li>
          ))}
        </ul>
        {sets.isLoading ? <Skeleton lines={1} label="Loading calibration sets" /> : null}
        {options.length > 0 ? (
          <Field
            label="Calibration set"
            error={errors.set}
            hint={
              chosen ? `Arrays: ${chosen.arrays.map((a) => `${a.name} (${a.shape.join(", ")})`).join(", ")}` : undefined
            }
          >
            <Select
              name="calibrationSet"
              value={draft.setId}
              disabled={isBusy}
              onChange={(e) => onChange({ ...draft, setId: e.target.value })}
              options={[{ value: "", label: "Choose a calibration set…" }, ...options]}
            />
          </Field>
        ) : null}
        <Field
          label={options.length > 0 ? "Or upload a new calibration set" : "Calibration set (.npz)"}
          error={uploadError ?? (options.length === 0 ? errors.set : undefined)}
          hint="It is checked against the model's inputs as soon as it arrives. The size limit is your plan's model size limit."
        >
          <Input
            key={fileKey}
            type="file"
            name="calibrationFile"
            accept=".npz"
            disabled={isBusy}
            onChange={(e) => void upload(e.target.files?.[0])}
          />
        </Field>
        {progress ? (
          <Progress
            label={phase === "checking" ? "Checking the calibration set…" : `Uploading ${fileName ?? ""}`}
            value={phase === "checking" ? undefined : progress.loaded / progress.total}
            detail={`${formatBytes(progress.loaded)} of ${formatBytes(progress.total)}`}
          />
        ) : null}
        {phase === "uploading" ? (
          <div className="row">
            <Button variant="ghost" onClick={() => abort.current?.abort()}>
              Cancel upload
            </Button>
          </div>
        ) : null}
        {sets.error ? <p className="ui-error">{errorMessage(sets.error)}</p> : null}
      </div>
      <div className="stack">
        <Field label="Calibration method" hint={methodHints[draft.method]}>
          <Select
            name="calibrationMethod"
            value={draft.method}
            onChange={(e) => onChange({ ...draft, method: e.target.value as CalibrationMethod })}
            options={methods}
          />
        </Field>
        {draft.method === "percentile" ? (
          <Field
            label="Percentile"
            error={errors.percentile}
            hint="Between 50 and 100; 99.99 keeps all but 1 in 10,000."
          >
            <Input
              name="percentile"
              inputMode="decimal"
              value={draft.percentile}
              onChange={(e) => onChange({ ...draft, percentile: e.target.value })}
            />
          </Field>
        ) : null}
      </div>
    </div>
  );
}
