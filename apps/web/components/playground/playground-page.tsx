"use client";

import { useQuery } from "@tanstack/react-query";
import { type FormEvent, useEffect, useMemo, useState } from "react";
import { PageHeader } from "@/components/shell/app-shell";
import { Button, Card, EmptyState, ErrorState, Field, Input, Select, Skeleton } from "@/components/ui";
import { errorMessage, keys, useApi } from "@/lib/trpc";

type TensorInfo = { name: string; dtype: string; shape: (number | string)[] | null };
type Signature = { inputs?: TensorInfo[]; outputs?: TensorInfo[] };

const V2: Record<string, string> = {
  float32: "FP32",
  float64: "FP64",
  float16: "FP16",
  int8: "INT8",
  int16: "INT16",
  int32: "INT32",
  int64: "INT64",
  uint8: "UINT8",
  bool: "BOOL",
  string: "BYTES",
};

/** An image input: rank 4 with 3 channels first (NCHW) or last (NHWC) and fixed spatial dims. */
function imageLayout(t: TensorInfo): { layout: "NCHW" | "NHWC"; height: number; width: number } | null {
  const s = t.shape;
  if (s?.length !== 4 || !t.dtype.startsWith("float")) return null;
  if (s[1] === 3 && typeof s[2] === "number" && typeof s[3] === "number")
    return { layout: "NCHW", height: s[2], width: s[3] };
  if (s[3] === 3 && typeof s[1] === "number" && typeof s[2] === "number")
    return { layout: "NHWC", height: s[1], width: s[2] };
  return null;
}

/** Decodes an image file, resizes it to the input's size and lays its pixels out as floats in 0..1. */
async function imageTensor(file: File, layout: NonNullable<ReturnType<typeof imageLayout>>): Promise<number[]> {
  const bitmap = await createImageBitmap(file, { resizeWidth: layout.width, resizeHeight: layout.height });
  const canvas = new OffscreenCanvas(layout.width, layout.height);
  const context = canvas.getContext("2d");
  if (!context) throw new Error("this browser cannot read images");
  context.drawImage(bitmap, 0, 0);
  const { data } = context.getImageData(0, 0, layout.width, layout.height);
  const plane = layout.width * layout.height;
  const out = new Array<number>(plane * 3);
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < 3; c++) {
      const value = (data[p * 4 + c] as number) / 255;
      out[layout.layout === "NCHW" ? c * plane + p : p * 3 + c] = value;
    }
  }
  return out;
}

type InputState = { dims: number[]; data: string; file?: File };

