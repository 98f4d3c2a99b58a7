export declare function lockPathOf(target: string): string;
export declare function withCacheLock<T>(
  target: string,
  options: { log: (line: string) => void; what: string },
  fn: () => Promise<T>,
): Promise<T>;
