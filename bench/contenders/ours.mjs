// Our package, used through its public API exactly as an application uses it.

import { createRequire } from 'node:module'
import { Items, Writes, FIND50, FIND10K, COUNT, AGGREGATE } from '../workloads.mjs'

const require = createRequire(import.meta.url)

/** `schemaStrategy`: `create` to lay out empty tables, `update` to use the seeded ones. */
export async function openOurs(options, schemaStrategy = 'update') {
  const plug = require('../../index.js')
  const d = await plug.openIsolatedDialect({ ...options, schemaStrategy }, [Items, Writes])
  return {
    name: 'data-plug',
    findById: (id) => d.findById(Items, id),
    find50: () => d.find(Items, FIND50.filter, FIND50.options),
    find10k: () => d.find(Items, FIND10K.filter),
    create: (data) => d.create(Writes, data),
    createInTransaction: (list) =>
      d.$transaction(async (tx) => {
        for (const data of list) await tx.create(Writes, data)
      }),
    update: (id, patch) => d.update(Items, id, patch),
    count: () => d.count(Items, COUNT.filter),
    aggregate: () => d.aggregate(Items, AGGREGATE),
    resetWrites: async () => {
      await d.truncateTable(Writes.collection)
      // Each timed write run starts from an empty write-ahead log, as the raw side's does
      // (see contenders/sqlite.mjs).
      if (options.dialect === 'sqlite') await d.executeQuery('PRAGMA wal_checkpoint(TRUNCATE)')
      // PostgreSQL: the same, so that no checkpoint of earlier writes lands inside a run.
      if (options.dialect === 'postgres') await d.executeRun('CHECKPOINT')
    },
    close: () => d.disconnect(),
  }
}
