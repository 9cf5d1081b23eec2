"use client";

import { useQuery } from "@tanstack/react-query";
import Link from "next/link";
import { useState } from "react";
import { PageHeader } from "@/components/shell/app-shell";
import { Button, Card, EmptyState, ErrorState, Skeleton, Table } from "@/components/ui";
import { formatBytes, formatDate } from "@/lib/format";
import { errorMessage, keys, type RouterOutputs, useApi } from "@/lib/trpc";
import { UploadModel } from "./upload-model";

type ModelRow = RouterOutputs["models"]["list"][number];

export function ModelsPage() {
  const api = useApi();
  const models = useQuery({ queryKey: keys.of("models.list"), queryFn: () => api.models.list.query() });
  const [isUploadOpen, setUploadOpen] = useState(false);
  const showUpload = isUploadOpen || models.data?.length === 0;

  return (
    <>
      <PageHeader
        title="Models"
        description="ONNX models you uploaded. Each upload is checked and becomes a new version you can build."
        actions={
          !showUpload ? (
            <Button variant="primary" onClick={() => setUploadOpen(true)}>
              Upload model
            </Button>
          ) : null
        }
      />
      {showUpload ? (
        <Card title="Upload a model">
          <UploadModel onUploaded={() => setUploadOpen(false)} />
        </Card>
      ) : null}
      {models.isLoading ? (
        <Skeleton lines={4} label="Loading models" />
      ) : models.error ? (
        <ErrorState message={errorMessage(models.error)} onRetry={() => models.refetch()} />
      ) : models.data && models.data.length > 0 ? (
        <Table<ModelRow>
          caption="Models"
          rows={models.data}
          rowKey={(m) => m.id}
          columns={[
            { key: "name", header: "Name", cell: (m) => <Link href={`/models/${m.id}`}>{m.name}</Link> },
            { key: "version", header: "Latest", cell: (m) => (m.latestVersion ? `v${m.latestVersion.version}` : "—") },
            { key: "versions", header: "Versions", isNumeric: true, cell: (m) => m.versionCount },
            {
              key: "size",
              header: "Size",
              isNumeric: true,
              cell: (m) => formatBytes(m.latestVersion?.sizeBytes),
            },
            { key: "updated", header: "Updated", cell: (m) => formatDate(m.updatedAt) },
          ]}
        />
      ) : (
        <EmptyState title="No models yet">
          Upload an .onnx file above. Kiln reads its inputs, outputs and operators and tells you what it can build.
        </EmptyState>
      )}
    </>
  );
}
