// Public types of @mostajs/data-plug. Hand-written: the native binding's generated
// declarations (native.d.ts) are internal.

// ---------------------------------------------------------------- schemas

export type FieldType = 'string' | 'text' | 'number' | 'boolean' | 'date' | 'json' | 'array'

export interface FieldDef {
  type: FieldType
  /** `NOT NULL` in the DDL. */
  required?: boolean
  /** `UNIQUE` (a partial unique index when the schema has `softDelete` on SQLite/PostgreSQL). */
  unique?: boolean
  sparse?: boolean
  /** Written when the field is absent on create; `'now'` / `'__MOSTA_NOW__'` mean the current time. */
  default?: unknown
  /** Accepted for compatibility; not enforced on SQL backends. */
  enum?: readonly unknown[]
  lowercase?: boolean
  trim?: boolean
  arrayOf?: FieldType | EmbeddedSchemaDef
}

export interface EmbeddedSchemaDef {
  [field: string]: FieldDef
}

export type RelationType = 'many-to-one' | 'one-to-one' | 'one-to-many' | 'many-to-many'
export type CascadeType = 'persist' | 'merge' | 'remove' | 'all'
export type FetchType = 'lazy' | 'eager'
export type OnDeleteAction = 'cascade' | 'set-null' | 'restrict' | 'no-action'

export interface RelationDef {
  /** The `name` of the target EntitySchema. */
  target: string
  type: RelationType
  required?: boolean
  /** Fields of the target to load when populating. */
  select?: readonly string[]
  nullable?: boolean
  /** Junction table of a many-to-many relation. */
  through?: string
  /** Accepted for compatibility; no ORM-side cascade exists on SQL (the database's ON DELETE acts). */
  cascade?: readonly CascadeType[]
  orphanRemoval?: boolean
  fetch?: FetchType
  /** One-to-many: the child's column pointing at the parent. */
  mappedBy?: string
  /** Many-to-one / one-to-one: the FK column name (default: the relation name). */
  joinColumn?: string
  inverseJoinColumn?: string
  onDelete?: OnDeleteAction
}

export type IndexType = 'asc' | 'desc' | 'text'

export interface IndexDef {
  fields: Record<string, IndexType> | readonly string[]
  unique?: boolean
  sparse?: boolean
}

export interface EntitySchema {
  name: string
  collection: string
  fields: Record<string, FieldDef>
  relations?: Record<string, RelationDef>
  indexes?: readonly IndexDef[]
  /** Adds `createdAt` / `updatedAt`, maintained by the ORM. */
  timestamps?: boolean
  /** Column holding `discriminatorValue` for entities sharing one table. */
  discriminator?: string
  discriminatorValue?: string
  /** `delete` sets `deletedAt`; reads skip deleted rows unless `includeDeleted`. */
  softDelete?: boolean
}

// ---------------------------------------------------------------- queries

export type FilterOperator = '$eq' | '$ne' | '$gt' | '$gte' | '$lt' | '$lte' | '$in' | '$nin' | '$regex' | '$regexFlags' | '$exists'

export type FilterScalar = string | number | boolean | Date | null

export interface FilterOperators {
  $eq?: FilterScalar
  $ne?: FilterScalar
  $gt?: FilterScalar
  $gte?: FilterScalar
  $lt?: FilterScalar
  $lte?: FilterScalar
  $in?: readonly FilterScalar[]
  $nin?: readonly FilterScalar[]
  /** A pattern translated to LIKE (`^`, `$`, `.`, `.*`), or a RegExp. */
  $regex?: string | RegExp
  /** `'i'` gives a case-insensitive match (ILIKE on PostgreSQL). */
  $regexFlags?: string
  $exists?: boolean
}

export type FilterValue = FilterScalar | RegExp | readonly FilterScalar[] | FilterOperators

export type FilterQuery = {
  $or?: readonly FilterQuery[]
  $and?: readonly FilterQuery[]
} & { [field: string]: FilterValue | readonly FilterQuery[] | undefined }

/** `1`/`'asc'` ascending, `-1`/`'desc'` descending. */
export type SortDirection = 1 | -1 | 'asc' | 'desc'

