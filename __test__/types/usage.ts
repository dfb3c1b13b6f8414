// Compiled with `tsc --noEmit` by types.test.mjs: the public types cover how apps use the API.
import {
  getDialect,
  getSystemDialect,
  bootstrapSystemDialect,
  openIsolatedDialect,
  BaseRepository,
  registerSchemas,
  ensureApiKey,
  normalizeDoc,
  MostaError,
  type EntitySchema,
  type IDialect,
  type IRepository,
  type FilterQuery,
  type QueryOptions,
  type DataMode,
  type TxHandle,
  type EnsureApiKeyOptions,
  type AggregateStage,
} from '../../index'

interface User {
  id: string
  email: string
  age?: number
  createdAt?: Date | string
}

const UserSchema: EntitySchema = {
  name: 'User',
  collection: 'users',
  timestamps: true,
  fields: { email: { type: 'string', required: true, unique: true }, age: { type: 'number' } },
  relations: { team: { target: 'Team', type: 'many-to-one', onDelete: 'set-null' } },
  indexes: [{ fields: { email: 'asc' }, unique: true }, { fields: ['age'] }],
}

class UserRepository extends BaseRepository<User> {
  constructor(d: IDialect) {
    super(UserSchema, d)
  }
}

async function main(): Promise<void> {
  registerSchemas([UserSchema])
  const d: IDialect = await getDialect()
  const repo: IRepository<User> = new UserRepository(d)
  const filter: FilterQuery = { age: { $gte: 18, $in: [18, 21] }, email: /@x\.io$/i, $or: [{ age: null }, { age: { $exists: false } }] }
  const options: QueryOptions = { sort: { age: 'desc', email: 1 }, limit: 10, skip: 5, select: ['email'], includeDeleted: true }
  const users: User[] = await repo.findAll(filter, options)
  const one: User | null = await repo.findById({ email: 'a@x.io' })
  const n: number = await d.count(UserSchema, filter)
  const stages: AggregateStage[] = [{ $match: { age: { $gt: 1 } } }, { $group: { _by: 'age', n: { $count: true } } }, { $sort: { n: -1 } }, { $limit: 3 }]
  const groups = await d.aggregate<{ age: number; n: number }>(UserSchema, stages)
  const total: number = await d.$transaction(async (tx) => (await tx.create<User>(UserSchema, { email: 'x' })).email.length, { isolation: 'SERIALIZABLE' })
  const h: TxHandle = await d.beginTx()
  await d.commitTx(h)
  const sys: IDialect = await (await bootstrapSystemDialect(), getSystemDialect())
  const iso = await openIsolatedDialect({ dialect: 'sqlite', uri: ':memory:', schemaStrategy: 'create' }, [UserSchema])
  const opts: EnsureApiKeyOptions = { host: 'octonet', forceRefresh: false, onCodeIssued: (i) => console.log(i.userCode, i.verificationUri, i.expiresIn) }
  const key: string = await ensureApiKey(opts)
  const mode: DataMode = 'orm'
  const doc = normalizeDoc({ _id: 1, a: 2 })
  try {
    await d.create(UserSchema, {})
  } catch (e) {
    if (e instanceof MostaError && e.code === 'E_NOT_NULL') console.log(e.field, e.dbCode)
  }
  console.log(users, one, n, groups, total, sys.dialectType, iso, key, mode, doc.id)
}

void main
