"use client";

import { type ReactNode, useEffect, useId, useRef } from "react";

export type DialogProps = {
  isOpen: boolean;
  onClose: () => void;
  title: string;
  description?: ReactNode;
  children?: ReactNode;
  /** Buttons, right-aligned under the body. */
  actions?: ReactNode;
};

/**
 * A modal on the native <dialog> element: showModal() gives the focus trap, Escape to close, the
 * inert page behind it and focus return to the opener without any script of ours.
 */
export function Dialog({ isOpen, onClose, title, description, children, actions }: DialogProps) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  const descriptionId = useId();

  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    if (isOpen && !dialog.open) dialog.showModal();
    if (!isOpen && dialog.open) dialog.close();
  }, [isOpen]);

  return (
    // The backdrop click is a mouse shortcut; keyboard users close with Escape (onCancel) or the buttons.
    // biome-ignore lint/a11y/useKeyWithClickEvents: Escape is the keyboard equivalent
    <dialog
      ref={ref}
      className="ui-dialog"
      aria-labelledby={titleId}
      aria-describedby={description ? descriptionId : undefined}
      onClose={onClose}
      onCancel={(event) => {
        event.preventDefault();
        onClose();
      }}
      onClick={(event) => {
        // A click on the backdrop lands on the dialog element itself.
        if (event.target === ref.current) onClose();
      }}
    >
      <div className="ui-dialog__body">
        <h2 className="ui-dialog__title" id={titleId}>
          {title}
        </h2>
        {description ? (
          <div className="ui-dialog__description" id={descriptionId}>
            {description}
          </div>
        ) : null}
        {children}
        {actions ? <div className="ui-dialog__actions">{actions}</div> : null}
      </div>
    </dialog>
  );
}
