import { createHash } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { denseCalibration } from "@kiln/builds/testing";
import { createFsStorage } from "@kiln/storage";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CalibrationLoadError, loadCalibration } from "./calibration.ts";

describe("loadCalibration", () => {
  let dir: string;
  const storage = () => createFsStorage(dir);
  const sha = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");
  const put = (key: string, bytes: Uint8Array) => storage().putStream(key, Readable.from([Buffer.from(bytes)]));
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "kiln-calibration-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("reads the set into the builder's options, with the method and the percentile", async () => {
    const bytes = denseCalibration(4);
    await put("calibration/org/a.npz", bytes);
    const loaded = await loadCalibration(storage(), {
      storageKey: "calibration/org/a.npz",
      sha256: sha(bytes),
      method: "percentile",
      percentile: 99.9,
    });
    expect(loaded?.options.calibrationMethod).toBe("percentile");
    expect(loaded?.options.calibrationPercentile).toBe(99.9);
    expect(loaded?.options.calibration?.x).toMatchObject({ dtype: "float32", shape: [4, 4] });
    expect(loaded?.summary).toBe(
      `Loaded the calibration set: 4 samples, ${bytes.length} bytes; ranges by percentile 99.9`,
    );
    const entropy = await loadCalibration(storage(), {
      storageKey: "calibration/org/a.npz",
      sha256: sha(bytes),
      method: "entropy",
      percentile: null,
    });
    expect(entropy?.options).not.toHaveProperty("calibrationPercentile");
    // A model with its own Q/DQ ranges builds INT8 without a set.
    expect(await loadCalibration(storage(), { storageKey: null, sha256: null, method: null, percentile: null })).toBe(
      null,
    );
  });

  it("fails for good on a missing, replaced or unreadable set", async () => {
    const row = { sha256: "0".repeat(64), method: "entropy" as const, percentile: null };
    await expect(loadCalibration(storage(), { ...row, storageKey: "calibration/org/gone.npz" })).rejects.toThrow(
      new CalibrationLoadError(
        "The calibration set of this build is no longer in storage. Upload it again and start a new build.",
      ),
    );
    const bytes = denseCalibration(2);
    await put("calibration/org/b.npz", bytes);
    await expect(loadCalibration(storage(), { ...row, storageKey: "calibration/org/b.npz" })).rejects.toThrow(
      /^The calibration set in storage is not the one this build was created with \(sha256 [0-9a-f]{12}…, expected 000000000000…\)/,
    );
    const zeros = new Uint8Array(100);
    await writeFile(join(dir, "calibration/org/c.npz"), zeros);
    await expect(
      loadCalibration(storage(), { ...row, sha256: sha(zeros), storageKey: "calibration/org/c.npz" }),
    ).rejects.toBeInstanceOf(CalibrationLoadError);
  });
});
