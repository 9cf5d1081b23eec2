import type { BuildReport, LayerReport } from "@kiln/engine";
import { renderToStaticMarkup } from "react-dom/server";
import { describe, expect, it } from "vitest";
import { BuildReportView, hasReducedPrecision } from "./build-report";

const layer = (name: string, precision: LayerReport["precision"], timeMs = 1): LayerReport => ({
  name,
  opType: "Conv",
  kernel: "k",
  outputShape: "1x8",
  timeMs,
  ...(precision ? { precision } : {}),
});
const report = (layers: LayerReport[]): BuildReport => ({
  nodesBefore: 10,
  nodesAfter: 4,
  fusions: { conv_fusion: 2 },
  layers,
  peakMemoryBytes: 1024,
  weightBytes: 2048,
  warnings: [],
});

describe("build report", () => {
  it("shows what each layer computes in for an INT8 build, with the layers kept in FP16", () => {
    const layers = [layer("a", "int8", 3), layer("b", "int8", 1), layer("c", "int8", 1), layer("d", "fp16", 5)];
    expect(hasReducedPrecision(layers)).toBe(true);
    const html = renderToStaticMarkup(<BuildReportView report={report(layers)} />);
    expect(html).toContain("Precision by layer");
    expect(html).toContain('aria-label="Layers by precision: 3 INT8, 1 FP16"');
    expect(html).toContain("INT8: 3 layers, 50% of the time");
    expect(html).toContain("FP16: 1 layer, 50% of the time");
    expect(html).toContain("<th scope=\"col\"");
    expect(html).toMatch(/>Precision<\/th>/);
  });

  it("leaves it out for FP32 builds and reports without per-layer precision", () => {
    for (const layers of [[layer("a", "fp32")], [layer("a", undefined)]]) {
      expect(hasReducedPrecision(layers)).toBe(false);
      const html = renderToStaticMarkup(<BuildReportView report={report(layers)} />);
      expect(html).not.toContain("Precision by layer");
    }
    expect(renderToStaticMarkup(<BuildReportView report={report([layer("a", undefined)])} />)).not.toMatch(
      />Precision<\/th>/,
    );
  });
});
