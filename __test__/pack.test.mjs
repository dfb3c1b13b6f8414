// The published shape: `npm pack` of the root package and of the linux-x64-gnu platform
// package give tarballs that install into a fresh app and run a query.
import { it } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const platform = `${process.platform}-${process.arch}${process.platform === 'linux' ? '-gnu' : ''}`

it(`npm pack tarballs (root + ${platform}) install into an app and run a query`, { skip: platform !== 'linux-x64-gnu' && 'the platform package is built on linux-x64-gnu only' }, () => {
  const work = mkdtempSync(join(tmpdir(), 'mosta-pack-'))
  try {
    const npm = (args, cwd) => execFileSync('npm', [...args, '--no-audit', '--no-fund', '--loglevel=error'], { cwd, encoding: 'utf8' })
    // The platform package gets the freshly built binary in a copy of npm/<platform>.
    const platDir = join(work, 'platform')
    cpSync(join(root, 'npm', platform), platDir, { recursive: true })
    const addon = readdirSync(root).find((f) => f === `data-plug.${platform}.node`)
    assert.ok(addon, 'the addon is built')
    cpSync(join(root, addon), join(platDir, addon))
    npm(['pack', '--pack-destination', work], platDir)
    npm(['pack', '--pack-destination', work], root)
    const tarballs = readdirSync(work).filter((f) => f.endsWith('.tgz'))
    const rootTgz = tarballs.find((f) => /^mostajs-data-plug-\d/.test(f))
    const platTgz = tarballs.find((f) => f.startsWith(`mostajs-data-plug-${platform}-`))
    assert.ok(rootTgz && platTgz, `both tarballs exist: ${tarballs}`)
    const listing = execFileSync('tar', ['-tzf', join(work, rootTgz)], { encoding: 'utf8' })
    assert.doesNotMatch(listing, /\.node$/m, 'the root package carries no binary')
    assert.match(listing, /package\/index\.d\.ts/)

    const app = join(work, 'app')
    mkdirSync(app)
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'pack-app', private: true }))
    npm(['install', join(work, platTgz), join(work, rootTgz)], app)
    writeFileSync(
      join(app, 'main.js'),
      `const plug = require('@mostajs/data-plug')
       const S = { name: 'Thing', collection: 'things', fields: { n: { type: 'number' } } }
       plug.openIsolatedDialect({ dialect: 'sqlite', uri: ':memory:', schemaStrategy: 'create' }, [S])
         .then(async (d) => { await d.create(S, { n: 41 }); const [t] = await d.find(S, {}); console.log(JSON.stringify({ n: t.n + 1, type: d.dialectType })); await d.disconnect() })`,
    )
    const out = execFileSync(process.execPath, ['main.js'], { cwd: app, encoding: 'utf8' })
    assert.deepEqual(JSON.parse(out), { n: 42, type: 'sqlite' })
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
})
