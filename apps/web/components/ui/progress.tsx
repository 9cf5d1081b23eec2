export type ProgressProps = {
  label: string;
  /** 0..1; undefined means "working, amount unknown". */
  value?: number;
  /** Text under the bar, e.g. "12.4 MB of 40 MB". */
  detail?: string;
  tone?: "info" | "success" | "danger";
};

export function Progress({ label, value, detail, tone = "info" }: ProgressProps) {
  const percent = value === undefined ? undefined : Math.round(Math.min(1, Math.max(0, value)) * 100);
  return (
    <div className="ui-progress">
      <div className="ui-progress__top">
        <span>{label}</span>
        {percent !== undefined ? <span className="ui-num">{percent}%</span> : null}
      </div>
      <div
        className={`ui-progress__track ui-progress--${tone}`}
        role="progressbar"
        aria-label={label}
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={percent}
        aria-valuetext={detail}
      >
        <div
          className={percent === undefined ? "ui-progress__bar ui-progress__bar--indeterminate" : "ui-progress__bar"}
          style={percent === undefined ? undefined : { width: `${percent}%` }}
        />
      </div>
      {detail ? <p className="ui-hint">{detail}</p> : null}
    </div>
  );
}
