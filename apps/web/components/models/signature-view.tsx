import type { ModelSignature, TensorInfo } from "@kiln/engine";
import { Badge, Table } from "@/components/ui";
import { formatCount } from "@/lib/format";

/** A shape with its dynamic dims called out: [batch, 3, 224, 224] shows "batch" as a badge. */
export function ShapeView({ shape }: { shape: TensorInfo["shape"] }) {
  if (shape === null) return <span className="ui-hint">unknown rank</span>;
  if (shape.length === 0) return <span className="ui-mono">scalar</span>;
  return (
    <span className="shape">
      [
      {shape.map((dim, i) => (
        // Dims are positional.
        // biome-ignore lint/suspicious/noArrayIndexKey: a dim's identity is its position
        <span key={i} className="shape__dim">
          {typeof dim === "number" && dim >= 0 ? (
            <span className="ui-mono">{dim}</span>
          ) : (
            <span className="shape__dynamic" title="Dynamic dimension: set its range in the build profile">
              {typeof dim === "string" && dim ? dim : "?"}
            </span>
          )}
          {i < shape.length - 1 ? ", " : ""}
        </span>
      ))}
      ]
    </span>
  );
}

function TensorTable({ caption, tensors }: { caption: string; tensors: TensorInfo[] }) {
  return (
    <Table<TensorInfo>
      caption={caption}
      rows={tensors}
      rowKey={(t) => t.name}
      columns={[
        { key: "name", header: "Name", cell: (t) => <span className="ui-mono">{t.name}</span> },
        { key: "dtype", header: "Type", cell: (t) => <Badge>{t.dtype}</Badge> },
        { key: "shape", header: "Shape", cell: (t) => <ShapeView shape={t.shape} /> },
      ]}
    />
  );
}

export function SignatureView({ signature }: { signature: ModelSignature }) {
  const unsupported = new Set(
    signature.unsupported.map((line) => /unsupported operator (\S+)/.exec(line)?.[1]).filter(Boolean) as string[],
  );
  return (
    <div className="stack">
      {signature.unsupported.length > 0 ? (
        <div className="ui-callout ui-callout--danger" role="alert">
          <strong>
            Kiln cannot build this model yet: {signature.unsupported.length} node
            {signature.unsupported.length === 1 ? " uses an operator" : "s use operators"} the engine does not support.
          </strong>
          <ul className="compact-list">
            {signature.unsupported.slice(0, 8).map((line) => (
              <li key={line} className="ui-mono">
                {line}
              </li>
            ))}
            {signature.unsupported.length > 8 ? <li>…and {signature.unsupported.length - 8} more</li> : null}
          </ul>
          Export the model with a different opset or replace those operators, then upload it again.
        </div>
      ) : (
        <p className="ui-callout ui-callout--success">
          Every operator in this model is supported; it is ready to build.
        </p>
      )}
      <dl className="ui-facts">
        <div>
          <dt>Opset</dt>
          <dd>
            {Object.entries(signature.opsets)
              .map(([domain, version]) =>
                domain === "" || domain === "ai.onnx" ? `${version}` : `${domain} ${version}`,
              )
              .join(", ") || "—"}
          </dd>
        </div>
        <div>
          <dt>Parameters</dt>
          <dd>{formatCount(signature.parameterCount)}</dd>
        </div>
        <div>
          <dt>Operators</dt>
          <dd>{signature.operators.length} kinds</dd>
        </div>
        <div>
          <dt>Producer</dt>
          <dd>{signature.producer || "—"}</dd>
        </div>
      </dl>
      <h3 className="section-title">Inputs</h3>
      <TensorTable caption="Inputs" tensors={signature.inputs} />
      <h3 className="section-title">Outputs</h3>
      <TensorTable caption="Outputs" tensors={signature.outputs} />
      <h3 className="section-title">Operators</h3>
      <ul className="chips" aria-label="Operators used by the model">
        {[...signature.operators].sort().map((op) => (
          <li key={op}>
            <Badge tone={unsupported.has(op) ? "danger" : "neutral"}>
              {op}
              {unsupported.has(op) ? " · unsupported" : ""}
            </Badge>
          </li>
        ))}
      </ul>
    </div>
  );
}
