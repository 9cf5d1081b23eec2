import type { SampleHint } from "../graph-builder.ts";

/** Normalised image pixels: roughly what ImageNet mean/std normalisation produces. */
export const IMAGE: SampleHint = { kind: "uniform", low: -2, high: 2 };
