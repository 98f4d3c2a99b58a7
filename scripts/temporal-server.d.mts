export declare const TEMPORAL_SERVER_VERSION: string;
export declare const TEMPORAL_UI_VERSION: string;
export interface TemporalServerBinaries {
  server: string;
  sqlTool: string;
  /** schema/postgresql/v12 of the server module: `temporal/versioned` and `visibility/versioned`. */
  schemaDir: string;
  /** Absent when the UI could not be built. */
  uiServer?: string;
}
export declare function temporalServerPaths(env?: NodeJS.ProcessEnv): Required<TemporalServerBinaries>;
export declare function resolveTemporalServer(options?: {
  env?: NodeJS.ProcessEnv;
  log?: (line: string) => void;
}): Promise<TemporalServerBinaries>;