export function PlaygroundPage() {
  const api = useApi();
  const deployments = useQuery({
    queryKey: keys.of("deployments.list", {}),
    queryFn: () => api.deployments.list.query(),
  });
  const [name, setName] = useState("");
  const [apiKey, setApiKey] = useState("");
  const [gatewayUrl, setGatewayUrl] = useState("");
  const [inputs, setInputs] = useState<Record<string, InputState>>({});
  const [result, setResult] = useState<{ status: number; ms: number; requestId: string | null; body: unknown } | null>(
    null,
  );
  const [error, setError] = useState<string | null>(null);
  const [isRunning, setRunning] = useState(false);

  useEffect(() => {
    setApiKey(sessionStorage.getItem("kiln-playground-key") ?? "");
    setGatewayUrl(process.env.NEXT_PUBLIC_GATEWAY_URL ?? `${location.protocol}//${location.hostname}:8080`);
  }, []);

  const deployment = deployments.data?.find((d) => d.name === name) ?? deployments.data?.[0];
  const signature = (deployment?.signature ?? {}) as Signature;
  const signatureInputs = useMemo(() => signature.inputs ?? [], [signature]);

  // A fresh form whenever the deployment changes: symbolic dims start at 1, data at zeros.
  useEffect(() => {
    const fresh: Record<string, InputState> = {};
    for (const t of signatureInputs) {
      const dims = (t.shape ?? [1]).map((d) => (typeof d === "number" && d > 0 ? d : 1));
      const count = dims.reduce((a, b) => a * b, 1);
      fresh[t.name] = {
        dims,
        data: JSON.stringify(new Array(Math.min(count, 10_000)).fill(t.dtype === "string" ? "" : 0)),
      };
    }
    setInputs(fresh);
    setResult(null);
  }, [signatureInputs]);

  const run = async (event: FormEvent) => {
    event.preventDefault();
    if (!deployment) return;
    setError(null);
    setRunning(true);
    sessionStorage.setItem("kiln-playground-key", apiKey);
    try {
      const body = {
        inputs: await Promise.all(
          signatureInputs.map(async (t) => {
            const state = inputs[t.name] as InputState;
            const image = imageLayout(t);
            const data =
              state.file && image ? await imageTensor(state.file, image) : (JSON.parse(state.data) as unknown[]);
            return { name: t.name, shape: state.dims, datatype: V2[t.dtype] ?? t.dtype.toUpperCase(), data };
          }),
        ),
      };
      const started = performance.now();
      const res = await fetch(
        `${gatewayUrl.replace(/\/+$/, "")}/v2/models/${encodeURIComponent(deployment.name)}/infer`,
        {
          method: "POST",
          headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
          body: JSON.stringify(body),
        },
      );
      const answer = await res.json();
      setResult({
        status: res.status,
        ms: performance.now() - started,
        requestId: res.headers.get("x-request-id"),
        body: answer,
      });
    } catch (e) {
      setError(e instanceof SyntaxError ? `input data is not valid JSON: ${e.message}` : errorMessage(e));
    } finally {
      setRunning(false);
    }
  };

  if (deployments.isLoading) return <Skeleton lines={4} label="Loading deployments" />;
  if (deployments.error)
    return <ErrorState message={errorMessage(deployments.error)} onRetry={() => deployments.refetch()} />;
  if (!deployments.data || deployments.data.length === 0) {
    return (
      <EmptyState title="Nothing to call yet">
        Create a deployment first; the playground calls it through the gateway.
      </EmptyState>
    );
  }

  return (
    <>
      <PageHeader
        title="Playground"
        description="Call a deployment from the browser with an API key; the form follows the model's signature."
      />
      <form onSubmit={run}>
        <Card title="Request">
          <Field label="Deployment">
            <Select
              value={deployment?.name ?? ""}
              onChange={(e) => setName(e.target.value)}
              options={deployments.data.map((d) => ({ value: d.name, label: `${d.name} (${d.status})` }))}
            />
          </Field>
          <Field label="API key" hint="A key with the inference scope; kept in this tab only">
            <Input
              type="password"
              value={apiKey}
              onChange={(e) => setApiKey(e.target.value)}
              placeholder="kiln_live_…"
              required
            />
          </Field>
          <Field label="Gateway URL">
            <Input value={gatewayUrl} onChange={(e) => setGatewayUrl(e.target.value)} required />
          </Field>
          {signatureInputs.map((t) => {
            const state = inputs[t.name];
            if (!state) return null;
            const image = imageLayout(t);
            return (
              <fieldset key={t.name} style={{ border: "none", padding: 0, display: "grid", gap: 8 }}>
                <legend>
                  <strong>{t.name}</strong> · {V2[t.dtype] ?? t.dtype} [{(t.shape ?? []).join(", ")}]
                </legend>
                <div style={{ display: "flex", gap: 8 }}>
                  {state.dims.map((d, i) => (
                    <Field
                      // biome-ignore lint/suspicious/noArrayIndexKey: a dim is its position; the list never reorders.
                      key={`${t.name}-${i}`}
                      label={`dim ${i}${typeof t.shape?.[i] === "string" ? ` (${t.shape?.[i]})` : ""}`}
                    >
                      <Input
                        type="number"
                        min={1}
                        value={d}
                        disabled={typeof t.shape?.[i] === "number"}
                        onChange={(e) => {
                          const dims = state.dims.map((x, j) => (j === i ? Number(e.target.value) : x));
                          setInputs({ ...inputs, [t.name]: { ...state, dims } });
                        }}
                      />
                    </Field>
                  ))}
                </div>
                {image ? (
                  <Field label="Image" hint={`Resized to ${image.width}×${image.height}, ${image.layout}, values 0..1`}>
                    <Input
                      type="file"
                      accept="image/*"
                      onChange={(e) => setInputs({ ...inputs, [t.name]: { ...state, file: e.target.files?.[0] } })}
                    />
                  </Field>
                ) : null}
                {!image || !state.file ? (
                  <Field label="Data (JSON, row-major)">
                    <textarea
                      className="ui-input"
                      rows={4}
                      value={state.data}
                      onChange={(e) => setInputs({ ...inputs, [t.name]: { ...state, data: e.target.value } })}
                    />
                  </Field>
                ) : null}
              </fieldset>
            );
          })}
          <Button type="submit" variant="primary" disabled={isRunning}>
            {isRunning ? "Running…" : "Run"}
          </Button>
          {error ? (
            <p className="ui-error" role="alert">
              {error}
            </p>
          ) : null}
        </Card>
      </form>
      {result ? (
        <Card title={`Response ${result.status} · ${result.ms.toFixed(1)} ms in the browser`}>
          {result.requestId ? <p>Request id {result.requestId}</p> : null}
          <pre style={{ overflow: "auto", maxHeight: 400 }}>{JSON.stringify(result.body, null, 2)}</pre>
        </Card>
      ) : null}
    </>
  );
}
