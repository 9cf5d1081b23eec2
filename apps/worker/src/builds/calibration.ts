import { createHash } from "node:crypto";
import { type BuildOptions, KilnEngineError, parseNpz, type Tensor } from "@kiln/engine";
import type { StorageProvider } from "@kiln/storage";

export type CalibrationMethodName = NonNullable<BuildOptions["calibrationMethod"]>;

/** A calibration problem no retry can fix: the build fails at once with this message. */
export class CalibrationLoadError extends Error {
  override readonly name = "CalibrationLoadError";
}

export type BuildCalibration = {
  storageKey: string | null;
  sha256: string | null;
  method: CalibrationMethodName | null;
  percentile: number | null;
};

/**
 * The calibration options of an INT8 build: the set read from storage, checked against the sha256
 * recorded when the build was created, parsed (the same parser that validated it at upload), and
 * the method. A build without a set (a model carrying its own Q/DQ ranges) gets none.
 */
export async function loadCalibration(
  storage: StorageProvider,
  row: BuildCalibration,
  maxInflatedBytes?: number,
): Promise<{ options: Partial<BuildOptions>; summary: string } | null> {
  if (!row.storageKey) return null;
  let bytes: Uint8Array;
  try {
    bytes = await storage.getBytes(row.storageKey);
  } catch (error) {
    // The store answers a missing object with a KilnError of code NOT_FOUND.
    if ((error as { code?: unknown }).code === "NOT_FOUND") {
      throw new CalibrationLoadError(
        "The calibration set of this build is no longer in storage. Upload it again and start a new build.",
      );
    }
    throw error;
  }
  const sha256 = createHash("sha256").update(bytes).digest("hex");
  if (row.sha256 && sha256 !== row.sha256) {
    throw new CalibrationLoadError(
      `The calibration set in storage is not the one this build was created with (sha256 ${sha256.slice(0, 12)}…, expected ${row.sha256.slice(0, 12)}…). Upload it again and start a new build.`,
    );
  }
  let calibration: Record<string, Tensor>;
  try {
    calibration = parseNpz(bytes, maxInflatedBytes === undefined ? {} : { maxInflatedBytes });
  } catch (error) {
    if (error instanceof KilnEngineError) {
      throw new CalibrationLoadError(`The calibration set could not be read: ${error.message}. Upload a new .npz.`);
    }
    throw error;
  }
  const method = row.method ?? "entropy";
  const samples = Object.values(calibration)[0]?.shape[0] ?? 0;
  const options: Partial<BuildOptions> = {
    calibration,
    calibrationMethod: method,
    ...(method === "percentile" && row.percentile !== null ? { calibrationPercentile: row.percentile } : {}),
  };
  const how = method === "percentile" ? `percentile ${row.percentile ?? 99.99}` : method;
  return {
    options,
    summary: `Loaded the calibration set: ${samples} samples, ${bytes.length} bytes; ranges by ${how}`,
  };
}
