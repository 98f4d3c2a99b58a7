export declare const REQUIREMENTS_FILE: string;
export declare function venvDirectory(pins: string, version: string, env?: NodeJS.ProcessEnv): string;
export declare function pythonTools(options?: {
  env?: NodeJS.ProcessEnv;
  log?: (line: string) => void;
}): Promise<{ python: string; bin: string; dir: string }>;
