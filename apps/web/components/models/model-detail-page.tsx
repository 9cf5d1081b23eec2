"use client";

import type { ModelSignature } from "@kiln/engine";
import { useQuery } from "@tanstack/react-query";
import Link from "next/link";
import { useState } from "react";
import { BuildsTable } from "@/components/builds/builds-table";
import { PageHeader } from "@/components/shell/app-shell";
import { buttonClass, Card, EmptyState, ErrorState, Select, Skeleton } from "@/components/ui";
import { formatBytes, formatDate } from "@/lib/format";
import { errorMessage, keys, useApi } from "@/lib/trpc";
import { SignatureView } from "./signature-view";
import { UploadModel } from "./upload-model";

export function ModelDetailPage({ modelId }: { modelId: string }) {
  const api = useApi();
  const model = useQuery({
    queryKey: keys.of("models.get", { id: modelId }),
    queryFn: () => api.models.get.query({ id: modelId }),
  });
  const [selectedVersionId, setSelectedVersionId] = useState<string>();
  const builds = useQuery({
    queryKey: keys.of("builds.list", { modelId }),
    queryFn: () => api.builds.list.query({ modelId }),
    enabled: model.isSuccess,
  });

  if (model.isLoading) return <Skeleton lines={6} label="Loading model" />;
  if (model.error || !model.data) {
    return (
      <ErrorState
        title="Model not found"
        message={errorMessage(model.error ?? new Error("This model does not exist in this organization."))}
      />
    );
  }

  const versions = model.data.versions;
  const version = versions.find((v) => v.id === selectedVersionId) ?? versions[0];
  const signature = version?.signature as ModelSignature | undefined;
  const isBuildable = signature !== undefined && signature.unsupported.length === 0;

  return (
    <>
      <nav className="breadcrumb" aria-label="Breadcrumb">
        <Link href="/models">Models</Link> / {model.data.name}
      </nav>
      <PageHeader
        title={model.data.name}
        description={
          version
            ? `Version ${version.version} · ${version.filename} · uploaded ${formatDate(version.createdAt)}`
            : undefined
        }
        actions={
          version && isBuildable ? (
            <Link className={buttonClass("primary")} href={`/builds/new?modelVersionId=${version.id}`}>
              Build this version
            </Link>
          ) : null
        }
      />
      {versions.length > 1 ? (
        <div className="version-picker">
          <label className="ui-label" htmlFor="version">
            Version
          </label>
          <Select
            id="version"
            value={version?.id}
            onChange={(e) => setSelectedVersionId(e.target.value)}
            options={versions.map((v) => ({ value: v.id, label: `v${v.version} · ${formatDate(v.createdAt)}` }))}
          />
        </div>
      ) : null}
      {version && signature ? (
        <div className="grid-main-side">
          <Card title="Signature">
            <SignatureView signature={signature} />
          </Card>
          <div>
            <Card title="File">
              <dl className="ui-facts ui-facts--single">
                <div>
                  <dt>Size</dt>
                  <dd>{formatBytes(version.sizeBytes)}</dd>
                </div>
                <div>
                  <dt>SHA-256</dt>
                  <dd className="ui-mono">{version.sha256}</dd>
                </div>
              </dl>
            </Card>
            <Card title="Versions">
              <ul className="compact-list">
                {versions.map((v) => (
                  <li key={v.id}>
                    v{v.version} · {formatBytes(v.sizeBytes)} · {formatDate(v.createdAt)}
                  </li>
                ))}
              </ul>
              <UploadModel modelName={model.data.name} onUploaded={() => setSelectedVersionId(undefined)} />
            </Card>
          </div>
        </div>
      ) : (
        <EmptyState title="No versions">Upload a file to give this model its first version.</EmptyState>
      )}
      <Card title="Builds">
        {builds.isLoading ? (
          <Skeleton lines={2} label="Loading builds" />
        ) : builds.error ? (
          <ErrorState message={errorMessage(builds.error)} onRetry={() => builds.refetch()} />
        ) : builds.data && builds.data.length > 0 ? (
          <BuildsTable builds={builds.data} />
        ) : (
          <EmptyState title="Not built yet">
            {isBuildable ? "Build a version to get an engine you can deploy." : "Fix the unsupported operators first."}
          </EmptyState>
        )}
      </Card>
    </>
  );
}
