// The official JavaScript SDK (@azure/event-hubs) with @azure/eventhubs-checkpointstore-blob on
// Azurite, against the emulator (cli/tests/interop_js.rs runs it). Reads a JSON request on
// stdin: sends `perPartition` events to every partition, reads the hub's and partitions'
// properties, then runs the SDK's load-balancing consumer over the blob checkpoint store until
// every event was processed (checkpointing each batch). Writes a JSON answer.
const { EventHubProducerClient, EventHubConsumerClient, earliestEventPosition } = require("@azure/event-hubs");
const { BlobCheckpointStore } = require("@azure/eventhubs-checkpointstore-blob");
const { ContainerClient } = require("@azure/storage-blob");

async function main() {
  const request = JSON.parse(require("fs").readFileSync(0, "utf8"));
  const started = Date.now();
  const timings = {};
  const { connectionString, hub, storage, container, perPartition } = request;
  const producer = new EventHubProducerClient(connectionString, hub);
  const hubProps = await producer.getEventHubProperties();
  const sent = {};
  for (const id of hubProps.partitionIds) {
    const batch = await producer.createBatch({ partitionId: id });
    for (let i = 0; i < perPartition; i++) {
      batch.tryAdd({ body: `js-${id}-${i}`, properties: { n: i, kind: "interop" } });
    }
    await producer.sendBatch(batch);
    sent[id] = perPartition;
  }
  const partitions = {};
  for (const id of hubProps.partitionIds) {
    const p = await producer.getPartitionProperties(id);
    partitions[id] = { beginningSequenceNumber: p.beginningSequenceNumber, lastEnqueuedSequenceNumber: p.lastEnqueuedSequenceNumber, isEmpty: p.isEmpty };
  }
  await producer.close();
  timings.sentMs = Date.now() - started;

  const containerClient = new ContainerClient(storage, container);
  await containerClient.createIfNotExists();
  const store = new BlobCheckpointStore(containerClient);
  const consumer = new EventHubConsumerClient("$Default", connectionString, hub, store, {
    loadBalancingOptions: { updateIntervalInMs: 500, partitionOwnershipExpirationIntervalInMs: 10000 },
  });
  const seen = new Map();
  const total = hubProps.partitionIds.length * perPartition;
  const done = new Promise((resolve) => {
    const subscription = consumer.subscribe(
      {
        processEvents: async (events, context) => {
          for (const e of events) seen.set(`${context.partitionId}/${e.body}`, e.sequenceNumber);
          if (events.length) await context.updateCheckpoint(events[events.length - 1]);
          if (seen.size >= total) resolve(subscription);
        },
        processError: async (err) => { process.stderr.write(`processError: ${err}\n`); },
      },
      { startPosition: earliestEventPosition, maxBatchSize: 50, maxWaitTimeInSeconds: 1 }
    );
  });
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`only ${seen.size} of ${total} events in 60 s`)), 60000);
  });
  const subscription = await Promise.race([done, timeout]);
  clearTimeout(timer);
  timings.processedMs = Date.now() - started;
  await subscription.close();
  await consumer.close();
  timings.closedMs = Date.now() - started;
  process.stdout.write(JSON.stringify({ hub: { name: hubProps.name, partitionIds: hubProps.partitionIds }, partitions, processed: seen.size, sent, timings }));
}

main().catch((e) => { process.stderr.write(`${e.stack || e}\n`); process.exit(1); });
