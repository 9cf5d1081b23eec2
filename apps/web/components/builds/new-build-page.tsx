"use client";

import type { ModelSignature } from "@kiln/engine";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import Link from "next/link";
import { useRouter } from "next/navigation";
import { type FormEvent, useEffect, useMemo, useState } from "react";
import { PageHeader } from "@/components/shell/app-shell";
import { Button, Card, ErrorState, Field, focusFirstInvalid, Select, Skeleton } from "@/components/ui";
import { draftFromInputs, type ProfileDraft, parseProfile } from "@/lib/profile";
import { errorMessage, keys, type RouterOutputs, useApi } from "@/lib/trpc";
import {
  type CalibrationDraft,
  type CalibrationErrors,
  CalibrationPicker,
  DEFAULT_PERCENTILE,
  parsePercentile,
} from "./calibration-picker";
import { ProfileEditor } from "./profile-editor";

type Precision = "fp32" | "fp16" | "int8";

// What each precision is, and (when the target cannot build it) why it cannot be picked.
const precisions: { value: Precision; label: string; unavailable: string }[] = [
  { value: "fp32", label: "FP32 — full precision", unavailable: "FP32" },
  { value: "fp16", label: "FP16 — half the memory", unavailable: "FP16 — needs a GPU target" },
  { value: "int8", label: "INT8 — quarter memory, calibrated", unavailable: "INT8 — needs a GPU target" },
];

export function NewBuildPage({ modelVersionId }: { modelVersionId?: string }) {
  const api = useApi();
  const version = useQuery({
    queryKey: keys.of("models.version", { id: modelVersionId }),
    queryFn: () => api.models.version.query({ id: modelVersionId ?? "" }),
    enabled: Boolean(modelVersionId),
  });
  const targets = useQuery({ queryKey: keys.of("builds.targets"), queryFn: () => api.builds.targets.query() });

  if (!modelVersionId) {
    return (
      <ErrorState
        title="Choose a model first"
        message="Open a model and press “Build this version”; the build form needs to know which version to build."
      />
    );
  }
  if (version.isLoading || targets.isLoading) return <Skeleton lines={6} label="Loading build options" />;
  if (version.error || !version.data) return <ErrorState message={errorMessage(version.error)} />;
  if (targets.error || !targets.data) {
    return <ErrorState message={errorMessage(targets.error)} onRetry={() => targets.refetch()} />;
  }
  return <BuildForm version={version.data} targets={targets.data} />;
}

type VersionInfo = RouterOutputs["models"]["version"];
type TargetInfo = RouterOutputs["builds"]["targets"][number];

