"use client";

import { useId, useState } from "react";

/**
 * A secret shown once: read-only, selected on focus, with a copy button that confirms the copy.
 * The caller decides when it disappears (it is never stored client-side).
 */
export function CopyField({ label, value }: { label: string; value: string }) {
  const id = useId();
  const [state, setState] = useState<"idle" | "copied" | "failed">("idle");
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(value);
      setState("copied");
    } catch {
      // Clipboard access needs a secure context; the text stays selectable for a manual copy.
      setState("failed");
    }
  };
  return (
    <div className="ui-field">
      <label className="ui-label" htmlFor={id}>
        {label}
      </label>
      <div className="ui-copy">
        <input id={id} className="ui-input ui-copy__input" readOnly value={value} onFocus={(e) => e.target.select()} />
        <button type="button" className="ui-button ui-button--primary" onClick={copy}>
          {state === "copied" ? "Copied" : "Copy"}
        </button>
      </div>
      <p className="ui-hint" aria-live="polite">
        {state === "failed" ? "Copying was blocked by the browser; select the text and copy it by hand." : ""}
      </p>
    </div>
  );
}
