// NET mode end to end: our REST client and device flow against the protocol-compatible
// server of tools/net-server.mjs on loopback (backed by our own SQLite dialect).
import { describe, it, before, after, beforeEach, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, readFileSync, writeFileSync, statSync, readdirSync, mkdirSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import plug from '../index.js'
import { startNetServer } from '../tools/net-server.mjs'
import { rejectsWith, withEnv, resetPackage } from './helpers.mjs'

const Team = { name: 'Team', collection: 'teams', fields: { name: { type: 'string', required: true } }, relations: { members: { target: 'Member', type: 'one-to-many', mappedBy: 'team' } } }
const Member = {
  name: 'Member',
  collection: 'members',
  timestamps: true,
  fields: { name: { type: 'string', required: true }, score: { type: 'number' }, active: { type: 'boolean' }, tags: { type: 'array' } },
  relations: { team: { target: 'Team', type: 'many-to-one' } },
}
const SCHEMAS = [Team, Member]

/** Fast device flow and retries for tests (documented env knobs). */
const FAST = { MOSTA_AUTH_POLL_SCALE: '0.01', MOSTA_NET_RETRY_BASE_MS: '5' }

let home
beforeEach(() => {
  resetPackage()
  home = mkdtempSync(join(tmpdir(), 'mosta-net-home-'))
  process.env.XDG_CONFIG_HOME = home
  Object.assign(process.env, FAST)
})
afterEach(async () => {
  await plug.disconnect().catch(() => {})
  rmSync(home, { recursive: true, force: true })
})

/** Approves the next device code the server hands out. */
async function approveNext(server, deny = false) {
  const code = await server.nextUserCode()
  assert.equal(server.approve(code, deny), true)
  return code
}

/** `getDialect()` in NET mode against `server`, approving the device flow it starts. */
async function netDialectApproved(server) {
  process.env.MOSTA_DATA = 'net'
  process.env.MOSTA_NET_URL = server.url
  const approving = approveNext(server)
  const d = await plug.getDialect()
  await approving
  return d
}

const authorizeCalls = (server) => server.requests.filter((r) => r.path === '/api/v1/auth/device/authorize').length

describe('NET dialect over REST with the device flow', () => {
  let server
  before(async () => {
    server = await startNetServer({ schemas: SCHEMAS, apiKeys: [], deviceInterval: 1, pollTolerance: 0 })
  })
  after(() => server.close())

  it('getDialect runs the device flow, caches the key, then every call round-trips', async () => {
    const d = await netDialectApproved(server)
    assert.equal(d.dialectType, 'net-proxy')
    const cache = JSON.parse(readFileSync(join(home, 'octonet', 'auth.json'), 'utf8'))
    const entry = cache[server.url]
    assert.ok(entry && entry.access_token.startsWith('sk_test_'), 'the token is cached under the server URL')

    const team = await d.create(Team, { name: 'red' })
    const a = await d.create(Member, { name: 'ann', score: 3, active: true, tags: ['x'], team: team.id })
    const b = await d.create(Member, { name: 'bob', score: 0, active: false, team: team.id })
    assert.equal(a.active, true)
    assert.deepEqual(a.tags, ['x'])
    assert.equal(typeof a.createdAt, 'string', 'dates are ISO strings over JSON')
    assert.deepEqual(await d.findById(Member, a.id), a)
    assert.equal(await d.findById(Member, 'missing'), null)
    assert.deepEqual((await d.find(Member, { score: { $gte: 0 } }, { sort: { score: -1 }, limit: 1 })).map((m) => m.name), ['ann'])
    assert.equal((await d.findOne(Member, {}, { sort: { score: 1 } })).name, 'bob', 'findOne passes its options')
    assert.equal(await d.count(Member, { active: true }), 1)
    assert.deepEqual((await d.distinct(Member, 'score')).sort(), [0, 3], 'falsy values are kept')
    assert.deepEqual((await d.distinct(Member, 'active')).sort(), [false, true])
    assert.equal((await d.update(Member, b.id, { score: 5 })).score, 5)
    assert.equal(await d.update(Member, 'missing', { score: 5 }), null)
    assert.equal(await d.updateMany(Member, { team: team.id }, { active: true }), 2)
    assert.equal((await d.increment(Member, a.id, 'score', 2)).score, 5)
    assert.deepEqual((await d.addToSet(Member, a.id, 'tags', 'y')).tags, ['x', 'y'])
    assert.deepEqual((await d.pull(Member, a.id, 'tags', 'x')).tags, ['y'])
    assert.equal((await d.upsert(Member, { name: 'cid' }, { name: 'cid', score: 1 })).score, 1)
    const withTeam = await d.findWithRelations(Member, { name: 'ann' }, ['team'])
    assert.equal(withTeam[0].team.name, 'red')
    assert.equal((await d.findByIdWithRelations(Team, team.id, ['members'])).members.length, 2)
    const agg = await d.aggregate(Member, [{ $group: { _by: null, n: { $count: true }, total: { $sum: '$score' } } }])
    assert.deepEqual(agg, [{ _group: null, n: 3, total: 11 }])
    assert.deepEqual((await d.search(Member, 'bo')).map((m) => m.name), ['bob'])

    // delete reports the server's boolean and sends no Content-Type without a body.
    assert.equal(await d.delete(Member, b.id), true)
    assert.equal(await d.delete(Member, b.id), false)
    const del = server.requests.filter((r) => r.method === 'DELETE' && r.path.endsWith(`/members/${b.id}`))
    assert.equal(del.length, 2)
    assert.equal(del[0].headers['content-type'], undefined)
    assert.equal(del[0].headers['x-api-key'], entry.access_token)
    assert.equal(await d.deleteMany(Member, { name: 'cid' }), 1)
    assert.equal(await d.testConnection(), true)
  })

  it('ids and collection names are URL-encoded; unknown collections are errors, not null', async () => {
    server.addKey('k-encode')
    await plug.disconnect()
    await withEnv({ MOSTA_DATA: 'net', MOSTA_NET_URL: server.url, MOSTA_NET_API_KEY: 'k-encode' }, async () => {
      const dd = await plug.getDialect()
      const m = await dd.create(Member, { id: 'a/b c?', name: 'odd' })
      assert.equal((await dd.findById(Member, 'a/b c?')).name, 'odd')
      assert.ok(server.requests.some((r) => r.path === '/api/v1/members/a%2Fb%20c%3F'))
      assert.equal(m.id, 'a/b c?')
      await rejectsWith(dd.findById({ name: 'Ghost', collection: 'ghosts', fields: {} }, 'x'), 'E_NET_HTTP', { status: 404, dbCode: 'UNKNOWN_ENTITY' })
      await rejectsWith(dd.$transaction(async () => {}), 'E_UNSUPPORTED')
    })
  })

  it('a revoked key triggers exactly one re-authorisation, then the call is replayed', async () => {
    const d = await netDialectApproved(server)
    const before = authorizeCalls(server)
    const { access_token: oldKey } = JSON.parse(readFileSync(join(home, 'octonet', 'auth.json'), 'utf8'))[server.url]
    server.revokeKey(oldKey)
    const second = approveNext(server)
    const n = await d.count(Team, {})
    await second
    assert.equal(typeof n, 'number')
    assert.equal(authorizeCalls(server), before + 1)
    const { access_token: newKey } = JSON.parse(readFileSync(join(home, 'octonet', 'auth.json'), 'utf8'))[server.url]
    assert.notEqual(newKey, oldKey, 'the cache holds the new key')
  })

  it('a key from the environment is not re-authorised after a 401', async () => {
    await withEnv({ MOSTA_DATA: 'net', MOSTA_NET_URL: server.url, MOSTA_NET_API_KEY: 'revoked-key' }, async () => {
      const d = await plug.getDialect()
      const before = authorizeCalls(server)
      await rejectsWith(d.count(Team, {}), 'E_AUTH_REQUIRED', { status: 401 })
      assert.equal(authorizeCalls(server), before)
    })
  })

  it('a read-only key gets E_FORBIDDEN on writes', async () => {
    server.addKey('reader', 'read')
    await withEnv({ MOSTA_DATA: 'net', MOSTA_NET_URL: server.url, MOSTA_NET_API_KEY: 'reader' }, async () => {
      const d = await plug.getDialect()
      assert.equal(typeof (await d.count(Team, {})), 'number')
      await rejectsWith(d.create(Team, { name: 'x' }), 'E_FORBIDDEN', { status: 403, dbCode: 'FORBIDDEN' })
    })
  })
})

describe('device flow outcomes', () => {
  let server
  before(async () => {
    server = await startNetServer({ schemas: SCHEMAS, apiKeys: [], deviceInterval: 1, pollTolerance: 0 })
  })
  after(() => server.close())
  const env = () => ({ MOSTA_NET_URL: server.url })

  it('slow_down adds 5 s to every later poll interval', async () => {
    await withEnv(env(), async () => {
      server.tokenErrors('authorization_pending', 'slow_down')
      const seen = []
      const key = plug.ensureApiKey({ onCodeIssued: (i) => seen.push(i) })
      await approveNext(server)
      assert.match(await key, /^sk_test_/)
      assert.equal(seen.length, 1)
      assert.equal(seen[0].interval, 1)
      assert.ok(seen[0].verificationUriComplete.includes(seen[0].userCode))
      const polls = server.requests.filter((r) => r.path === '/api/v1/auth/device/token').slice(-3)
      // interval 1 s → 6 s after slow_down, scaled by MOSTA_AUTH_POLL_SCALE=0.01: ≥ 60 ms.
      assert.ok(polls[2].at - polls[1].at >= 55, `gap after slow_down: ${polls[2].at - polls[1].at} ms`)
    })
  })

  it('access_denied and expired_token end the flow with E_DEVICE_FLOW', async () => {
    await withEnv(env(), async () => {
      const denied = plug.ensureApiKey({ onCodeIssued: () => {} })
      await approveNext(server, true)
      await rejectsWith(denied, 'E_DEVICE_FLOW', { message: /denied/i })
      server.tokenErrors('expired_token')
      await rejectsWith(plug.ensureApiKey({ onCodeIssued: () => {} }), 'E_DEVICE_FLOW', { message: /expired/i })
    })
  })

  it('a server without device endpoints is reported clearly', async () => {
    const bare = await startNetServer({ schemas: SCHEMAS })
    try {
      await withEnv({ MOSTA_NET_URL: `${bare.url}/nothing-here` }, async () => {
        const e = await plug.ensureApiKey({ onCodeIssued: () => {} }).catch((x) => x)
        assert.ok(['E_DEVICE_FLOW', 'E_NET_HTTP'].includes(e.code), `${e.code}: ${e.message}`)
      })
    } finally {
      await bare.close()
    }
  })
})

describe('ensureApiKey resolution order', () => {
  let server
  let authServer
  before(async () => {
    server = await startNetServer({ schemas: SCHEMAS, apiKeys: [], deviceInterval: 1, pollTolerance: 0 })
    authServer = await startNetServer({ schemas: [], apiKeys: [], deviceInterval: 1, pollTolerance: 0 })
  })
  after(async () => {
    await server.close()
    await authServer.close()
  })
  const requestsTo = (s) => s.requests.length

  it('the env key wins, through the profile cascade, without any network', async () => {
    const n = requestsTo(server)
    await withEnv({ MOSTA_NET_URL: server.url, MOSTA_NET_API_KEY: 'plain', MOSTA_ENV: 'TEST', TEST_MOSTA_NET_API_KEY: 'profiled' }, async () => {
      assert.equal(await plug.ensureApiKey(), 'profiled')
    })
    await withEnv({ MOSTA_NET_URL: server.url, MOSTA_NET_API_KEY: 'plain' }, async () => assert.equal(await plug.ensureApiKey(), 'plain'))
    assert.equal(requestsTo(server), n)
  })

  it('a cached token valid for more than 60 s is reused; an expiring one is not', async () => {
    await withEnv({ MOSTA_NET_URL: server.url }, async () => {
      const first = plug.ensureApiKey({ onCodeIssued: () => {} })
      await approveNext(server)
      const key = await first
      const n = authorizeCalls(server)
      assert.equal(await plug.ensureApiKey(), key)
      assert.equal(authorizeCalls(server), n, 'no new flow')
      const file = join(home, 'octonet', 'auth.json')
      const cache = JSON.parse(readFileSync(file, 'utf8'))
      cache[server.url].expires_at = Math.floor(Date.now() / 1000) + 30
      writeFileSync(file, JSON.stringify(cache))
      const again = plug.ensureApiKey({ onCodeIssued: () => {} })
      await approveNext(server)
      assert.notEqual(await again, key)
    })
  })

  it('MOSTA_NO_AUTOREGISTER uses the cache or fails explicitly', async () => {
    await withEnv({ MOSTA_NET_URL: server.url, MOSTA_NO_AUTOREGISTER: 'true' }, async () => {
      await rejectsWith(plug.ensureApiKey(), 'E_AUTH_REQUIRED', { message: /MOSTA_NO_AUTOREGISTER/ })
      const dir = join(home, 'octonet')
      mkdirSync(dir, { recursive: true })
      writeFileSync(join(dir, 'auth.json'), JSON.stringify({ [server.url]: { access_token: 'cached-key', token_type: 'bearer', expires_at: Math.floor(Date.now() / 1000) + 3600 } }))
      assert.equal(await plug.ensureApiKey(), 'cached-key')
    })
  })

  it('no URL at all is E_CONFIG naming both variables', async () => {
    await rejectsWith(plug.ensureApiKey(), 'E_CONFIG', { message: /MOSTA_AUTH_FLOW_URL.*MOSTA_NET_URL|MOSTA_NET_URL.*MOSTA_AUTH_FLOW_URL/s })
  })

  it('MOSTA_AUTH_FLOW_URL takes the flow elsewhere; MOSTA_CLIENT_ID and clientId name the client', async () => {
    await withEnv({ MOSTA_NET_URL: server.url, MOSTA_AUTH_FLOW_URL: authServer.url, MOSTA_CLIENT_ID: 'env-client' }, async () => {
      const n = authorizeCalls(server)
      const p = plug.ensureApiKey({ onCodeIssued: () => {} })
      await approveNext(authServer)
      await p
      assert.equal(authorizeCalls(server), n, 'the data server saw no flow')
      const auth = authServer.requests.filter((r) => r.path === '/api/v1/auth/device/authorize').at(-1)
      assert.match(auth.body, /client_id=env-client/)
      const q = plug.ensureApiKey({ clientId: 'opt-client', forceRefresh: true, onCodeIssued: () => {} })
      await approveNext(authServer)
      await q
      assert.match(authServer.requests.filter((r) => r.path === '/api/v1/auth/device/authorize').at(-1).body, /client_id=opt-client/)
    })
  })

  it('forceRefresh ignores the env key, the opt-out and the cache', async () => {
    await withEnv({ MOSTA_NET_URL: server.url, MOSTA_NET_API_KEY: 'env-key', MOSTA_NO_AUTOREGISTER: 'true' }, async () => {
      const p = plug.ensureApiKey({ forceRefresh: true, onCodeIssued: () => {} })
      await approveNext(server)
      const k = await p
      assert.notEqual(k, 'env-key')
      assert.match(k, /^sk_test_/)
    })
  })

  it('the cache file is private, written atomically, keyed by server, and survives corruption', async () => {
    await withEnv({ MOSTA_NET_URL: server.url, MOSTA_HOST: 'acme' }, async () => {
      const dir = join(home, 'acme')
      mkdirSync(dir, { recursive: true, mode: 0o700 })
      writeFileSync(join(dir, 'auth.json'), '{ not json', { mode: 0o644 })
      const p = plug.ensureApiKey({ onCodeIssued: () => {} })
      await approveNext(server)
      await p
      const file = join(dir, 'auth.json')
      assert.equal(statSync(file).mode & 0o777, 0o600)
      assert.deepEqual(readdirSync(dir), ['auth.json'], 'no temporary file left behind')
      assert.ok(JSON.parse(readFileSync(file, 'utf8'))[server.url].access_token)
      await plug.clearCachedApiKey({ host: 'acme' })
      assert.ok(!existsSync(file) || !JSON.parse(readFileSync(file, 'utf8'))[server.url])
      await plug.clearCachedApiKey({ host: 'acme' })
      await plug.clearCachedApiKey({ host: 'never-used' })
    })
  })

  it('the store option moves the cache file', async () => {
    const store = join(home, 'custom', 'tokens.json')
    await withEnv({ MOSTA_NET_URL: server.url }, async () => {
      const p = plug.ensureApiKey({ store, onCodeIssued: () => {} })
      await approveNext(server)
      await p
      assert.ok(JSON.parse(readFileSync(store, 'utf8'))[server.url])
      assert.equal(statSync(join(home, 'custom')).mode & 0o777, 0o700, 'a folder it creates is private')
      assert.equal(statSync(store).mode & 0o777, 0o600)
    })
  })
})

describe('timeouts, retries and outages', () => {
  let server
  before(async () => {
    server = await startNetServer({ schemas: SCHEMAS, apiKeys: ['k'] })
  })
  after(() => server.close())
  const open = () => withEnv({ MOSTA_DATA: 'net', MOSTA_NET_URL: server.url, MOSTA_NET_API_KEY: 'k', MOSTA_NET_TIMEOUT_MS: '300' }, () => plug.getDialect())

  it('idempotent reads are retried on 502/503/504; writes are not', async () => {
    const d = await open()
    const n0 = server.requests.length
    server.failNext(503, 502)
    assert.equal(typeof (await d.count(Team, {})), 'number')
    assert.equal(server.requests.length - n0, 3, 'two failures then a success')
    const n1 = server.requests.length
    server.failNext(503)
    await rejectsWith(d.create(Team, { name: 'x' }), 'E_NET_HTTP', { status: 503 })
    assert.equal(server.requests.length - n1, 1, 'a write is sent once')
    assert.equal(await d.count(Team, { name: 'x' }), 0)
  })

  it('a stalled server gives E_NET_TIMEOUT', async () => {
    const d = await open()
    server.stall(1000)
    try {
      await rejectsWith(d.create(Team, { name: 'slow' }), 'E_NET_TIMEOUT')
    } finally {
      server.stall(0)
    }
  })

  it('an outage is an error, never a silent null', async () => {
    const gone = await startNetServer({ schemas: SCHEMAS })
    const url = gone.url
    await gone.close()
    await withEnv({ MOSTA_DATA: 'net', MOSTA_NET_URL: url, MOSTA_NET_API_KEY: 'k', MOSTA_NET_RETRIES: '1' }, async () => {
      const d = await plug.getDialect()
      const e = await d.findById(Team, 'x').catch((x) => x)
      assert.ok(e instanceof Error && /^E_NET_/.test(e.code), `${e && e.code}`)
      assert.equal(await d.testConnection(), false)
    })
  })

  it('429 is retried for reads and reported with its status', async () => {
    const limited = await startNetServer({ schemas: SCHEMAS, rateLimit: 2 })
    try {
      await withEnv({ MOSTA_DATA: 'net', MOSTA_NET_URL: limited.url, MOSTA_NET_API_KEY: 'k', MOSTA_NET_RETRIES: '2' }, async () => {
        const d = await plug.getDialect()
        await d.count(Team, {})
        await d.count(Team, {})
        const n = limited.requests.length
        await rejectsWith(d.count(Team, {}), 'E_NET_HTTP', { status: 429, dbCode: 'RATE_LIMITED' })
        assert.equal(limited.requests.length - n, 3, 'retried twice')
      })
    } finally {
      await limited.close()
    }
  })

  it('MOSTA_NET_URL missing or a bad transport is E_CONFIG', async () => {
    await withEnv({ MOSTA_DATA: 'net' }, () => rejectsWith(plug.getDialect(), 'E_CONFIG', { message: /MOSTA_NET_URL/ }))
    await withEnv({ MOSTA_DATA: 'net', MOSTA_NET_URL: server.url, MOSTA_NET_API_KEY: 'k', MOSTA_NET_TRANSPORT: 'grpc' }, () =>
      rejectsWith(plug.getDialect(), 'E_CONFIG', { message: /MOSTA_NET_TRANSPORT/ }),
    )
  })

  it('the system dialect opens an ORM connection even in NET mode', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mosta-sys-'))
    try {
      await withEnv({ MOSTA_DATA: 'net', MOSTA_NET_URL: server.url, MOSTA_NET_API_KEY: 'k', MOSTA_SYSTEM_DIALECT: 'sqlite', MOSTA_SYSTEM_URI: join(dir, 's.db') }, async () => {
        plug.registerSchema(Team)
        const sys = await plug.bootstrapSystemDialect()
        assert.equal(sys.dialectType, 'sqlite')
        assert.equal((await plug.getDialect()).dialectType, 'net-proxy')
        await sys.create(Team, { name: 'local' })
        assert.equal(await sys.count(Team, {}), 1)
        await sys.disconnect()
      })
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
