import type { ButtonHTMLAttributes, ReactNode } from "react";

export type ButtonVariant = "primary" | "secondary" | "ghost" | "danger";

export type ButtonProps = ButtonHTMLAttributes<HTMLButtonElement> & {
  variant?: ButtonVariant;
  size?: "sm" | "md";
  /** Shows a spinner and disables the button while an action is in flight. */
  isLoading?: boolean;
  children: ReactNode;
};

export function Button({
  variant = "secondary",
  size = "md",
  isLoading = false,
  disabled,
  className,
  type = "button",
  children,
  ...rest
}: ButtonProps) {
  const classes = ["ui-button", `ui-button--${variant}`, size === "sm" ? "ui-button--sm" : "", className ?? ""];
  return (
    <button
      type={type}
      className={classes.filter(Boolean).join(" ")}
      disabled={disabled || isLoading}
      aria-busy={isLoading || undefined}
      {...rest}
    >
      {isLoading ? <span className="ui-spinner" aria-hidden="true" /> : null}
      {children}
    </button>
  );
}

/** A link styled as a button, for navigation that looks like an action ("New build"). */
export function buttonClass(variant: ButtonVariant = "secondary", size: "sm" | "md" = "md"): string {
  return ["ui-button", `ui-button--${variant}`, size === "sm" ? "ui-button--sm" : ""].filter(Boolean).join(" ");
}
