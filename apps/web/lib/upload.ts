"use client";

export type UploadProgress = { loaded: number; total: number };

export type UploadResult = { modelId: string; modelVersionId: string; version: number };

export class UploadError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
    this.name = "UploadError";
  }
}

/**
 * Sends a file to a streaming upload route with XMLHttpRequest, the one browser API that reports
 * upload progress. The body is the file itself (no multipart), so the server can hash and store it
 * as it arrives; the name travels in the query string.
 */
export function uploadFile(
  url: string,
  file: File,
  params: Record<string, string>,
  onProgress: (progress: UploadProgress) => void,
  signal?: AbortSignal,
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `${url}?${new URLSearchParams({ filename: file.name, ...params })}`);
    xhr.setRequestHeader("content-type", "application/octet-stream");
    xhr.responseType = "json";
    xhr.upload.onprogress = (event) =>
      onProgress({ loaded: event.loaded, total: event.lengthComputable ? event.total : file.size });
    xhr.onload = () => {
      const body = xhr.response as { error?: { message?: string } } | null;
      if (xhr.status >= 200 && xhr.status < 300) resolve(body);
      else reject(new UploadError(body?.error?.message ?? `The upload failed (HTTP ${xhr.status}).`, xhr.status));
    };
    xhr.onerror = () => reject(new UploadError("The connection broke during the upload. Try again.", 0));
    xhr.onabort = () => reject(new UploadError("Upload canceled.", 0));
    signal?.addEventListener("abort", () => xhr.abort());
    xhr.send(file);
  });
}
