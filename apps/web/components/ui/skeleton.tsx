/** Grey placeholder lines while data loads; announced once as "Loading" to screen readers. */
export function Skeleton({ lines = 3, label = "Loading" }: { lines?: number; label?: string }) {
  return (
    <div className="ui-skeleton" role="status" aria-label={label}>
      {Array.from({ length: lines }, (_, i) => (
        // Lines have no identity beyond their position.
        // biome-ignore lint/suspicious/noArrayIndexKey: static placeholder rows
        <div key={i} className="ui-skeleton__line" style={{ width: `${90 - ((i * 17) % 40)}%` }} />
      ))}
    </div>
  );
}
