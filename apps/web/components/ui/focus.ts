/**
 * After a form fails validation, moves focus to its first invalid control, so keyboard and screen
 * reader users land on the message instead of hunting for it. Runs after React has rendered the errors.
 */
export function focusFirstInvalid(form: HTMLFormElement | null): void {
  requestAnimationFrame(() => form?.querySelector<HTMLElement>('[aria-invalid="true"]')?.focus());
}
