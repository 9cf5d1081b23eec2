import type { ReactNode } from "react";

export type CardProps = {
  title?: ReactNode;
  /** Buttons or links at the right of the title. */
  actions?: ReactNode;
  children: ReactNode;
  className?: string;
};

export function Card({ title, actions, children, className }: CardProps) {
  return (
    <section className={["ui-card", className].filter(Boolean).join(" ")}>
      {title || actions ? (
        <header className="ui-card__header">
          {title ? <h2 className="ui-card__title">{title}</h2> : <span />}
          {actions ? <div className="ui-card__actions">{actions}</div> : null}
        </header>
      ) : null}
      {children}
    </section>
  );
}
