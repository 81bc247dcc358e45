// Bounds of endpoint import and export jobs. Each one is a named constant with a test
// (test/import-export-jobs.test.ts); the batch and concurrency settings may be lowered by tests
// and operators through JobSettings.

/** Failure messages a job keeps (Pinpoint keeps the first 100); TotalFailures counts them all. */
export const MAX_FAILURE_SAMPLES = 100;
/** Characters of one failure message kept (a line's content is quoted only this far). */
export const MAX_FAILURE_CHARS = 500;
/** A line longer than this fails on its own, without being held in memory (an endpoint is at most 15 KB). */
export const MAX_IMPORT_LINE_BYTES = 64 * 1024;
/** Objects one import job reads; an S3Url with more is FAILED at INITIALIZING, naming the count. */
export const MAX_IMPORT_PIECES = 10_000;
/** Uncompressed bytes of one exported object before it is closed and the next piece begins. */
export const EXPORT_PIECE_MAX_BYTES = 8 * 1024 * 1024;
/** Endpoints read from SQLite per step of an export. */
export const EXPORT_READ_CHUNK = 500;

export interface JobSettings {
  /** Lines applied per SQLite transaction (and per event-loop turn): the unit of progress a restart keeps. */
  importBatchLines: number;
  /** Jobs running at once; others wait CREATED. */
  maxConcurrentJobs: number;
}

export const DEFAULT_JOB_SETTINGS: JobSettings = { importBatchLines: 1000, maxConcurrentJobs: 2 };