export interface QueryOptions {
  sort?: Record<string, SortDirection>
  /** 0 or absent: no limit. */
  limit?: number
  skip?: number
  /** Columns to read (`id` is always included). */
  select?: readonly string[]
  /** Columns to leave out (ignored when `select` is given). */
  exclude?: readonly string[]
  /** Include soft-deleted rows. */
  includeDeleted?: boolean
}

export interface PaginatedResult<T> {
  data: T[]
  total: number
  page: number
  limit: number
  totalPages: number
}

export type AggregateAccumulator =
  | { $sum: number | string }
  | { $count: true }
  | { $avg: string }
  | { $min: string }
  | { $max: string }

export interface AggregateGroupStage {
  $group: { _by: string | null } & { [output: string]: AggregateAccumulator | string | null }
}
export interface AggregateMatchStage {
  $match: FilterQuery
}
export interface AggregateSortStage {
  $sort: Record<string, SortDirection>
}
export interface AggregateLimitStage {
  $limit: number
}
export type AggregateStage = AggregateMatchStage | AggregateGroupStage | AggregateSortStage | AggregateLimitStage

// ---------------------------------------------------------------- dialects

export type DialectType = 'sqlite' | 'postgres' | 'mysql' | 'mariadb' | 'cockroachdb'
export type SchemaStrategy = 'none' | 'validate' | 'update' | 'create' | 'create-drop'
export type DataMode = 'orm' | 'net'
export type IsolationLevel = 'READ UNCOMMITTED' | 'READ COMMITTED' | 'REPEATABLE READ' | 'SERIALIZABLE'

export interface ConnectionConfig {
  dialect: DialectType
  /** SQLite: a file path or `:memory:`; PostgreSQL/MySQL: a connection URL. */
  uri: string
  schemaStrategy?: SchemaStrategy
  tablePrefix?: string
  poolSize?: number
  /** How long a call waits for a pooled connection before `E_POOL_TIMEOUT` (ms). */
  poolTimeoutMs?: number
  showSql?: boolean
}

export interface TxHandle {
  id: string
  startedAt: number
  depth: number
  savepointName?: string
}

export interface TransactionOptions {
  isolation?: IsolationLevel
}

/** A row as the dialect returns it: `id` first, then the table's columns. */
export type Row = { id: string } & Record<string, unknown>

export interface IDialect {
  readonly dialectType: DialectType | 'net-proxy'
  connect(): Promise<void>
  disconnect(): Promise<void>
  testConnection(): Promise<boolean>
  initSchema(schemas: readonly EntitySchema[]): Promise<void>

  find<T = Row>(schema: EntitySchema, filter?: FilterQuery, options?: QueryOptions): Promise<T[]>
  findOne<T = Row>(schema: EntitySchema, filter?: FilterQuery, options?: QueryOptions): Promise<T | null>
  findById<T = Row>(schema: EntitySchema, id: string | number | null | undefined, options?: QueryOptions): Promise<T | null>
  findWithRelations<T = Row>(schema: EntitySchema, filter: FilterQuery, relations: readonly string[], options?: QueryOptions): Promise<T[]>
  findByIdWithRelations<T = Row>(schema: EntitySchema, id: string | number, relations: readonly string[], options?: QueryOptions): Promise<T | null>
  create<T = Row>(schema: EntitySchema, data: Record<string, unknown>): Promise<T>
  update<T = Row>(schema: EntitySchema, id: string | number, data: Record<string, unknown>): Promise<T | null>
  updateMany(schema: EntitySchema, filter: FilterQuery, data: Record<string, unknown>): Promise<number>
  delete(schema: EntitySchema, id: string | number): Promise<boolean>
  deleteMany(schema: EntitySchema, filter: FilterQuery): Promise<number>
  count(schema: EntitySchema, filter?: FilterQuery, options?: QueryOptions): Promise<number>
  distinct(schema: EntitySchema, field: string, filter?: FilterQuery, options?: QueryOptions): Promise<unknown[]>
  /** Rows are returned raw; COUNT and SUM are numbers on every backend. */
  aggregate<T = Record<string, unknown>>(schema: EntitySchema, stages: readonly AggregateStage[], options?: QueryOptions): Promise<T[]>
  upsert<T = Row>(schema: EntitySchema, filter: FilterQuery, data: Record<string, unknown>): Promise<T>
  increment<T = Row>(schema: EntitySchema, id: string | number, field: string, amount: number): Promise<T>
  addToSet<T = Row>(schema: EntitySchema, id: string | number, field: string, value: unknown): Promise<T | null>
  pull<T = Row>(schema: EntitySchema, id: string | number, field: string, value: unknown): Promise<T | null>
  /** LIKE `%query%` on `fields` (default: every field of type `string`). */
  search<T = Row>(schema: EntitySchema, query: string, fields?: readonly string[], options?: QueryOptions): Promise<T[]>

