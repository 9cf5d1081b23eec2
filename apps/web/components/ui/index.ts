// Kiln's component kit. Styles live in kit.css (imported once by the root layout); every component
// here uses its ui-* classes and the design tokens at the top of that file.
export { Badge, StatusBadge, type Tone } from "./badge.tsx";
export { Button, type ButtonProps, buttonClass } from "./button.tsx";
export { Card } from "./card.tsx";
export { CopyField } from "./copy-field.tsx";
export { Dialog } from "./dialog.tsx";
export { EmptyState, ErrorState } from "./empty-state.tsx";
export { Field, Input, Select, type SelectOption } from "./field.tsx";
export { focusFirstInvalid } from "./focus.ts";
export { Progress } from "./progress.tsx";
export { Skeleton } from "./skeleton.tsx";
export { type Column, Table } from "./table.tsx";
export { type Tab, Tabs } from "./tabs.tsx";
export { ToastProvider, useToast } from "./toast.tsx";
