export declare const TEMPORAL_CLI_VERSION: string;
export declare function cacheRoot(env?: NodeJS.ProcessEnv): string;
export declare function cachedBinaryPath(env?: NodeJS.ProcessEnv): string;
export declare function parseCliVersion(text: string): [number, number, number] | undefined;
export declare function versionFits(found: number[] | undefined, pinned?: string): boolean;
export declare function resolveTemporalCli(options?: {
  env?: NodeJS.ProcessEnv;
  log?: (line: string) => void;
  allowBuild?: boolean;
  allowDownload?: boolean;
}): Promise<string>;
export declare function goInstall(
  pkg: string,
  target: string,
  options: { env: NodeJS.ProcessEnv; log: (line: string) => void; ldflags?: string; what: string },
): Promise<{ ok: true } | { ok: false; reason: string }>;
export declare function isExecutable(file: string): boolean;
