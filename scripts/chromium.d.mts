export declare const CHROMIUM_SCRIPT: string;
export declare function findChromium(env?: NodeJS.ProcessEnv): string | undefined;
export declare function resolveChromium(options?: {
  env?: NodeJS.ProcessEnv;
  log?: (line: string) => void;
  install?: boolean;
}): Promise<string>;
