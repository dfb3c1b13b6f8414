// The ORM facade: registry, BaseRepository (natural-key findById, normalisation), normalizeDoc.
import { describe, it, before, after, beforeEach } from 'node:test'
import assert from 'node:assert/strict'
import plug from '../index.js'
import { rejectsWith } from './helpers.mjs'

const User = {
  name: 'User',
  collection: 'users',
  timestamps: true,
  fields: { email: { type: 'string', required: true }, tenant: { type: 'string' }, handle: { type: 'string' }, age: { type: 'number' }, bio: { type: 'text' } },
  relations: { team: { target: 'Team', type: 'many-to-one' } },
  indexes: [{ fields: ['handle'], unique: true }, { fields: { tenant: 'asc', email: 'asc' }, unique: true }, { fields: { email: 'asc' }, unique: true }],
}
const Team = { name: 'Team', collection: 'teams', fields: { name: { type: 'string' } }, relations: {}, indexes: [] }

class UserRepository extends plug.BaseRepository {
  constructor(dialect) {
    super(User, dialect)
  }
}

describe('registry', () => {
  beforeEach(() => plug.clearRegistry())

  it('registers, looks up and lists schemas in insertion order', () => {
    plug.registerSchemas([User, Team])
    assert.equal(plug.getSchema('User'), User)
    assert.equal(plug.getSchemaByCollection('teams'), Team)
    assert.equal(plug.getSchemaByCollection('nope'), undefined)
    assert.deepEqual(plug.getAllSchemas(), [User, Team])
    assert.deepEqual(plug.getEntityNames(), ['User', 'Team'])
    assert.equal(plug.hasSchema('Team'), true)
    assert.deepEqual(plug.validateSchemas(), { valid: true, errors: [] })
    plug.clearRegistry()
    assert.deepEqual(plug.getAllSchemas(), [])
  })

  it('getSchema names the available entities; validateSchemas reports unknown targets', () => {
    plug.registerSchema(User)
    assert.throws(() => plug.getSchema('Ghost'), (e) => e.code === 'E_SCHEMA' && e.message === 'Entity "Ghost" is not registered. Available entities: User')
    assert.deepEqual(plug.validateSchemas(), { valid: false, errors: ['User.team references unknown entity "Team"'] })
    assert.throws(() => plug.registerSchema({ name: 'X' }), (e) => e.code === 'E_SCHEMA' && e.field === 'collection')
  })
})

describe('normalizeDoc', () => {
  it('moves id first, maps _id and drops __v, recursing into objects with _id', () => {
    assert.equal(plug.normalizeDoc(null), null)
    const sqlRow = { id: 'a', n: 1 }
    assert.equal(plug.normalizeDoc(sqlRow), sqlRow, 'rows already normal are returned as they are')
    assert.deepEqual(Object.keys(plug.normalizeDoc({ n: 1, id: 'a' })), ['id', 'n'])
    assert.deepEqual(plug.normalizeDoc({ _id: 5, __v: 0, n: 1, child: { _id: 'c', x: 1 }, list: [{ _id: 'l' }, 2], plain: { y: 1 } }), {
      id: '5',
      n: 1,
      child: { id: 'c', x: 1 },
      list: [{ id: 'l' }, 2],
      plain: { y: 1 },
    })
    assert.deepEqual(plug.normalizeDocs([{ _id: 1 }]), [{ id: '1' }])
  })
})

describe('BaseRepository', () => {
  let d
  let repo
  before(async () => {
    d = await plug.openIsolatedDialect({ dialect: 'sqlite', uri: ':memory:', schemaStrategy: 'create' }, [Team, User])
    repo = new UserRepository(d)
  })
  after(() => d.disconnect())

  it('wraps every dialect method for its schema', async () => {
    const team = await d.create(Team, { name: 'core' })
    const a = await repo.create({ email: 'a@x.io', tenant: 't1', handle: 'ann', age: 30, team: team.id })
    const b = await repo.create({ email: 'b@x.io', tenant: 't1', handle: 'bob', age: 40 })
    assert.equal((await repo.findAll()).length, 2)
    assert.equal((await repo.findAll({ age: { $gt: 35 } }))[0].id, b.id)
    assert.equal((await repo.findOne({ handle: 'ann' })).id, a.id)
    assert.equal((await repo.update(a.id, { age: 31 })).age, 31)
    assert.equal(await repo.update('missing', { age: 1 }), null)
    assert.equal(await repo.count(), 2)
    assert.deepEqual((await repo.distinct('tenant')).sort(), ['t1'])
    assert.deepEqual(await repo.aggregate([{ $group: { _by: 'tenant', n: { $count: true } } }]), [{ tenant: 't1', n: 2 }])
    assert.equal((await repo.increment(a.id, 'age', 2)).age, 33)
    assert.equal((await repo.upsert({ handle: 'bob' }, { age: 41 })).age, 41)
    assert.equal((await repo.findWithRelations({ id: a.id }, ['team']))[0].team.name, 'core')
    assert.equal((await repo.findByIdWithRelations(a.id, ['team'])).team.name, 'core')
    assert.equal((await repo.findByIdWithRelations(a.id, [])).team, team.id)
    assert.deepEqual((await repo.search('b@x')).map((u) => u.handle), ['bob'])
    assert.equal(await repo.updateMany({ tenant: 't1' }, { tenant: 't2' }), 2)
    assert.equal(await repo.delete(b.id), true)
    assert.equal(await repo.deleteMany({}), 1)
  })

  it('findById resolves ids, numbers, objects with id, and natural keys', async () => {
    const u = await repo.create({ email: 'c@x.io', tenant: 't9', handle: 'cid' })
    assert.equal(await repo.findById(null), null)
    assert.equal(await repo.findById(''), null)
    assert.equal((await repo.findById(u.id)).email, 'c@x.io')
    assert.equal((await repo.findById({ id: u.id, email: 'ignored' })).handle, 'cid')
    assert.equal((await repo.findById({ tenant: 't9', email: 'c@x.io' })).id, u.id, 'composite unique index')
    assert.equal((await repo.findById({ email: 'c@x.io' })).id, u.id)
    assert.equal(await repo.findById(12345), null)
    await rejectsWith(repo.findById({ handle: 'cid' }), 'E_INVALID_ARGUMENT', {
      name: 'OrmIntrospectionError',
      message: "Cannot resolve findById on 'User': object lacks 'id' and no unique index matches. Object fields: [handle]. Available unique indexes: [tenant+email, email].",
    })
    await rejectsWith(repo.findById(true), 'E_INVALID_ARGUMENT', { message: "Cannot resolve findById on 'User': unsupported input type 'boolean'." })
  })

  it('extractRelId reads ids from relation values', () => {
    assert.equal(plug.extractRelId(null), '')
    assert.equal(plug.extractRelId('x'), 'x')
    assert.equal(plug.extractRelId(7), '7')
    assert.equal(plug.extractRelId({ id: 3 }), '3')
    assert.equal(plug.extractRelId({}), '')
  })
})
