"use client";

import type { ModelSignature } from "@kiln/engine";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import Link from "next/link";
import { useRouter } from "next/navigation";
import { type FormEvent, useEffect, useState } from "react";
import { PageHeader } from "@/components/shell/app-shell";
import { Button, Card, ErrorState, Field, Select, Skeleton } from "@/components/ui";
import { draftFromInputs, type ProfileDraft, parseProfile } from "@/lib/profile";
import { errorMessage, keys, type RouterOutputs, useApi } from "@/lib/trpc";
import { ProfileEditor } from "./profile-editor";

// INT8 needs a calibration set to measure activation ranges; the native builder has no calibrator
// yet, so the choice is shown (people look for it) but cannot be picked.
const precisions = [
  { value: "fp32", label: "FP32 — full precision" },
  { value: "fp16", label: "FP16 — half the memory (GPU targets)" },
  { value: "int8", label: "INT8 — needs calibration (not available in this builder yet)" },
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
  const [precision, setPrecision] = useState("fp32");
  const [draft, setDraft] = useState<ProfileDraft>(() => draftFromInputs(signature.inputs));
  const [errors, setErrors] = useState<{ target?: string; profile?: string; form?: string }>({});

  // FP16 is a GPU format; on a CPU target the choice would silently mean FP32.
  useEffect(() => {
    if (target === "cpu" && precision === "fp16") setPrecision("fp32");
  }, [target, precision]);

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
    const found = {
      target: targets.some((t) => t.target === target) ? undefined : "Choose a target that a worker offers.",
      profile: "error" in parsed ? parsed.error : undefined,
    };
    setErrors(found);
    if (found.target || "error" in parsed) return;
    create.mutate({
      modelVersionId: version.id,
      target,
      precision: precision as "fp32" | "fp16",
      profiles: Object.keys(parsed.profile).length > 0 ? [parsed.profile] : [],
    });
  };

  const targetOptions = targets.map((t) => ({
    value: t.target,
    label: `${t.label} · ${t.workers === 0 ? "no worker online yet" : `${t.workers} worker${t.workers === 1 ? "" : "s"} online`}`,
  }));
  const hasWorker = targets.some((t) => t.target === target && t.workers > 0);

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
            <Field label="Target" error={errors.target} hint="CPU, and the GPU classes that registered workers offer.">
              <Select
                name="target"
                value={target}
                onChange={(e) => setTarget(e.target.value)}
                options={targetOptions}
              />
            </Field>
            <Field label="Precision">
              <Select
                name="precision"
                value={precision}
                onChange={(e) => setPrecision(e.target.value)}
                options={precisions.map((p) => ({
                  ...p,
                  disabled: p.value === "int8" || (p.value === "fp16" && target === "cpu"),
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
        <div className="row">
          <Button type="submit" variant="primary" isLoading={create.isPending}>
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