  $transaction<R>(callback: (tx: IDialect) => Promise<R> | R, options?: TransactionOptions): Promise<R>
  beginTx(options?: TransactionOptions): Promise<TxHandle>
  commitTx(tx: TxHandle): Promise<void>
  rollbackTx(tx: TxHandle): Promise<void>

  executeQuery<T = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<T[]>
  executeRun(sql: string, params?: readonly unknown[]): Promise<{ changes: number }>
  dropTable(name: string): Promise<void>
  dropAllTables(): Promise<void>
  dropSchema(schemas: readonly EntitySchema[]): Promise<string[]>
  truncateTable(name: string): Promise<void>
  truncateAll(schemas: readonly EntitySchema[]): Promise<string[]>
}

/** The name data-plug's documentation also uses for the dialect interface. */
export type IDataDialect = IDialect

export interface IRepository<T extends { id: string }> {
  findAll(filter?: FilterQuery, options?: QueryOptions): Promise<T[]>
  findOne(filter: FilterQuery, options?: QueryOptions): Promise<T | null>
  findById(idOrEntity: string | number | Partial<T> | null | undefined, options?: QueryOptions): Promise<T | null>
  findByIdWithRelations(id: string, relations?: readonly string[], options?: QueryOptions): Promise<T | null>
  findWithRelations(filter: FilterQuery, relations: readonly string[], options?: QueryOptions): Promise<T[]>
  create(data: Partial<T>): Promise<T>
  update(id: string, data: Partial<T>): Promise<T | null>
  updateMany(filter: FilterQuery, data: Partial<T>): Promise<number>
  delete(id: string): Promise<boolean>
  deleteMany(filter: FilterQuery): Promise<number>
  count(filter?: FilterQuery, options?: QueryOptions): Promise<number>
  distinct(field: string, filter?: FilterQuery, options?: QueryOptions): Promise<unknown[]>
  aggregate<R = Record<string, unknown>>(stages: readonly AggregateStage[], options?: QueryOptions): Promise<R[]>
  upsert(filter: FilterQuery, data: Partial<T>): Promise<T>
  increment(id: string, field: string, amount: number): Promise<T>
  addToSet(id: string, field: string, value: unknown): Promise<T | null>
  pull(id: string, field: string, value: unknown): Promise<T | null>
  search(query: string, options?: QueryOptions): Promise<T[]>
}

/** Every IRepository method, for one schema; read results go through `normalizeDoc`. */
export interface BaseRepository<T extends { id: string } = Row> extends IRepository<T> {}
export declare class BaseRepository<T extends { id: string } = Row> {
  constructor(schema: EntitySchema, dialect: IDialect)
  readonly schema: EntitySchema
  readonly dialect: IDialect
}

// ---------------------------------------------------------------- errors

/** Stable error codes; see the README's error table. */
export type ErrorCode =
  | 'E_CONFIG'
  | 'E_INVALID_FILTER'
  | 'E_INVALID_ARGUMENT'
  | 'E_SCHEMA'
  | 'E_UNIQUE'
  | 'E_NOT_NULL'
  | 'E_FOREIGN_KEY'
  | 'E_CONSTRAINT'
  | 'E_UNKNOWN_COLUMN'
  | 'E_CONNECTION'
  | 'E_POOL_TIMEOUT'
  | 'E_TRANSACTION'
  | 'E_DATABASE'
  | 'E_NET_HTTP'
  | 'E_NET_TIMEOUT'
  | 'E_AUTH_REQUIRED'
  | 'E_FORBIDDEN'
  | 'E_DEVICE_FLOW'
  | 'E_CLOSED'
  | 'E_UNSUPPORTED'
  | 'E_INTERNAL'

