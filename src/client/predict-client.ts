// STUB: the online prediction client (issue 5) replaces this file.
import { Client, Connection } from '@temporalio/client';

export interface PredictClientOptions {
  address: string;
  namespace: string;
  /** INTERACTIVE_TASK_QUEUE: where prediction workflows and activities run. */
  taskQueue: string;
}

export class PredictClient {
  private constructor(
    private readonly connection: Connection,
    readonly client: Client,
    readonly taskQueue: string,
  ) {}

  static create(options: PredictClientOptions): PredictClient {
    const connection = Connection.lazy({ address: options.address, connectTimeout: '5s' });
    return new PredictClient(connection, new Client({ connection, namespace: options.namespace }), options.taskQueue);
  }

  async close(): Promise<void> {
    await this.connection.close();
  }
}
