"use client";

import type { TensorInfo } from "@kiln/engine";
import { ShapeView } from "@/components/models/signature-view";
import { hasDynamicDims, type ProfileDraft } from "@/lib/profile";

export function ProfileEditor({
  inputs,
  draft,
  onChange,
}: {
  inputs: TensorInfo[];
  draft: ProfileDraft;
  onChange: (draft: ProfileDraft) => void;
}) {
  const dynamicInputs = inputs.filter(hasDynamicDims);
  if (dynamicInputs.length === 0) {
    return <p className="ui-hint">Every input has a fixed shape, so the engine is built for exactly those shapes.</p>;
  }
  const set = (name: string, key: "min" | "opt" | "max", dim: number, value: string) => {
    const range = draft[name];
    if (!range) return;
    const next = [...range[key]];
    next[dim] = value;
    onChange({ ...draft, [name]: { ...range, [key]: next } });
  };
  return (
    <div className="stack">
      {dynamicInputs.map((input) => (
        <fieldset key={input.name} className="profile">
          <legend>
            <span className="ui-mono">{input.name}</span> <ShapeView shape={input.shape} />
          </legend>
          <div
            className="profile__grid"
            style={{ gridTemplateColumns: `3rem repeat(${input.shape?.length ?? 0}, minmax(3rem, 1fr))` }}
          >
            <span />
            {(input.shape ?? []).map((dim, d) => (
              // biome-ignore lint/suspicious/noArrayIndexKey: a dim's identity is its position
              <span key={d} className="profile__dim">
                {String(dim)}
              </span>
            ))}
            {(["min", "opt", "max"] as const).map((key) => (
              <ProfileRow
                key={key}
                label={key}
                input={input}
                values={draft[input.name]?.[key] ?? []}
                onChange={(d, v) => set(input.name, key, d, v)}
              />
            ))}
          </div>
        </fieldset>
      ))}
      <p className="ui-hint">
        The engine accepts any shape between min and max and is tuned for opt. Fixed dimensions cannot change.
      </p>
    </div>
  );
}

function ProfileRow({
  label,
  input,
  values,
  onChange,
}: {
  label: string;
  input: TensorInfo;
  values: string[];
  onChange: (dim: number, value: string) => void;
}) {
  return (
    <>
      <span className="profile__key">{label}</span>
      {(input.shape ?? []).map((dim, d) => {
        const isFixed = typeof dim === "number" && dim >= 0;
        return (
          <input
            // biome-ignore lint/suspicious/noArrayIndexKey: a dim's identity is its position
            key={d}
            className="ui-input profile__input"
            inputMode="numeric"
            aria-label={`${input.name} dimension ${d} ${label}`}
            value={values[d] ?? ""}
            readOnly={isFixed}
            disabled={isFixed}
            onChange={(e) => onChange(d, e.target.value)}
          />
        );
      })}
    </>
  );
}