export declare class MostaError extends Error {
  readonly name: 'MostaError'
  readonly code: ErrorCode
  /** The database's or remote server's own error code (SQLSTATE, MySQL errno, SQLite code, NET error code). */
  readonly dbCode?: string
  /** HTTP status (NET mode). */
  readonly status?: number
  /** The entity the failing call was about. */
  readonly entity?: string
  /** The field, column or variable at fault. */
  readonly field?: string
}

export declare class OrmIntrospectionError extends Error {
  readonly name: 'OrmIntrospectionError'
  readonly code: 'E_INVALID_ARGUMENT'
  readonly schemaName: string
  readonly input: unknown
  readonly availableFields: string[]
}

// ---------------------------------------------------------------- data-plug

/** The business dialect: ORM or NET by `MOSTA_DATA`; opened once, re-opened after `disconnect()`. */
export declare function getDialect(): Promise<IDialect>
export declare function getDataMode(): DataMode
export declare function isNetMode(): boolean
export declare function isOrmMode(): boolean
/** Injects any object as the business dialect (test doubles). */
export declare function setDialect(dialect: unknown): void
export declare function resetDialect(): void
/** Closes the business connection; the next `getDialect()` re-reads the environment. */
export declare function disconnect(): Promise<void>

export declare function getSystemDialect(): Promise<IDialect>
export declare function bootstrapSystemDialect(): Promise<IDialect>
export declare function setSystemDialect(dialect: unknown): void
/** Forgets the system dialect without closing it. */
export declare function resetSystemDialect(): void

export declare function openIsolatedDialect(config: ConnectionConfig, schemas?: readonly EntitySchema[]): Promise<IDialect>

export interface DeviceCodeInfo {
  userCode: string
  verificationUri: string
  verificationUriComplete?: string
  /** Seconds until the code expires. */
  expiresIn: number
  /** Seconds between polls. */
  interval: number
}

export interface EnsureApiKeyOptions {
  /** Path of the token cache file (default `~/.config/<host>/auth.json`). */
  store?: string
  clientId?: string
  scope?: string
  /** Names the cache folder (default `MOSTA_HOST`, else `octonet`). */
  host?: string
  /** Called with the code to show; without it a terminal renderer prints it. */
  onCodeIssued?: (info: DeviceCodeInfo) => void
  /** Ignore the env key, `MOSTA_NO_AUTOREGISTER` and the cache; run a fresh device flow. */
  forceRefresh?: boolean
}

export declare function ensureApiKey(options?: EnsureApiKeyOptions): Promise<string>
export declare function clearCachedApiKey(options?: { host?: string; store?: string }): Promise<void>

// ---------------------------------------------------------------- ORM facade

export declare function registerSchema(schema: EntitySchema): void
export declare function registerSchemas(schemas: readonly EntitySchema[]): void
export declare function getSchema(name: string): EntitySchema
export declare function getSchemaByCollection(collection: string): EntitySchema | undefined
export declare function getAllSchemas(): EntitySchema[]
export declare function getEntityNames(): string[]
export declare function hasSchema(name: string): boolean
export declare function validateSchemas(): { valid: boolean; errors: string[] }
export declare function clearRegistry(): void

export type NormalizedDoc<T> = Omit<T, '_id' | '__v'> & { id: string }
export declare function normalizeDoc<T extends object>(doc: T): NormalizedDoc<T>
export declare function normalizeDoc<T extends object>(doc: T | null | undefined): NormalizedDoc<T> | null | undefined
export declare function normalizeDocs<T extends object>(docs: readonly T[]): NormalizedDoc<T>[]

export type ResolvedLookup = { kind: 'none' } | { kind: 'id'; id: string } | { kind: 'filter'; filter: Record<string, unknown> }
export interface UniqueIndexMatch {
  fields: string[]
  filter: Record<string, unknown>
}
export declare function resolveLookup(schema: EntitySchema, input: unknown): ResolvedLookup
export declare function findMatchingUniqueIndex(schema: EntitySchema, obj: Record<string, unknown>): UniqueIndexMatch | null
export declare function extractRelId(value: unknown): string