function BuildForm({ version, targets }: { version: VersionInfo; targets: TargetInfo[] }) {
  const api = useApi();
  const router = useRouter();
  const queryClient = useQueryClient();
  const signature: ModelSignature = version.signature;
  const [target, setTarget] = useState(targets[0]?.target ?? "cpu");
  const [precision, setPrecision] = useState<Precision>("fp32");
  const [draft, setDraft] = useState<ProfileDraft>(() => draftFromInputs(signature.inputs));
  const [calibration, setCalibration] = useState<CalibrationDraft>({
    setId: "",
    method: "entropy",
    percentile: DEFAULT_PERCENTILE,
  });
  const [errors, setErrors] = useState<{
    target?: string;
    profile?: string;
    form?: string;
    calibration?: CalibrationErrors;
  }>({});
  const [isCalibrationBusy, setCalibrationBusy] = useState(false);
  const offered = useMemo(() => targets.find((t) => t.target === target)?.precisions ?? ["fp32"], [targets, target]);

  // FP16 and INT8 are GPU formats; on a CPU target the choice would silently mean FP32.
  useEffect(() => {
    if (!offered.includes(precision)) setPrecision("fp32");
  }, [offered, precision]);

  const create = useMutation({
    mutationFn: (input: Parameters<typeof api.builds.create.mutate>[0]) => api.builds.create.mutate(input),
    onSuccess: async (build) => {
      await queryClient.invalidateQueries({ queryKey: keys.of("builds") });
      router.push(`/builds/${build.id}`);
    },
    onError: (e) => setErrors({ form: errorMessage(e) }),
  });

  const submit = (event: FormEvent) => {
    event.preventDefault();
    const parsed = parseProfile(draft, signature.inputs);
    const isInt8 = precision === "int8";
    const percentile = parsePercentile(calibration.percentile);
    const calibrationErrors: CalibrationErrors = isInt8
      ? {
          set: calibration.setId ? undefined : "Upload a calibration set (.npz) or choose one.",
          percentile: calibration.method === "percentile" && "error" in percentile ? percentile.error : undefined,
        }
      : {};
    const found = {
      target: targets.some((t) => t.target === target) ? undefined : "Choose a target that a worker offers.",
      profile: "error" in parsed ? parsed.error : undefined,
      calibration: calibrationErrors,
    };
    setErrors(found);
    if (found.target || "error" in parsed || calibrationErrors.set || calibrationErrors.percentile) {
      focusFirstInvalid(event.currentTarget as HTMLFormElement);
      return;
    }
    create.mutate({
      modelVersionId: version.id,
      target,
      precision,
      profiles: Object.keys(parsed.profile).length > 0 ? [parsed.profile] : [],
      calibration: isInt8
        ? {
            setId: calibration.setId,
            method: calibration.method,
            ...(calibration.method === "percentile" && "value" in percentile ? { percentile: percentile.value } : {}),
          }
        : null,
    });
  };

  // The option names the target; how many workers serve it goes under the control (long option
  // labels are cut off in a narrow card).
  const targetOptions = targets.map((t) => ({ value: t.target, label: t.label }));
  const workers = targets.find((t) => t.target === target)?.workers ?? 0;
  const hasWorker = workers > 0;

  return (
    <>
      <nav className="breadcrumb" aria-label="Breadcrumb">
        <Link href="/models">Models</Link> / <Link href={`/models/${version.modelId}`}>{version.modelName}</Link> / New
        build
      </nav>
      <PageHeader
        title={`Build ${version.modelName} v${version.version}`}
        description="Choose where the engine will run and how precise it must be. Builds with the same options are reused."
      />
      <form onSubmit={submit} noValidate>
        {errors.form ? (
          <p className="ui-callout ui-callout--danger" role="alert">
            {errors.form}
          </p>
        ) : null}
        <div className="grid-2">
          <Card title="Target and precision">
            {!hasWorker ? (
              <p className="ui-callout ui-callout--warning">
                No worker for this target is online right now. The build waits in the queue until one starts (npm start
                runs a CPU worker).
              </p>
            ) : null}
            <Field
              label="Target"
              error={errors.target}
              hint={`CPU, and the GPU classes that registered workers offer. ${
                hasWorker ? `${workers} worker${workers === 1 ? "" : "s"} online for this target.` : ""
              }`}
            >
              <Select
                name="target"
                value={target}
                onChange={(e) => setTarget(e.target.value)}
                options={targetOptions}
              />
            </Field>
            <Field
              label="Precision"
              hint={
                offered.includes("int8")
                  ? "FP16 and INT8 engines are smaller and faster; INT8 is calibrated on your data."
                  : "CPU targets build FP32 engines. INT8 (and FP16) need a GPU target."
              }
            >
              <Select
                name="precision"
                value={precision}
                onChange={(e) => setPrecision(e.target.value as Precision)}
                options={precisions.map((p) => ({
                  value: p.value,
                  label: offered.includes(p.value) ? p.label : p.unavailable,
                  disabled: !offered.includes(p.value),
                }))}
              />
            </Field>
          </Card>
          <Card title="Shape profile">
            <ProfileEditor inputs={signature.inputs} draft={draft} onChange={setDraft} />
            {errors.profile ? (
              <p className="ui-error" role="alert">
                {errors.profile}
              </p>
            ) : null}
          </Card>
        </div>
        {precision === "int8" ? (
          <Card title="INT8 calibration">
            <CalibrationPicker
              modelVersionId={version.id}
              inputs={signature.inputs}
              draft={calibration}
              errors={errors.calibration ?? {}}
              onBusyChange={setCalibrationBusy}
              onChange={(next) => {
                setCalibration(next);
                if (errors.calibration) setErrors((e) => ({ ...e, calibration: {} }));
              }}
            />
          </Card>
        ) : null}
        <div className="row">
          <Button
            type="submit"
            variant="primary"
            isLoading={create.isPending}
            disabled={precision === "int8" && isCalibrationBusy}
          >
            Start build
          </Button>
          <Link href={`/models/${version.modelId}`} className="ui-button ui-button--ghost">
            Cancel
          </Link>
        </div>
      </form>
    </>
  );
}
